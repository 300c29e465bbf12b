#!/usr/bin/env python
"""On a CUDA device: the forward alone, ``panbench eval`` and MMDetection's test loop over the same COCO-size images.

The images: the real 2-image COCO panoptic sample (640x427 and 640x360) replicated to ``--images`` (default 200) at
their own sizes, under new image ids, in a temp folder in the COCO layout that ``eval --dataset coco`` reads (the
files are links to the sample's; the copies of one image come one after the other, each run a multiple of the largest
batch size, so that MMDetection's batches, which pad to the largest image of a batch, hold one size as panbench's do).
The models, random weights (seed 0) saved as real files before any timing: the zoo's R-50 Mask2Former, MaskFormer
and PanopticFPN configs (``--model CONFIG --checkpoint FILE``, the state dict as a ``.pth``), and EoMT-S built
offline from transformers' ``EomtConfig`` (ViT-S: hidden 384, 12 layers, 6 heads, patch 16, 640x640; 200 queries;
``save_pretrained`` of the model and of ``EomtImageProcessor``, then ``--model hf:DIR``; no hub access).

Each row is one model at one batch size (``--batch-sizes``, default 1 8), precision (fp32, bf16: autocast, eval's
``--amp bf16``) and ``torch.compile`` state (off, on: :func:`panbench.evaluation.speed.compile_model`, what
``panbench speed --compile`` compiles; ``eval`` has no option for it, so the rows run eval's own code in this
process: ``panbench.evaluation.run.Run``, what ``panbench eval`` runs), and runs, in this order, in this process:

  forward   the model's forward and nothing else: eval's own data loading (``Items`` in a DataLoader with the same
            ``--workers``, ``same_shape_batches`` at the same batch size) and ``family.forward`` with the fusion
            deferred and never run (nothing after the forward); images/s over the batches after the first batch of
            each input shape (the compilation falls there), from the wait for a batch to the forward's end (synced)
  eval      ``Run(...).evaluate()`` on the same loaded (and compiled) model: panbench's defaults (its fusion; COCO
            mask AP on, which MMDetection's metric does not compute), ``--cpu-procs 1``, ``--flops-images 0``,
            ``--no-resume``, and one evaluator of this script's counting the kept segments per image; images/s
            from the record's timings: ``timed_images / wall_s`` (its ``images_per_s``, which it leaves empty under
            10 timed images: the loop's wall time, the first batch left out as ``--warmup 1``; post-processing and
            scoring run on a thread beside the forward), and
            ``outside`` is the share of that wall time outside the forward (1 - forward_s / wall_s)
  mmdet     MMDetection's test loop: ``Runner.from_cfg(cfg).test()`` with ``CocoPanopticMetric`` on the config
            panbench runs (``scripts/mmdet_reference.py``'s set-up: the instance output off, the same checkpoint,
            data root, workers, and ``test_dataloader.batch_size`` the row's); images/s over the iterations after
            the first batch up to ``test()``'s return (the metric's PNGs and panopticapi's scoring included).
            fp32 eager only: its ``TestLoop`` autocasts fp16 alone (no bf16) and ``Runner.test`` compiles nothing;
            n/a for EoMT (a transformers model: no MMDetection config)

Two passes of thresholds (``--passes``): ``all`` sets them to 0 (MaskFormer family ``object_mask_thr = iou_thr = 0``;
PanopticFPN ``rcnn.score_thr = 0``; EoMT ``threshold = overlap_mask_area_threshold = 0``: random weights score every
class near 1/134, below every release threshold), so every query whose best class is not "no object" (every box, for
PanopticFPN) competes for the pixels, heavier post-processing than a trained model's; ``raised`` raises the score
threshold (``object_mask_thr``, ``score_thr``, ``threshold``) to the value whose kept segments per image is nearest
the ground truth's, found once before timing by two ``--grid`` evals on the 2 sample images (a coarse grid, then five
values between the two around the ground truth's count); a model whose ``all`` pass is already the nearest (it keeps
fewer segments than the ground truth has) gets no ``raised`` rows. ``kept/img`` beside every row is the kept segments
per image of its eval; the GT's is printed above the table. Where eval and mmdet both ran (same model, batch,
precision, pass), their nine PQ metrics must agree within 1e-9 and their per-class TP/FP/FN exactly: every check is
printed, and a mismatch exits 1 before the table's ratios (``eval/fwd`` = eval img/s / forward img/s; ``eval/mmdet`` =
eval img/s / mmdet img/s).

Rows run fp32 eager first (with mmdet), then bf16, then compiled; ``--budget-s`` (default 480, from the start of the
script) stops starting rows whose estimated time (the last like row's) would pass it, and the skipped rows are
printed.  ``--out DIR`` gets ``bench_gpu_eval.json`` (every row, the checks, the settings, the machine; rewritten
after each row, ``complete`` false until the end) and ``table.txt`` (the printed table).  ``--input small`` (the
default with ``--device cpu``: a smoke test, its speeds no benchmark) resizes the mmdet configs' inputs to 320x192 (a
config written beside the checkpoints) and builds EoMT at 320x320; the script says so at the top of its output.

    .venv/bin/python scripts/bench_gpu_eval.py [--device cuda|cpu] [--images 200] [--models
        mask2former,maskformer,panoptic_fpn,eomt_s] [--batch-sizes 1 8] [--precisions fp32 bf16] [--compile off on]
        [--passes all raised] [--workers 8] [--budget-s 480] [--input full|small] [--out results/bench_gpu_eval]
    # the CPU smoke test (tests/evaluation/test_bench_gpu_eval.py runs it):
    .venv/bin/python scripts/bench_gpu_eval.py --device cpu --images 4 --models mask2former,eomt_s --batch-sizes 1 \\
        --precisions fp32 --compile off
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
SAMPLE = Path(os.environ.get("PANBENCH_COCO_SAMPLE", ROOT.parent / "shared" / "data" / "coco-panoptic-val2017-sample"))
T0 = time.perf_counter()
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # before torch loads MKL: panbench's reproducible mode (loading.py)
TOLERANCE = 1e-9
NONE = {"TP": 0, "FP": 0, "FN": 0}  # a class without segments on either side
SMALL = (320, 192)  # --input small: the mmdet configs' Resize scale; EoMT's square is SMALL[0]


@dataclasses.dataclass(frozen=True)
class Model:
    """One model of the benchmark: the registry name (mmdet) or None (EoMT), the options of each pass."""

    key: str
    registry: str | None
    all_options: tuple[tuple[str, float], ...]  # --cfg-options of the ``all`` pass
    raised_key: str  # the --cfg-options key the ``raised`` pass sets
    grid_values: tuple[float, ...]  # the calibration grid's values of ``raised_key``


_MF = (("model.test_cfg.object_mask_thr", 0.0), ("model.test_cfg.iou_thr", 0.0))
_COARSE = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3)
MODELS = {
    "mask2former": Model("mask2former", "mask2former", _MF, "model.test_cfg.object_mask_thr", _COARSE),
    "maskformer": Model("maskformer", "maskformer", _MF, "model.test_cfg.object_mask_thr", _COARSE),
    "panoptic_fpn": Model("panoptic_fpn", "panoptic-fpn", (("model.test_cfg.rcnn.score_thr", 0.0),),
                          "model.test_cfg.rcnn.score_thr", _COARSE),
    "eomt_s": Model("eomt_s", None, (("threshold", 0.0), ("overlap_mask_area_threshold", 0.0)), "threshold", _COARSE),
}


class KeptSegments:
    """An evaluator (docs/api.md, "Your own evaluator"): predicted and ground-truth segments per image."""

    name, version = "KeptSegments", "1"
    needs = {"segments"}

    def reset(self) -> None:
        self.images = self.pred = self.gt = 0

    def process(self, image: Any) -> dict[str, int]:
        return {"pred": len(image.pred_segments), "gt": len(image.gt_segments)}

    def add(self, share: dict[str, int]) -> None:
        self.images += 1
        self.pred += share["pred"]
        self.gt += share["gt"]

    def merge(self, other: KeptSegments) -> None:
        self.images, self.pred, self.gt = self.images + other.images, self.pred + other.pred, self.gt + other.gt

    def evaluate(self) -> dict[str, float]:
        n = max(self.images, 1)
        return {"images": self.images, "pred_per_image": self.pred / n, "gt_per_image": self.gt / n}


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


# ---- set-up: the images, the checkpoints, the thresholds (before any timing) ----

def replicate(out: Path, n: int, block: int) -> Path:
    """The sample's images ``n`` times in all, in the COCO layout under ``out`` (links to the sample's files): the
    copies of each image together, each image's count a multiple of ``block`` where ``n`` allows."""
    gt = json.loads((SAMPLE / "annotations" / "panoptic_val2017.json").read_text())
    pairs = list(zip(gt["images"], gt["annotations"]))
    counts = [n // len(pairs) // block * block for _ in pairs]
    counts[0] += n - sum(counts)  # the rest to the first image: a multiple of ``block`` when ``n`` is
    (out / "val2017").mkdir(parents=True)
    (out / "annotations" / "panoptic_val2017").mkdir(parents=True)
    images, anns = [], []
    for (im, ann), count in zip(pairs, counts):
        for _ in range(count):
            new_id = len(images) + 1
            stem = f"{new_id:012d}"
            os.symlink(SAMPLE / "val2017" / im["file_name"], out / "val2017" / f"{stem}.jpg")
            os.symlink(SAMPLE / "annotations" / "panoptic_val2017" / ann["file_name"],
                       out / "annotations" / "panoptic_val2017" / f"{stem}.png")
            images.append({**im, "id": new_id, "file_name": f"{stem}.jpg"})
            anns.append({**ann, "image_id": new_id, "file_name": f"{stem}.png"})
    doc = {**gt, "images": images, "annotations": anns}
    (out / "annotations" / "panoptic_val2017.json").write_text(json.dumps(doc))
    return out


def small_config(config: Path, out: Path) -> Path:
    """``config`` with its test inputs resized to ``SMALL`` (``--input small``), written to ``out``."""
    from panbench.models.mmdet.mm import load_config

    pipe = load_config(config).test_dataloader.dataset.pipeline
    for step in pipe:
        if step["type"] == "Resize":
            step["scale"] = SMALL
    out.write_text(f"_base_ = [{str(config)!r}]\npanbench = dict(name={out.stem!r})\n"
                   f"test_dataloader = dict(dataset=dict(pipeline={[dict(s) for s in pipe]!r}))\n")
    return out


def mmdet_checkpoint(model: Model, tmp: Path, small: bool) -> tuple[Path, Path]:
    """The config (``--input small``: resized) and a checkpoint of random weights (seed 0) saved as a file."""
    import torch

    from panbench.models.families import open_model
    from panbench.models.registry import resolve

    assert model.registry is not None
    config = resolve(model.registry)[0].config
    if small:
        config = small_config(config, tmp / f"{model.key}_small.py")
    fam = open_model(resolve(str(config))[0]).random_model("cpu")
    ckpt = tmp / f"{model.key}_random.pth"
    torch.save({"state_dict": fam.detector.state_dict(), "meta": {"note": "random weights, seed 0"}}, ckpt)
    return Path(config), ckpt


def eomt_folder(out: Path, categories: list[dict[str, Any]], size: int) -> Path:
    """EoMT-S (ViT-S/16 at ``size``) with random weights (seed 0), saved as the hub ships it, labels the dataset's."""
    import torch
    import transformers
    from transformers import EomtConfig, EomtForUniversalSegmentation

    processor = getattr(transformers, "EomtImageProcessorPil", None) or transformers.EomtImageProcessor

    id2label = {k: c["name"] for k, c in enumerate(categories)}
    cfg = EomtConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, patch_size=16, image_size=size,
                     num_queries=200, num_blocks=4, num_register_tokens=4, id2label=id2label,
                     label2id={v: k for k, v in id2label.items()})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = EomtForUniversalSegmentation(cfg).eval()
    model.save_pretrained(out)
    processor(size={"shortest_edge": size, "longest_edge": size}, do_pad=True).save_pretrained(out)
    return out


@dataclasses.dataclass
class Setup:
    """What the rows share: the folders, each model's spec (config or hf:DIR), checkpoint and raised value."""

    tmp: Path
    data_root: Path
    device: str
    workers: int
    specs: dict[str, Any] = dataclasses.field(default_factory=dict)
    configs: dict[str, Path] = dataclasses.field(default_factory=dict)
    checkpoints: dict[str, Path | None] = dataclasses.field(default_factory=dict)
    raised: dict[str, float | None] = dataclasses.field(default_factory=dict)  # None: no ``raised`` pass
    calibration: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    gt_per_image: float = math.nan


def set_up(a: argparse.Namespace, tmp: Path) -> Setup:
    """The images, every model's files and the raised thresholds, before any timing."""
    from panbench.models.registry import resolve

    small = a.input == "small"
    s = Setup(tmp, replicate(tmp / "coco", a.images, max(a.batch_sizes)), a.device, a.workers)
    gt = json.loads((s.data_root / "annotations" / "panoptic_val2017.json").read_text())
    s.gt_per_image = statistics.fmean(len(x["segments_info"]) for x in gt["annotations"])
    say(f"{a.images} images in {s.data_root} (links to {SAMPLE}); ground truth {s.gt_per_image:.1f} segments/image")
    for key in a.models:
        m = MODELS[key]
        if m.registry is None:
            size = SMALL[0] if small else 640
            folder = eomt_folder(tmp / "eomt_s", gt["categories"], size)
            s.specs[key], s.checkpoints[key] = resolve(f"hf:{folder}")[0], None
            say(f"eomt_s: EomtForUniversalSegmentation ViT-S/16 {size}x{size}, random weights, saved in {folder}")
        else:
            s.configs[key], s.checkpoints[key] = mmdet_checkpoint(m, tmp, small)
            s.specs[key] = resolve(str(s.configs[key]))[0]
            say(f"{key}: {s.configs[key].name}, random weights saved as {s.checkpoints[key]}")
        if "raised" in a.passes:
            s.raised[key], s.calibration[key] = calibrate(s, m)
            value = s.raised[key]
            say(f"{key}: " + (f"raised pass {m.raised_key}={value:g}" if value is not None else
                              "no raised pass (no value keeps segments nearer the ground truth's than the all pass)")
                + " (kept segments per sample image by value: "
                + ", ".join(f"{v}: {k:.1f}" for v, k in s.calibration[key].items()) + ")")
    return s


def eval_options(s: Setup, key: str, batch: int, amp: str | None, options: dict[str, Any],
                 grid: dict[str, list[Any]] | None = None, results: str = "results") -> Any:
    from panbench.evaluation.options import EvalOptions

    out = s.tmp / results
    return EvalOptions(device=s.device, batch_size=batch, workers=s.workers, warmup=1, progress=False, resume=False,
                       cache_root=out / "cache", amp=amp, cpu_procs=1, checkpoint=str(s.checkpoints[key] or "") or None,
                       results_dir=out, cfg_options=options, flops_images=0, evaluators=(KeptSegments,), grid=grid,
                       command="scripts/bench_gpu_eval.py")


def grid_kept(s: Setup, m: Model, values: list[float]) -> dict[float, float]:
    """Kept segments per image of the 2 sample images at each value of ``m.raised_key`` (fp32, eager, batch 1): a
    grid of eval from one forward, the ``all`` pass's other options beside."""
    from panbench.data.datasets import load_dataset
    from panbench.evaluation.run import evaluate_settings

    short = m.raised_key.rsplit(".", 1)[-1]
    options = {k: v for k, v in m.all_options if k != m.raised_key}
    opts = eval_options(s, m.key, 1, None, options or None, {short: values}, "calibration")
    kept: dict[float, float] = {}
    for setting, rec in evaluate_settings(s.specs[m.key], load_dataset(SAMPLE, name="coco"), opts):
        assert setting is not None
        kept[float(setting.cfg(m.raised_key))] = rec.evaluators["KeptSegments"]["pred_per_image"]
    return kept


def calibrate(s: Setup, m: Model) -> tuple[float | None, dict[str, float]]:
    """The value of ``m.raised_key`` whose kept segments per image is nearest the ground truth's: a coarse grid, then
    a finer one between the two values around the ground truth's count; the chosen value, every value's count."""
    kept = grid_kept(s, m, list(m.grid_values))
    above = [v for v in kept if kept[v] >= s.gt_per_image]
    below = [v for v in kept if kept[v] < s.gt_per_image]
    if above and below and min(below) > max(above):
        lo, hi = max(above), min(below)
        kept.update(grid_kept(s, m, [lo + (hi - lo) * k / 6 for k in range(1, 6)]))
    best = min(kept, key=lambda v: (abs(kept[v] - s.gt_per_image), -v))
    table = {f"{v:.4g}": kept[v] for v in sorted(kept)}
    return (None if kept[best] == kept[0.0] else best), table  # None: no value keeps nearer than the ``all`` pass


# ---- one row: forward alone, eval, mmdet ----

@dataclasses.dataclass(frozen=True)
class Row:
    model: str
    batch: int
    precision: str
    compiled: bool
    pass_: str

    def label(self) -> str:
        return f"{self.model} b{self.batch} {self.precision} {'compiled' if self.compiled else 'eager'} {self.pass_}"


def options_of(s: Setup, row: Row) -> dict[str, Any]:
    m = MODELS[row.model]
    opts = dict(m.all_options)
    if row.pass_ == "raised":
        opts[m.raised_key] = s.raised[row.model]
    return opts


def forward_alone(run: Any, batch: int, amp: str | None) -> dict[str, Any]:
    """The model's forward over the run's images with eval's data loading, nothing after it (module docstring)."""
    import torch

    from panbench.evaluation.inference import Items, same_shape_batches

    family, device, opts = run.lm.family, run.device, run.opts
    sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
    items = Items(run.dataset, list(range(len(run.dataset.samples))), run.lm.pipeline)
    loader = torch.utils.data.DataLoader(items, batch_size=1, shuffle=False, num_workers=opts.workers,
                                         collate_fn=list, prefetch_factor=4 * batch if opts.workers > 0 else None)
    seen: set[Any] = set()
    timed_s, timed, first = 0.0, 0, 0
    t = time.perf_counter()
    with torch.inference_mode(), family.deferred():
        for group in same_shape_batches(loader, batch, family.batch_key):
            family.forward([it["data"] for it in group], device, amp)  # the fusion deferred: never run
            sync()
            now = time.perf_counter()
            shape = (family.batch_key(group[0]["data"]), len(group))
            if shape in seen:
                timed_s, timed = timed_s + now - t, timed + len(group)
            else:
                seen.add(shape)
                first += len(group)
            t = time.perf_counter()
    return {"images_per_s": timed / timed_s if timed_s > 0 else None, "timed_images": timed, "untimed_images": first,
            "timed_s": timed_s}


def compiled_graphs() -> int:
    """The graphs dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def panbench_side(s: Setup, row: Row, dataset: Any) -> dict[str, Any]:
    """Load the model as eval does (compiled if asked), time its forward alone, then run eval on it."""
    from panbench.evaluation.run import Run
    from panbench.evaluation.speed import compile_model

    amp = None if row.precision == "fp32" else row.precision
    t = time.perf_counter()
    run = Run(s.specs[row.model], dataset, eval_options(s, row.model, row.batch, amp, options_of(s, row)))
    if row.compiled:
        compile_model(run.lm.family)
    load_s = time.perf_counter() - t
    fwd = forward_alone(run, row.batch, amp)
    graphs = compiled_graphs()
    t = time.perf_counter()
    (_, rec), = run.evaluate()
    wall = time.perf_counter() - t
    fwd["graphs_compiled_in_eval"] = compiled_graphs() - graphs  # 0: no compilation inside eval's timing
    tm, kept = rec.timings, rec.evaluators["KeptSegments"]
    ips = tm["timed_images"] / tm["wall_s"] if tm.get("wall_s") else None  # = images_per_s from 10 timed images
    times = {k: tm.get(k) for k in ("forward_s", "wall_s", "postprocess_s", "fusion_s", "scoring_s", "data_s",
                                    "timed_images", "images_per_s", "batches")}
    per_class = {c: {k: v[k] for k in ("TP", "FP", "FN")} for c, v in rec.per_class.items()}
    del run
    return {"load_s": load_s, "forward": fwd, "eval": {
        "images_per_s": ips, "outside_forward": 1 - tm["forward_s"] / tm["wall_s"] if tm.get("wall_s") else None,
        "timings": times, "evaluate_s": wall, "kept_per_image": kept["pred_per_image"], "metrics": rec.metrics,
        "per_class": per_class}}


def process_state(saved: tuple[dict[str, str], int] | None = None) -> tuple[dict[str, str], int]:
    """The environment and OpenCV's thread count, which mmengine's ``Runner`` sets for its own loop
    (``setup_env``); given ``saved``, put them back, so that the rows after an mmdet run run as those before."""
    import cv2

    if saved is not None:
        os.environ.clear()
        os.environ.update(saved[0])
        cv2.setNumThreads(saved[1])
    return dict(os.environ), cv2.getNumThreads()


class _Clock:
    """An mmengine hook's clock: started at the end of the first test iteration (synced)."""

    def __init__(self, sync: Any) -> None:
        self.sync, self.t0, self.first = sync, math.nan, 0

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if batch_idx == 0:
            self.sync()
            self.t0, self.first = time.perf_counter(), len(outputs or ())


def mmdet_config(s: Setup, row: Row) -> Any:
    """The config as ``scripts/mmdet_reference.py`` sets it up (the data, the checkpoint, quiet logging, the workers,
    the instance output off), with ``CocoPanopticMetric`` alone (Mask2Former's config adds ``CocoMetric``), the
    row's batch size and thresholds."""
    from mmengine.config import Config

    from panbench.models.mmdet.family import panoptic_only

    cfg = Config.fromfile(str(s.configs[row.model]))
    cfg.load_from, cfg.work_dir, cfg.log_level = str(s.checkpoints[row.model]), str(s.tmp / "mmdet_work"), "WARNING"
    cfg.default_hooks.logger.interval = 10_000
    loader = cfg.test_dataloader
    loader.dataset.data_root = str(s.data_root) + "/"
    loader.num_workers, loader.persistent_workers, loader.batch_size = s.workers, s.workers > 0, row.batch
    metrics = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    cfg.test_evaluator = next(m for m in metrics if m["type"] == "CocoPanopticMetric")
    cfg.test_evaluator.ann_file = str(s.data_root / "annotations" / "panoptic_val2017.json")
    cfg.test_evaluator.seg_prefix = str(s.data_root / "annotations" / "panoptic_val2017") + "/"
    panoptic_only(cfg)
    cfg.merge_from_dict(options_of(s, row))
    return cfg


def mmdet_side(s: Setup, row: Row) -> dict[str, Any]:
    """MMDetection's ``Runner.test()`` with ``CocoPanopticMetric`` at the row's batch size and thresholds."""
    import logging
    from unittest import mock

    import mmdet_reference as ref
    import torch
    from mmengine.hooks import Hook
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from panbench.ops import install
    from panbench.pq.matching import METRIC_KEYS

    install()
    ref._hook_once()
    ref._SEEN.update(ids=[], stat={})
    cfg = mmdet_config(s, row)
    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    saved = process_state()
    try:  # mmengine's environment and OpenCV's thread count undone even where the test raises
        t = time.perf_counter()
        with mock.patch("mmengine.runner.runner.get_device", lambda: s.device):  # mmengine's own pick: cuda if any
            runner = Runner.from_cfg(cfg)
        build_s = time.perf_counter() - t
        sync = (lambda: torch.cuda.synchronize()) if s.device.startswith("cuda") else (lambda: None)
        clock = type("Clock", (_Clock, Hook), {})(sync)
        runner.register_hook(clock, priority="LOWEST")
        t = time.perf_counter()
        out = runner.test()
        sync()
        end = time.perf_counter()
        del runner
    finally:
        process_state(saved)
    wall = end - clock.t0
    n = len(ref._SEEN["ids"])
    per_class = {c: {k: v[k] for k in ("TP", "FP", "FN")} for c, v in ref._SEEN["stat"].items()}
    timed = n - clock.first  # none where the loop had one iteration: no speed, not 0 images/s
    return {"images_per_s": timed / wall if wall > 0 and timed > 0 else None, "timed_images": timed,
            "timed_s": wall, "build_s": build_s, "test_s": end - t,
            "metrics": {k: float(out[f"coco_panoptic/{k}"]) for k in METRIC_KEYS}, "per_class": per_class}


def run_row(s: Setup, row: Row, dataset: Any) -> dict[str, Any]:
    """Every side of one row (module docstring); an error is kept as the row's ``error``."""
    import torch

    out: dict[str, Any] = {**dataclasses.asdict(row), "options": options_of(s, row)}
    t = time.perf_counter()
    try:
        out.update(panbench_side(s, row, dataset))
        why = mmdet_na(row)
        out["mmdet"] = {"na": why} if why else mmdet_side(s, row)
    except Exception as e:  # one failed row must not stop the others
        out["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
    out["row_s"] = time.perf_counter() - t
    if row.compiled:
        torch._dynamo.reset()
    gc.collect()
    if s.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def mmdet_na(row: Row) -> str | None:
    """Why MMDetection's loop does not run for ``row`` (None: it runs)."""
    if MODELS[row.model].registry is None:
        return "a transformers model: no MMDetection config"
    if row.precision != "fp32":
        return "TestLoop autocasts fp16 only"
    if row.compiled:
        return "Runner.test compiles nothing"
    return None


# ---- the plan, the budget, the checks, the table ----

def plan(a: argparse.Namespace, s: Setup) -> list[Row]:
    """fp32 eager first (where mmdet runs), then the other precisions, then compiled; ``all`` before ``raised``."""
    rows = [Row(m, b, p, c == "on", ps) for c in a.compile for p in a.precisions for ps in a.passes
            for m in a.models for b in a.batch_sizes if ps == "all" or s.raised.get(m) is not None]
    return sorted(rows, key=lambda r: (r.compiled, r.precision != "fp32"))


def estimate(done: list[dict[str, Any]], row: Row) -> float:
    """Seconds ``row`` should take: the last like row's (same model, compile state), else the longest so far (three
    times that for a first compiled row), else 0 (the first row always starts)."""
    like = [d["row_s"] for d in done if d["model"] == row.model and d["compiled"] == row.compiled]
    if like:
        return float(like[-1])
    longest = max((d["row_s"] for d in done), default=0.0)
    return longest * (3 if row.compiled else 1)


def check(rows: list[dict[str, Any]]) -> list[str]:
    """Each row where eval and mmdet both ran: the nine metrics within TOLERANCE, the per-class TP/FP/FN equal; the
    mismatches (printed with every check)."""
    bad = []
    for r in rows:
        mm, ev = r.get("mmdet") or {}, r.get("eval")
        if ev is None or "metrics" not in mm:
            continue
        diffs = [abs(ev["metrics"][k] - mm["metrics"][k]) for k in mm["metrics"]]
        worst = math.nan if any(math.isnan(d) for d in diffs) else max(diffs)
        classes = set(ev["per_class"]) | set(mm["per_class"])  # mmdet lists the classes seen, panbench every one
        differ = sorted(c for c in classes if ev["per_class"].get(c, NONE) != mm["per_class"].get(c, NONE))
        ok = worst <= TOLERANCE and not differ  # a NaN fails
        label = Row(r["model"], r["batch"], r["precision"], r["compiled"], r["pass_"]).label()
        r["check"] = {"ok": ok, "max_abs_diff": worst, "classes_differing": differ}
        pred = sum(v["TP"] + v["FP"] for v in mm["per_class"].values())
        print(f"PQ check {label}: panbench PQ {ev['metrics']['PQ']!r}, mmdet PQ {mm['metrics']['PQ']!r}; nine metrics "
              f"max |diff| {worst:.2e} (tolerance {TOLERANCE:g}); per-class TP/FP/FN of {len(classes)} classes "
              f"({pred} predicted segments scored by mmdet): {len(differ)} differ -> {'OK' if ok else 'MISMATCH'}")
        if not ok:
            bad.append(label)
    return bad


def fmt(x: float | None, spec: str = "8.2f") -> str:
    width = int(spec.split(".")[0] or 1)
    return f"{x:{spec}}" if x is not None and not math.isnan(x) else f"{'-':>{width}}"


def table(rows: list[dict[str, Any]], gt: float, smoke: bool = False) -> list[str]:
    """The printed table (module docstring); images/s, outside = eval's share of time outside the forward. A smoke
    run (``--input small``) prints no ratio: its timings check that each side runs, they compare nothing."""
    head = (f"{'model':13} {'batch':>5} {'prec':>5} {'compile':>8} {'pass':>6} {'kept/img':>8} {'fwd img/s':>9} "
            f"{'eval img/s':>10} {'outside':>7} {'mmdet img/s':>11} {'eval/fwd':>8} {'eval/mmdet':>10}")
    lines = [f"ground truth: {gt:.1f} segments per image", head]
    for r in rows:
        lead = (f"{r['model']:13} {r['batch']:5d} {r['precision']:>5} {'on' if r['compiled'] else 'off':>8} "
                f"{r['pass_']:>6}")
        if "error" in r:
            lines.append(f"{lead} FAILED: {r['error']}")
            continue
        fwd, ev, mm = r["forward"]["images_per_s"], r["eval"]["images_per_s"], r["mmdet"].get("images_per_s")
        out = r["eval"]["outside_forward"]
        mm_cell = fmt(mm, "11.2f") if "na" not in r["mmdet"] else f"{'n/a':>11}"
        lines.append(f"{lead} {r['eval']['kept_per_image']:8.1f} {fmt(fwd, '9.2f')} {fmt(ev, '10.2f')} "
                     f"{fmt(100 * out if out is not None else None, '6.1f')}% {mm_cell} "
                     f"{fmt(ev / fwd if ev and fwd and not smoke else None, '8.2f')} "
                     f"{fmt(ev / mm if ev and mm and not smoke else None, '10.2f')}")
    reasons = sorted({r["mmdet"]["na"] for r in rows if "na" in r.get("mmdet", {})})
    if reasons:
        lines.append("mmdet n/a: " + "; ".join(reasons))
    lines.append("img/s: forward alone (first batch of each shape untimed); eval: its record's timed_images / wall_s; "
                 "mmdet: after the first iteration to test()'s end. outside: eval's wall outside the forward. "
                 "eval/fwd, eval/mmdet: ratios of images/s")
    if smoke:
        lines.append("eval/fwd, eval/mmdet not printed: --input small is a smoke test of the script (a few small "
                     "images), its speeds no benchmark")
    return lines


def machine(device: str) -> dict[str, Any]:
    import subprocess

    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else None
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit.stdout.strip() or None,
            "device": device, "gpu": gpu, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cores": os.cpu_count(), "load_start": os.getloadavg()[0], "command": " ".join(sys.argv)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--images", type=int, default=200, help="the sample's 2 images replicated to N (default 200)")
    ap.add_argument("--models", default=",".join(MODELS), help=f"a comma list of {', '.join(MODELS)} (default all)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    ap.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"])
    ap.add_argument("--passes", nargs="+", choices=["all", "raised"], default=["all", "raised"])
    ap.add_argument("--workers", type=int, help="data-loading workers of every side (default 8 on cuda, 0 on cpu)")
    ap.add_argument("--budget-s", type=float, default=480.0, help="no row starts that would end past it (default 480)")
    ap.add_argument("--input", choices=["full", "small"], help="full: the configs' own sizes (default on cuda); small: "
                    f"{SMALL[0]}x{SMALL[1]} mmdet inputs, EoMT at {SMALL[0]} (default on cpu: a smoke test)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench_gpu_eval")
    a = ap.parse_args(argv)
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    if unknown := [m for m in a.models if m not in MODELS]:
        ap.error(f"--models: unknown {', '.join(unknown)}; one of {', '.join(MODELS)}")
    if a.images < 2 or min(a.batch_sizes) < 1:
        ap.error("--images is at least 2 (the sample's two images) and each batch size at least 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device visible to torch; --device cpu runs the smoke test")
    a.workers = a.workers if a.workers is not None else (8 if a.device == "cuda" else 0)
    a.input = a.input or ("full" if a.device == "cuda" else "small")
    return a


def intro(a: argparse.Namespace) -> None:
    say(f"bench_gpu_eval on {a.device}: {a.images} images, models {', '.join(a.models)}, batch {a.batch_sizes}, "
        f"{'/'.join(a.precisions)}, compile {'/'.join(a.compile)}, passes {'/'.join(a.passes)}, workers {a.workers}, "
        f"budget {a.budget_s:.0f} s")
    if a.input == "small":
        print(f"  --input small: the mmdet configs' inputs resized to {SMALL[0]}x{SMALL[1]}, EoMT at {SMALL[0]}x"
              f"{SMALL[0]}: a smoke test of the script, not COCO-size speeds")
    print("  forward: eval's data loading and batching, the model's forward, the fusion never run (nothing after)\n"
          "  eval:    panbench eval's Run on the same loaded model (its fusion, AP on, scoring on a thread beside)\n"
          "  mmdet:   Runner.test() + CocoPanopticMetric on the same config/checkpoint/images/batch (PNGs + "
          "panopticapi); fp32 eager only\n"
          "  they differ: eval computes AP too and scores beside the forward; mmdet writes each prediction as a PNG "
          "and scores it per batch", flush=True)


def run_plan(a: argparse.Namespace, s: Setup) -> tuple[list[dict[str, Any]], list[str]]:
    """Every row that fits the budget, in order, the JSON rewritten after each (a run killed by a ``timeout`` keeps
    the rows done); the rows done and the labels of those skipped."""
    from panbench.data.datasets import load_dataset

    dataset = load_dataset(s.data_root, name="coco")
    done: list[dict[str, Any]] = []
    skipped: list[str] = []
    for row in plan(a, s):
        left = a.budget_s - (time.perf_counter() - T0)
        if skipped or estimate(done, row) > left:
            skipped.append(row.label())
            continue
        r = run_row(s, row, dataset)
        done.append(r)
        write_json(a, s, done, [], None)
        if "error" in r:
            say(f"{row.label()}: FAILED {r['error']}")
            continue
        mm = r["mmdet"].get("images_per_s")
        say(f"{row.label()}: forward {fmt(r['forward']['images_per_s'], '.2f')} img/s, eval "
            f"{fmt(r['eval']['images_per_s'], '.2f')} img/s, mmdet {fmt(mm, '.2f') if mm else 'n/a'} img/s, kept "
            f"{r['eval']['kept_per_image']:.1f} segments/image ({r['row_s']:.1f} s"
            + (f"; graphs compiled inside eval: {r['forward']['graphs_compiled_in_eval']})" if row.compiled else ")"))
    return done, skipped


def write_json(a: argparse.Namespace, s: Setup, rows: list[dict[str, Any]], skipped: list[str],
               mismatches: list[str] | None) -> None:
    """``OUT/bench_gpu_eval.json``: the settings, the machine, the set-up's thresholds, every row, the rows skipped,
    the PQ check's mismatches (None: the run has not reached the check yet, ``complete`` false)."""
    doc = {"complete": mismatches is not None,
           "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
           "machine": {**MACHINE, "load_now": os.getloadavg()[0]}, "gt_per_image": s.gt_per_image,
           "raised": s.raised, "calibration": s.calibration, "rows": rows, "skipped": skipped,
           "mismatches": mismatches, "total_s": time.perf_counter() - T0}
    (a.out / "bench_gpu_eval.json").write_text(json.dumps(doc, indent=1, default=str))


MACHINE: dict[str, Any] = {}


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    intro(a)
    a.out.mkdir(parents=True, exist_ok=True)
    MACHINE.update(machine(a.device))
    with tempfile.TemporaryDirectory(prefix="bench_gpu_eval_") as tmp:
        s = set_up(a, Path(tmp))
        say("set-up done; timing starts")
        rows, skipped = run_plan(a, s)
    if skipped:
        print(f"skipped ({len(skipped)} rows, the --budget-s {a.budget_s:.0f} s would pass): " + "; ".join(skipped))
    bad = check(rows)
    lines = table(rows, s.gt_per_image, smoke=a.input == "small")
    write_json(a, s, rows, skipped, bad)
    if bad:
        print(f"PQ MISMATCH between panbench eval and mmdet in {len(bad)} row(s): {'; '.join(bad)}; no ratio is "
              f"claimed (details in {a.out / 'bench_gpu_eval.json'})")
        return 1
    (a.out / "table.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    failed = sum("error" in r for r in rows)
    say(f"{len(rows)} rows ({failed} failed), {len(skipped)} skipped; {a.out / 'bench_gpu_eval.json'}, "
        f"{a.out / 'table.txt'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
