"""Helpers for tests that need mmdet models: random-init checkpoints written the way the zoo's files were.

Two writers, each faithful to the layout of the tool that wrote the zoo's files (random weights, not trained):

- mmdet 2.x (the PanopticFPN files): mmcv 1.x's ``runner/checkpoint.py:save_checkpoint`` wrote
  ``{'meta', 'state_dict', 'optimizer'}``; ``meta`` held the runner's meta (``env_info``, ``config`` as
  text, ``seed``, ``exp_name``), what mmdet 2.x's ``train_detector`` gave the CheckpointHook
  (``mmdet_version``, ``CLASSES`` as the 2.x dataset spelled them), the runner's ``epoch``/``iter``,
  ``hook_msgs`` and ``mmcv_version``/``time``.
- mmdet 3.x (the MaskFormer/Mask2Former files): mmengine's ``Runner.save_checkpoint`` (called by the
  CheckpointHook) writes ``{'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'}``;
  ``meta`` holds ``epoch``, ``iter``, ``cfg`` (text), ``seed``, ``experiment_name``, ``time``,
  ``mmengine_version`` and ``dataset_meta`` (the train dataset's metainfo: classes, palette, ...).

Both then go through mmdet's ``tools/model_converters/publish_model.py``: keep only ``meta`` and
``state_dict``, ``torch.save(..., _use_new_zipfile_serialization=False)`` (the legacy pickle format) and
rename to ``<name>-<first 8 hex of the file's sha256>.pth``; zoo names are ``<config>_<YYYYMMDD_HHMMSS>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import strategies as st

from panbench.data.synth import PanopticImage, coco_like_categories
from panbench.models.mmdet import mm
from panbench.models.registry import ModelSpec

# Version strings as an mmdet 2.x training run would have written them (labels, not measurements).
MMDET2_VERSION = "2.25.0"
MMCV1_VERSION = "1.6.0"
MMDET2_ENV_INFO = "sys.platform: linux\nPython: 3.7.10\nPyTorch: 1.9.0\nMMCV: 1.6.0\nMMDetection: 2.25.0"


def save_with_digest(obj: object, folder: Path, stem: str, legacy: bool = False) -> Path:
    """``torch.save`` ``obj`` as ``<stem>-<first 8 hex of its sha256>.pth`` (publish_model's naming);
    ``legacy``: the pre-1.6 pickle format that publish_model writes."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{stem}.tmp"
    torch.save(obj, tmp, _use_new_zipfile_serialization=not legacy)
    out = folder / f"{stem}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(out)
    return out


def publish_model(ckpt: dict[str, Any], folder: Path, stem: str) -> Path:
    """What mmdet's ``publish_model.py`` does to a training checkpoint (see the module docstring)."""
    return save_with_digest({k: v for k, v in ckpt.items() if k in ("meta", "state_dict")}, folder, stem, legacy=True)


def zoo_stem(name: str) -> str:
    """``<name>_<YYYYMMDD>_<HHMMSS>``, the zoo's file stem before publish_model appends the digest."""
    return f"{name}_{time.strftime('%Y%m%d_%H%M%S')}"


def _random_model(spec: ModelSpec, seed: int) -> tuple[Any, Any]:
    import torch

    torch.manual_seed(seed)
    cfg = mm.load_config(spec.config)
    return cfg, mm.build_model(cfg, spec.config)


def _optimizer(model: Any) -> Any:
    import torch

    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)


def mmdet2_classes(names: list[str]) -> tuple[str, ...]:
    """The class names as mmdet 2.x's ``CocoPanopticDataset.CLASSES`` spelled them: ``' truck'`` with a
    leading space (the rest as in 3.x)."""
    return tuple(" truck" if n == "truck" else n for n in names)


def mmcv1_checkpoint(model: Any, cfg: Any, classes: tuple[str, ...], epoch: int = 12,
                     iter_: int = 87960) -> dict[str, Any]:
    """The dict mmcv 1.x's ``save_checkpoint`` wrote for an mmdet 2.x EpochBasedRunner (before publishing)."""
    meta: dict[str, Any] = {
        # runner.meta, set by mmdet 2.x tools/train.py
        "env_info": MMDET2_ENV_INFO, "config": cfg.pretty_text, "seed": 0, "exp_name": "panoptic_fpn.py",
        # CheckpointHook meta from mmdet 2.x train_detector
        "mmdet_version": MMDET2_VERSION + "+abc1234", "CLASSES": classes,
        # BaseRunner.save_checkpoint, then mmcv's save_checkpoint
        "hook_msgs": {"last_ckpt": f"work_dirs/panoptic_fpn/epoch_{epoch - 1}.pth"},
        "epoch": epoch, "iter": iter_,
        "mmcv_version": MMCV1_VERSION, "time": time.asctime(),
    }
    return {"meta": meta, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "optimizer": _optimizer(model).state_dict()}


def mmengine_checkpoint(model: Any, cfg: Any, dataset_meta: dict[str, Any], epoch: int = 50,
                        iter_: int = 368750) -> dict[str, Any]:
    """The dict mmengine's ``Runner.save_checkpoint`` writes (before publishing), with a real MessageHub
    state and real parameter schedulers."""
    import mmengine
    from mmengine.logging import MessageHub
    from mmengine.optim import MultiStepLR, OptimWrapper

    hub = MessageHub.get_instance(f"panbench-test-{id(model)}")
    hub.update_scalar("train/loss", 1.5)
    hub.update_info("iter", iter_)
    wrapper = OptimWrapper(_optimizer(model))
    schedulers = [MultiStepLR(wrapper, milestones=[327778, 355092], by_epoch=False)]
    meta = {"epoch": epoch, "iter": iter_, "cfg": cfg.pretty_text, "seed": 0, "experiment_name": "mask2former",
            "time": time.strftime("%Y%m%d_%H%M%S"), "mmengine_version": mmengine.__version__,
            "dataset_meta": dataset_meta}
    return {"meta": meta, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "message_hub": hub.state_dict(), "optimizer": wrapper.state_dict(),
            "param_schedulers": [s.state_dict() for s in schedulers]}


def dataset_metainfo(cfg: Any) -> dict[str, Any]:
    """What ``CocoPanopticDataset.metainfo`` gives for ``cfg``'s dataset: mmdet's METAINFO (classes,
    thing/stuff classes, palette as a list of tuples) updated with the config's metainfo."""
    mm.init_mmdet()
    from mmdet.datasets import CocoPanopticDataset

    meta = {k: (list(v) if isinstance(v, list) else v) for k, v in CocoPanopticDataset.METAINFO.items()}
    ds = cfg.get("test_dataloader", {}).get("dataset", {})
    own = ds.get("metainfo") if hasattr(ds, "get") else None
    if own:
        meta.update({k: tuple(v) if isinstance(v, list | tuple) else v for k, v in own.items()})
    meta["classes"] = tuple(mm.class_names(cfg))
    return meta


def save_mmdet2_checkpoint(spec: ModelSpec, folder: Path, stem: str | None = None, seed: int = 0) -> Path:
    """``spec``'s model with random weights, saved as mmdet 2.x did (mmcv 1.x save_checkpoint, then
    publish_model)."""
    cfg, model = _random_model(spec, seed)
    ckpt = mmcv1_checkpoint(model, cfg, mmdet2_classes(mm.class_names(cfg)))
    return publish_model(ckpt, folder, zoo_stem(f"{stem or spec.name}_random"))


def save_mmdet3_checkpoint(spec: ModelSpec, folder: Path, stem: str | None = None, seed: int = 0) -> Path:
    """``spec``'s model with random weights, saved as mmdet 3.x does (mmengine's Runner.save_checkpoint,
    then publish_model)."""
    cfg, model = _random_model(spec, seed)
    ckpt = mmengine_checkpoint(model, cfg, dataset_metainfo(cfg))
    return publish_model(ckpt, folder, zoo_stem(f"{stem or spec.name}_random"))


def save_zoo_style_checkpoint(spec: ModelSpec, folder: Path, stem: str | None = None, seed: int = 0) -> Path:
    """``spec``'s model with random weights in the layout its zoo files have: mmdet 2.x for PanopticFPN,
    mmdet 3.x for MaskFormer and Mask2Former."""
    save = save_mmdet2_checkpoint if spec.architecture == "PanopticFPN" else save_mmdet3_checkpoint
    return save(spec, folder, stem, seed)


# Generated label maps (hypothesis strategies), shared by the PQ and the analysis tests

GENERATED_CATS = coco_like_categories(8, 6)  # the categories of the generated parity tests
CAT_IDS = [c["id"] for c in GENERATED_CATS]


@st.composite
def label_map(draw, shape, n_max=5, crowd=False):
    h, w = shape
    n = draw(st.integers(0, n_max))
    ids = draw(st.lists(st.integers(1, 256**3 - 1), min_size=n, max_size=n, unique=True))
    pool = [0] + ids
    flat = draw(st.lists(st.sampled_from(pool), min_size=h * w, max_size=h * w))
    arr = np.array(flat, np.uint32).reshape(h, w)
    segs = []
    for i in ids:
        area = int((arr == i).sum())
        if area:
            segs.append({"id": i, "category_id": draw(st.sampled_from(CAT_IDS)),
                         "iscrowd": int(crowd and draw(st.booleans())), "area": area})
    return PanopticImage(arr, segs)


@st.composite
def image_pair(draw):
    shape = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    return draw(label_map(shape, crowd=True)), draw(label_map(shape))


def free_port() -> int:
    """A free TCP port on localhost (for torchrun's rendezvous; another test run may hold any fixed one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_ranks(target: Any, args: list[tuple], timeout: float = 180) -> list[int | None]:
    """Run ``target(*args[r])`` in one spawned process per rank (a forked child can hang in torch's thread pool);
    their exit codes (None: still running after ``timeout`` seconds, then terminated)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=a, daemon=True) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.exitcode is None:
            p.terminate()
    return codes


def close_ranks() -> None:
    """The end of a spawned rank: a barrier, then its process group destroyed (as
    panbench.cli.running.finish_distributed does under torchrun): neither rank tears down while the other still
    receives its last send."""
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def end_rank() -> None:
    """A spawned rank's exit once its results are written and its group closed: at once, without the interpreter's
    finalization, where a thread of torch's still joinable now and then aborts the process ("terminate called without
    an active exception", exit code -6): nothing the test checks, which is the numbers each rank wrote."""
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def write_perturbed_sample(annotations: Path, out: Path, seed: int) -> tuple[Path, Path]:
    """Perturbed copies of the COCO sample's ground truth (``annotations``: its annotations folder) as a
    prediction JSON and PNG folder under ``out``; returns ``(pred_json, pred_dir)``."""
    import json

    from panbench.data.synth import perturb, write_png
    from panbench.pq.kernels import rgb2id
    from panbench.pq.png import decode_png

    gt = json.loads((annotations / "panoptic_val2017.json").read_text())
    rng = np.random.default_rng(seed)
    (out / "pred").mkdir()
    anns = []
    for ann in gt["annotations"]:
        ids = rgb2id(decode_png(annotations / "panoptic_val2017" / ann["file_name"], "test"))
        p = perturb(rng, PanopticImage(ids, ann["segments_info"]), gt["categories"])
        write_png(out / "pred" / ann["file_name"], p.ids)
        anns.append({"image_id": ann["image_id"], "file_name": ann["file_name"], "segments_info": p.segments_info})
    (out / "pred.json").write_text(json.dumps({"annotations": anns}))
    return out / "pred.json", out / "pred"


def eval_demo_record(demo_root: Path, results: Path, *extra: str) -> dict[str, Any]:
    """``panbench eval`` of demo-mask2former on 4 demo images in one process; its record as JSON."""
    import json

    from panbench.cli import main

    assert main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
                 "--results", str(results), "--limit", "4", "--workers", "0", "--cpu-procs", "1", "--no-progress",
                 *extra]) == 0
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


def rolled_checkpoint(demo_checkpoint: Path, tmp: Path) -> Path:
    """A demo Mask2Former checkpoint with its class order rolled by one among things and among stuff (its
    classifier's rows moved: where it said 'disk' it says 'tile', ...): a checkpoint trained with another class
    order than the dataset_meta it is evaluated with."""
    import torch

    ckpt = torch.load(demo_checkpoint, map_location="cpu", weights_only=False)
    order = [1, 2, 3, 0, 5, 6, 7, 4, 8]  # row k of the new classifier is the old row order[k]; 8: no object
    for name in ("panoptic_head.cls_embed.weight", "panoptic_head.cls_embed.bias"):
        ckpt["state_dict"][name] = ckpt["state_dict"][name][order].clone()
    path = tmp / "rolled.pth"
    torch.save(ckpt, path)
    return path


def analysis_fields(boundary: bool = False) -> tuple[str, ...]:
    """The record fields of the analyses, read from ``ANALYSES`` in row order (a new row needs no test edit);
    boundary PQ's only with ``boundary``: it needs the ``--boundary`` scoring pass (its ``BEYOND_THE_ROW``)."""
    from panbench.analyses import ANALYSES

    return tuple(f for a in ANALYSES if boundary or a.key != "boundary" for f in a.fields)


# Artefacts built once per pytest run: the full-size zoo checkpoints, a 2-image COCO set, the zoo architectures'
# eval on it. Plain functions of the test's ``request``, not conftest fixtures: a second conftest.py would shadow
# tests/conftest.py (tests/test_test_tree.py).

T = TypeVar("T")
_ONCE_PER_RUN: pytest.StashKey[dict[Hashable, Any]] = pytest.StashKey()


def once_per_run(request: pytest.FixtureRequest, key: Hashable, build: Callable[[Path], T]) -> T:
    """``build(folder)`` on the first call with ``key`` in this pytest run (``folder``: a new folder of the run's
    temporary directory), the same object on every later call of the run; each run builds its own (the memo is in
    the run's ``config.stash``, never on disk), so nothing an earlier run wrote is read."""
    memo = request.config.stash.setdefault(_ONCE_PER_RUN, {})
    if key not in memo:
        folder = request.getfixturevalue("tmp_path_factory").mktemp("once")
        memo[key] = build(folder)
    return memo[key]


def zoo_checkpoint(request: pytest.FixtureRequest, model: str, dataset: str = "coco") -> Path:
    """``model``'s random weights (seed 0) in the layout of its zoo file (:func:`save_zoo_style_checkpoint`), written
    once per pytest run and shared by its tests. The file is read-only: a test that needs it changed changes a
    copy."""
    from panbench.models.registry import resolve

    spec = resolve(model, dataset=dataset)[0]

    def build(folder: Path) -> Path:
        path = save_zoo_style_checkpoint(spec, folder)
        path.chmod(0o444)
        return path

    return once_per_run(request, ("zoo checkpoint", spec.name), build)


PAIR_IDS = (1_142_238, 2_142_238)  # a crop of COCO val image 142238, and that crop mirrored
PAIR_CROP = (100, 0, 540, 427)  # the crop's box in the 640x427 image (left, top, right, bottom): 440x427


def coco_mirror_pair(request: pytest.FixtureRequest, coco_sample: Path) -> Path:
    """A COCO panoptic val2017 root of two images of one padded input shape and different content: a 440x427 crop of
    the COCO sample's image 142238 (:data:`PAIR_CROP`) and its horizontal mirror (:data:`PAIR_IDS`), their ground
    truth cropped and mirrored with them. The zoo's test pipeline resizes them to 800x824, padded to 800x832: the
    short side at COCO's 800 with about two thirds of the pixels of the whole image (800x1199), height and width
    still apart. Built once per pytest run."""
    from PIL import Image, ImageOps

    from panbench.pq.kernels import rgb2id

    def build(out: Path) -> Path:
        ann = json.loads((coco_sample / "annotations" / "panoptic_val2017.json").read_text())
        im = next(i for i in ann["images"] if i["id"] == 142238)
        a = next(a for a in ann["annotations"] if a["image_id"] == 142238)
        (out / "val2017").mkdir()
        (out / "annotations" / "panoptic_val2017").mkdir(parents=True)
        with Image.open(coco_sample / "val2017" / im["file_name"]) as img:
            crop = img.convert("RGB").crop(PAIR_CROP)
        with Image.open(coco_sample / "annotations" / "panoptic_val2017" / a["file_name"]) as png:
            gt = png.convert("RGB").crop(PAIR_CROP)
        images, anns = [], []
        for image_id, pic, pan in ((PAIR_IDS[0], crop, gt), (PAIR_IDS[1], ImageOps.mirror(crop), ImageOps.mirror(gt))):
            stem = f"{image_id:012d}"
            pic.save(out / "val2017" / f"{stem}.jpg", quality=95)
            pan.save(out / "annotations" / "panoptic_val2017" / f"{stem}.png")
            ids = rgb2id(np.ascontiguousarray(np.asarray(pan)))
            segments = []
            for seg in a["segments_info"]:
                ys, xs = np.nonzero(ids == seg["id"])
                if len(xs):
                    segments.append({**seg, "area": len(xs), "bbox": [int(xs.min()), int(ys.min()),
                                                                      int(xs.max() - xs.min()) + 1,
                                                                      int(ys.max() - ys.min()) + 1]})
            images.append({**im, "id": image_id, "file_name": f"{stem}.jpg", "width": pic.width,
                           "height": pic.height})
            anns.append({**a, "image_id": image_id, "file_name": f"{stem}.png", "segments_info": segments})
        (out / "annotations" / "panoptic_val2017.json").write_text(
            json.dumps({**ann, "images": images, "annotations": anns}))
        return out

    return once_per_run(request, "coco mirror pair", build)


@dataclass
class EvalRun:
    """One ``panbench eval`` in this process: its record, its saved predictions and what it printed."""

    record: dict[str, Any]
    predictions: dict[int, tuple[np.ndarray, list[dict[str, Any]]]]  # image id -> (id map, segments_info)
    out: str  # its standard output
    results: Path  # its --results folder


def saved_predictions(folder: Path) -> dict[int, tuple[np.ndarray, list[dict[str, Any]]]]:
    """Each image's prediction saved by ``eval --save-predictions folder``: (id map, segments_info)."""
    from panbench.pq.png import read_ids

    js = next(p for p in folder.glob("*.json") if not p.name.endswith("_instances.json"))
    return {a["image_id"]: (read_ids(js.with_suffix("") / a["file_name"], "prediction"), a["segments_info"])
            for a in json.loads(js.read_text())["annotations"]}


def eval_run(model: str, root: Path, dataset: str, folder: Path, *extra: str) -> EvalRun:
    """``panbench eval`` of ``model`` on ``root`` (no resume, no data-loading workers), results and predictions
    under ``folder``; it must succeed."""
    from panbench.cli import main

    res, pred = folder / "results", folder / "predictions"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        rc = main(["eval", "--model", model, "--dataset", dataset, "--data-root", str(root), "--results", str(res),
                   "--save-predictions", str(pred), "--no-resume", "--no-progress", "--workers", "0", *extra])
    assert rc == 0, out.getvalue()[-2000:]
    rec = json.loads(next((res / "runs").glob("*.json")).read_text())
    return EvalRun(rec, saved_predictions(pred), out.getvalue(), res)


# the zoo architectures' settings in zoo_pair_eval: random weights score every query far below the zoo's thresholds
# (0.8), so all are kept and segments are predicted; MaskFormer's random queries all predict one stuff class, merged
# into one segment over the whole image whatever the image shows, so its pixels whose mask is below 0.5 stay void
# (mmdet's filter_low_score), which the image's content decides
ZOO_PAIR_SETTINGS = {
    "panoptic-fpn": (),
    "maskformer": ("--cfg-options", "model.test_cfg.object_mask_thr=0.0", "model.test_cfg.iou_thr=0.0",
                   "model.test_cfg.filter_low_score=True"),
    "mask2former": ("--cfg-options", "model.test_cfg.object_mask_thr=0.0", "model.test_cfg.iou_thr=0.0"),
}


def zoo_pair_eval(request: pytest.FixtureRequest, coco_sample: Path, model: str, folder: Path | None = None,
                  *extra: str) -> EvalRun:
    """``panbench eval`` of the zoo architecture ``model`` (``panoptic-fpn``, ``maskformer``, ``mask2former``) with
    its :func:`zoo_checkpoint` on :func:`coco_mirror_pair`, in one process, with :data:`ZOO_PAIR_SETTINGS`. Without
    ``folder`` and ``extra``: at batch 1, with eval's FLOPs pass on the first image for PanopticFPN only, run once
    per pytest run and shared (its tests read it, none changes it); with them: a run of its own in ``folder``
    (``extra`` after the same arguments)."""
    args = ["--checkpoint", str(zoo_checkpoint(request, model)), "--cpu-procs", "1", *ZOO_PAIR_SETTINGS[model]]
    root = coco_mirror_pair(request, coco_sample)
    if folder is not None:
        return eval_run(model, root, "coco", folder, *args, *extra)
    flops = "1" if model == "panoptic-fpn" else "0"
    return once_per_run(request, ("zoo pair eval", model),
                        lambda f: eval_run(model, root, "coco", f, *args, "--flops-images", flops))


def boundary_reference(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path,
                         ratio: float) -> tuple[Any, dict]:
    """boundary-iou-api's per-category sums (tests/reference/boundary_iou_api.py), reading the PNGs with PIL and
    panopticapi's rgb2id."""
    from panopticapi.evaluation import PQStat
    from panopticapi.utils import rgb2id as ref_rgb2id
    from PIL import Image
    from reference import boundary_iou_api as ref

    gt, pred = json.loads(Path(gt_json).read_text()), json.loads(Path(pred_json).read_text())
    categories = {c["id"]: c for c in gt["categories"]}
    boundary_id = max(categories) + 1
    pred_by_id = {a["image_id"]: a for a in pred["annotations"]}
    stat = PQStat()
    for g in gt["annotations"]:
        p = pred_by_id[g["image_id"]]
        for a in (g, p):
            assert all(s["id"] != boundary_id for s in a["segments_info"]), "the reference's BOUNDARY_ID quirk"
        g_ids = ref_rgb2id(np.array(Image.open(Path(gt_dir) / g["file_name"]), dtype=np.uint32))
        p_ids = ref_rgb2id(np.array(Image.open(Path(pred_dir) / p["file_name"]), dtype=np.uint32))
        ref.add_image(stat, g_ids, g["segments_info"], p_ids, p["segments_info"], categories, ratio)
    return stat, categories


def assert_boundary_reference_parity(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path, ratio: float,
                                     stats: Any, ours: dict) -> None:
    """panbench's boundary-PQ sums ``stats`` (a PQStats) and summary ``ours`` of these files equal the reference's
    (:func:`boundary_reference`): the nine metrics to 1e-9, per-class TP/FP/FN exactly, per-class IoU sums."""
    from reference import boundary_iou_api as ref

    from panbench.pq.matching import METRIC_KEYS

    stat, categories = boundary_reference(gt_json, gt_dir, pred_json, pred_dir, ratio)
    expected = ref.summary(stat, categories)
    for k in METRIC_KEYS:
        assert ours[k] == pytest.approx(expected[k], abs=1e-9), k
    for k, cid in enumerate(categories):
        r, o = stat.pq_per_cat[cid], ours["per_class"][str(cid)]
        assert (o["TP"], o["FP"], o["FN"]) == (r.tp, r.fp, r.fn), cid
        assert stats.iou_sum[k] == pytest.approx(r.iou, abs=1e-9), cid


def assert_same_as_separate_run(grid_res: Path, setting: dict[str, Any], grid_preds: Path, res: Path, preds: Path,
                                images: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A grid's ``setting`` (its summary entry; results under ``grid_res``, predictions under ``grid_preds``) against
    a separate run of it (``res``, ``preds``): every record field but the run's own, the analysis arrays, the PNGs
    and predictions JSON (scripts/check_same_numbers.py's rules).  Returns the two records."""
    import sys

    from panbench.package import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from check_same_numbers import _comparable, _compare_npz, compare_predictions

    a_path, b_path = grid_res / setting["record"], next((res / "runs").glob("*.json"))
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    ca, cb = _comparable(a), _comparable(b)
    assert ca == cb, (setting["label"], [f for f in sorted(set(ca) | set(cb)) if ca.get(f) != cb.get(f)])
    assert not _compare_npz(a_path.with_suffix(".analysis.npz"), b_path.with_suffix(".analysis.npz"), a["model"])
    slug = "_".join(f"{key.rsplit('.', 1)[-1]}-{v}" for key, v in setting["values"].items())
    diffs, n = compare_predictions(grid_preds / slug, preds)
    assert not diffs and n == images, diffs[:3]
    return a, b


def killed_part_way(args: list[str], results: Path, chunks: int) -> int:
    """``panbench *args`` in a process of its own, SIGKILLed once ``results``' resume caches hold ``chunks`` chunks
    (or it ended; 300 s at most); returns the chunks held then."""
    import os
    import signal
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "panbench", *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while len(list(results.glob("cache/*/chunk-*.npz"))) < chunks and p.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return len(list(results.glob("cache/*/chunk-*.npz")))


def scored_runs(root: Path) -> Path:
    """Two `panbench score --name` runs (sys-a, sys-b) of 12 generated images whose predicted segments carry scores
    (seeded), under ``root``; returns their results folder."""
    import numpy as np

    from panbench.cli import main
    from panbench.data.synth import PanopticImage, coco_like_categories, perturb, random_image, write_panoptic

    cats = coco_like_categories()
    rng = np.random.default_rng(0)
    gt = [(i, random_image(rng, 48, 64, cats)) for i in range(1, 13)]
    gj, gd = write_panoptic(root, "gt", gt, cats)
    for k, name in enumerate(("sys-a", "sys-b")):
        preds = []
        for i, g in gt:
            p = perturb(rng, g, cats)
            preds.append((i, PanopticImage(p.ids, [{**s, "score": round(float(rng.random()), 4)}
                                                   for s in p.segments_info])))
        pj, pd = write_panoptic(root, f"pred{k}", preds, cats)
        assert main(["score", "--gt-json", str(gj), "--gt-dir", str(gd), "--pred-json", str(pj), "--pred-dir",
                     str(pd), "--name", name, "--dataset-name", "syn", "--results", str(root / "res")]) == 0
    return root / "res"


def score_with_analyses(gt_json: Any, gt_dir: Any, pred_json: Any, pred_dir: Any, workers: int | None = None,
                        boundary: bool = False, **members: Any) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """``panbench score``'s metrics, analysis set and analyses' fields, through the one composite that the command
    drives (``members``: :meth:`panbench.evaluators.Evaluators.for_run`'s other options)."""
    from panbench.evaluators import Evaluators
    from panbench.evaluators.files import score_folder
    from panbench.pq.score import read_truth

    truth = read_truth(gt_json)
    evaluators = Evaluators.for_run(truth.categories, boundary=boundary, semantic=False, **members)
    score_folder(evaluators, truth, gt_dir, pred_json, pred_dir, workers)
    result = evaluators.evaluate()
    fields = {k: v for k, v in result.items() if k not in ("metrics", "analysis")}
    return result["metrics"], result["analysis"], fields


def pq_columns(evaluators: Any) -> Any:
    """The PQ member's accumulator of a composite (:class:`panbench.evaluators.Evaluators`): its sums and columns."""
    return next(m for m in evaluators.members if m.name == "PQ").columns()
