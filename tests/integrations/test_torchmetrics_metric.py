"""PanbenchPanopticQuality (panbench.integrations.torchmetrics): torchmetrics' input and output, panopticapi's
numbers; where torchmetrics' rules differ, both metrics' numbers on one input and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchmetrics")

from conftest import panopticapi_reference  # noqa: E402
from torchmetrics.detection import PanopticQuality  # noqa: E402

from panbench.data.synth import PanopticImage, write_panoptic  # noqa: E402
from panbench.integrations.torchmetrics import PanbenchPanopticQuality, TorchmetricsInputError  # noqa: E402

THINGS, STUFFS, UNKNOWN = [1, 3, 8], [2, 5, 11], 255  # UNKNOWN: a target category outside both: VOID


def random_pair(rng: np.random.Generator, h: int = 36, w: int = 44) -> tuple[np.ndarray, np.ndarray]:
    """(target, pred), each HxWx2 int64 (category, instance): stuff bands with random instance ids, thing boxes
    (touching and overlapping, instance ids shared across categories), target VOID boxes; the prediction shifted,
    relabelled, merged, with segments dropped (to stuff) and added; only known categories in the prediction."""
    t = np.zeros((h, w, 2), np.int64)
    cuts = np.sort(rng.integers(1, w, 2))
    for a, b in zip([0, *cuts], [*cuts, w]):
        t[:, a:b] = (int(rng.choice(STUFFS)), int(rng.integers(0, 4)))
    for k in range(int(rng.integers(2, 7))):
        y, x, dy, dx = (int(v) for v in (rng.integers(0, h - 4), rng.integers(0, w - 4), *rng.integers(3, 16, 2)))
        t[y:y + dy, x:x + dx] = (int(rng.choice(THINGS)), 1 + k % 3)
    y, x = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
    t[y:y + 5, x:x + 6] = (UNKNOWN, 0)
    p = np.roll(t, tuple(int(v) for v in rng.integers(-2, 3, 2)), axis=(0, 1)).copy()
    p[p[..., 0] == UNKNOWN] = (int(STUFFS[0]), 0)
    for c, i in {(int(c), int(i)) for c, i in p.reshape(-1, 2)}:
        m = (p[..., 0] == c) & (p[..., 1] == i)
        u = rng.random()
        if u < 0.15:
            p[m] = (int(rng.choice(STUFFS)), 0)
        elif u < 0.3:
            p[m, 0] = int(rng.choice(THINGS if c in THINGS else STUFFS))
        elif u < 0.4 and c in THINGS:
            p[m, 1] = 1
    p[:4, :5] = (int(rng.choice(THINGS)), 9)
    return t, p


def batches(seed: int, n: int, size: int = 2) -> list[tuple[Any, Any]]:
    """``n`` random images in batches of ``size`` as torchmetrics tensors (preds, target), each (B, H, W, 2)."""
    rng = np.random.default_rng(seed)
    pairs = [random_pair(rng) for _ in range(n)]
    return [(torch.from_numpy(np.stack([p for _, p in pairs[k:k + size]])),
             torch.from_numpy(np.stack([t for t, _ in pairs[k:k + size]]))) for k in range(0, n, size)]


def to_coco(x: np.ndarray, cats: set[int], crowd: frozenset[int] = frozenset()) -> PanopticImage:
    """One HxWx2 image as a COCO panoptic id map and segments_info, written out independently of the metric's own
    conversion: a segment per (thing category, instance), one per stuff category, other categories VOID (id 0);
    ``crowd``: thing categories whose segments are crowd regions."""
    x = x.copy()
    x[np.isin(x[..., 0], STUFFS), 1] = 0
    ids = np.zeros(x.shape[:2], np.uint32)
    segs = []
    for c, i in sorted({(int(c), int(i)) for c, i in x.reshape(-1, 2) if int(c) in cats}):
        m = (x[..., 0] == c) & (x[..., 1] == i)
        ids[m] = 1000 + len(segs)
        segs.append({"id": 1000 + len(segs), "category_id": c, "iscrowd": int(c in crowd), "area": int(m.sum())})
    return PanopticImage(ids, segs)


def coco_files(tmp: Path, data: list[tuple[Any, Any]], crowd: frozenset[int] = frozenset()) -> dict[str, Path]:
    """``data`` (torchmetrics batches) written as COCO panoptic gt/pred JSON + PNG folders."""
    cats = [{"id": c, "name": str(c), "isthing": int(c in THINGS)} for c in THINGS + STUFFS]
    known = set(THINGS + STUFFS)
    images = [(p, t) for preds, target in data for p, t in zip(preds.numpy(), target.numpy())]
    gj, gd = write_panoptic(tmp, "gt", [(k + 1, to_coco(t, known, crowd)) for k, (_, t) in enumerate(images)], cats)
    pj, pd = write_panoptic(tmp, "pred", [(k + 1, to_coco(p, known)) for k, (p, _) in enumerate(images)], cats)
    return {"gt_json": gj, "gt_dir": gd, "pred_json": pj, "pred_dir": pd}


def run(metric: Any, data: list[tuple[Any, Any]]) -> Any:
    for preds, target in data:
        metric.update(preds, target)
    return metric.compute()


def test_pq_sq_rq_and_per_class_equal_panopticapi_on_random_batches(tmp_path: Path) -> None:
    data = batches(seed=1, n=9, size=2)  # 5 updates, the last with one image
    ref = panopticapi_reference(**coco_files(tmp_path, data))
    order = [str(c) for c in THINGS + STUFFS]
    pq = run(PanbenchPanopticQuality(THINGS, STUFFS), data)
    assert pq.dtype == torch.float64 and pq.shape == ()
    assert float(pq) == pytest.approx(ref["PQ"] / 100, abs=1e-12)
    psr = run(PanbenchPanopticQuality(THINGS, STUFFS, return_sq_and_rq=True), data)
    assert psr.shape == (3,)
    assert psr.tolist() == pytest.approx([ref["PQ"] / 100, ref["SQ"] / 100, ref["RQ"] / 100], abs=1e-12)
    per = run(PanbenchPanopticQuality(THINGS, STUFFS, return_per_class=True), data)
    assert per.shape == (1, 6) and per.dtype == torch.float64
    assert per[0].tolist() == pytest.approx([ref["per_class"][c]["PQ"] / 100 for c in order], abs=1e-12)
    both = run(PanbenchPanopticQuality(THINGS, STUFFS, return_per_class=True, return_sq_and_rq=True), data)
    assert both.shape == (6, 3)
    assert both.flatten().tolist() == pytest.approx([ref["per_class"][c][k] / 100 for c in order
                                                     for k in ("PQ", "SQ", "RQ")], abs=1e-12)


def test_on_random_batches_without_predicted_void_the_numbers_are_torchmetrics_ones() -> None:
    """The rules agree there (target VOID, stuff instance ids, several images): the same numbers up to
    torchmetrics' float32 IoU."""
    data = batches(seed=2, n=8, size=3)
    for opts in ({}, {"return_sq_and_rq": True}, {"return_per_class": True},
                 {"return_per_class": True, "return_sq_and_rq": True}):
        ours, theirs = run(PanbenchPanopticQuality(THINGS, STUFFS, **opts), data), run(
            PanopticQuality(THINGS, STUFFS, **opts), data)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), opts


TM_PREDS = [[[[6, 0], [0, 0], [6, 0], [6, 0]], [[0, 0], [0, 0], [6, 0], [0, 1]], [[0, 0], [0, 0], [6, 0], [0, 1]],
             [[0, 0], [7, 0], [6, 0], [1, 0]], [[0, 0], [7, 0], [7, 0], [7, 0]]]]
TM_TARGET = [[[[6, 0], [0, 1], [6, 0], [0, 1]], [[0, 1], [0, 1], [6, 0], [0, 1]], [[0, 1], [0, 1], [6, 0], [1, 0]],
              [[0, 1], [7, 0], [1, 0], [1, 0]], [[0, 1], [7, 0], [7, 0], [7, 0]]]]


@pytest.mark.parametrize(("opts", "expected"), [
    ({}, [0.5463]),
    ({"return_sq_and_rq": True}, [0.5463, 0.6111, 0.6667]),
    ({"return_per_class": True}, [[0.5185, 0.0000, 0.6667, 1.0000]]),
])
def test_torchmetrics_docstring_examples_give_its_numbers(opts: dict[str, bool], expected: list[Any]) -> None:
    """torchmetrics' own examples (category 0 a thing), things {0, 1}, stuffs {6, 7}."""
    preds, target = torch.tensor(TM_PREDS), torch.tensor(TM_TARGET)
    ours = PanbenchPanopticQuality(things={0, 1}, stuffs={6, 7}, **opts)(preds, target)
    theirs = PanopticQuality(things={0, 1}, stuffs={6, 7}, **opts)(preds, target)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)
    assert torch.allclose(ours, torch.tensor(expected, dtype=torch.float64).reshape(theirs.shape), atol=5e-5)


def one_image(pred: list[int], target: list[int]) -> tuple[Any, Any]:
    """A 1x10 image of category ids (instance 0 everywhere) as (preds, target) tensors."""
    def t(cats: list[int]) -> Any:
        return torch.tensor([[[[c, 0] for c in cats]]])
    return t(pred), t(target)


def test_a_predicted_void_pixel_counts_against_the_target_segment_in_panbench_not_in_torchmetrics() -> None:
    """Thing 1 covers 10 pixels of the target; the prediction has 6 of them as 1 and 4 of an unknown category 9
    (VOID with allow_unknown_preds_category).  panopticapi: IoU = 6 / (6 + 10 - 6) = 0.6 (the 4 VOID pixels are
    missed pixels of the target), PQ 0.6; torchmetrics takes them out of the target: IoU = 6 / 6, PQ 1."""
    preds, target = one_image([1] * 6 + [9] * 4, [1] * 10)
    kw: dict[str, Any] = {"things": [1], "stuffs": [2], "allow_unknown_preds_category": True}
    assert float(PanbenchPanopticQuality(**kw)(preds, target)) == pytest.approx(0.6, abs=1e-12)
    assert float(PanopticQuality(**kw)(preds, target)) == pytest.approx(1.0, abs=1e-6)


def test_a_target_segment_mostly_under_predicted_void_is_a_false_negative_in_panbench_not_in_torchmetrics() -> None:
    """Target: thing 1 on 10 pixels, stuff 2 on 10; prediction: 7 of thing 1's pixels VOID (unknown 9), its other 3
    and all of stuff 2's predicted stuff 2 (13 pixels).  Both: stuff 2 a TP of IoU 10 / 13.  panopticapi: thing 1 a
    false negative, PQ (0 + 10/13) / 2; torchmetrics does not count it (over half of it is under predicted VOID),
    so thing 1 has no TP, FP or FN and leaves the average: PQ 10 / 13."""
    preds, target = one_image([9] * 7 + [2] * 13, [1] * 10 + [2] * 10)
    kw: dict[str, Any] = {"things": [1], "stuffs": [2], "allow_unknown_preds_category": True}
    ours = PanbenchPanopticQuality(return_per_class=True, **kw)(preds, target)
    theirs = PanopticQuality(return_per_class=True, **kw)(preds, target)
    assert ours[0].tolist() == pytest.approx([0.0, 10 / 13], abs=1e-12)
    assert theirs[0].tolist() == pytest.approx([0.0, 10 / 13], abs=1e-6)
    assert float(PanbenchPanopticQuality(**kw)(preds, target)) == pytest.approx(5 / 13, abs=1e-12)
    assert float(PanopticQuality(**kw)(preds, target)) == pytest.approx(10 / 13, abs=1e-6)


def test_stuff_instance_ids_are_ignored_as_torchmetrics_ignores_them() -> None:
    """A stuff category is one segment whatever its instance ids: two ids in the target, one in the prediction,
    PQ 1 in both metrics."""
    target = torch.tensor([[[[2, 0], [2, 0], [2, 5], [2, 5], [1, 1]]]])
    preds = torch.tensor([[[[2, 3], [2, 3], [2, 3], [2, 3], [1, 4]]]])
    assert float(PanbenchPanopticQuality([1], [2])(preds, target)) == 1.0
    assert float(PanopticQuality([1], [2])(preds, target)) == pytest.approx(1.0, abs=1e-6)


def test_a_crowd_region_has_no_torchmetrics_form_so_it_scores_as_an_ordinary_segment(tmp_path: Path) -> None:
    """torchmetrics' input has no crowd flag: the same images with thing 1's segments marked crowd score otherwise
    in panopticapi (crowd regions neither match nor count as false negatives; a prediction mostly on one is no
    false positive)."""
    data = batches(seed=3, n=4)
    files = coco_files(tmp_path / "plain", data)
    crowd = panopticapi_reference(**coco_files(tmp_path / "crowd", data, crowd=frozenset({1})))
    ours = float(run(PanbenchPanopticQuality(THINGS, STUFFS), data))
    assert ours == pytest.approx(panopticapi_reference(**files)["PQ"] / 100, abs=1e-12)
    assert abs(ours - crowd["PQ"] / 100) > 1e-3


def test_an_unknown_predicted_category_is_a_one_line_value_error_naming_the_option() -> None:
    preds, target = one_image([1] * 5 + [9] * 5, [1] * 10)
    with pytest.raises(ValueError, match="allow_unknown_preds_category=True") as err:
        PanbenchPanopticQuality([1], [2]).update(preds, target)
    assert isinstance(err.value, TorchmetricsInputError) and "\n" not in str(err.value)
    with pytest.raises(ValueError):  # torchmetrics raises a ValueError too
        PanopticQuality([1], [2]).update(preds, target)


@pytest.mark.parametrize(("preds", "target", "error"), [
    (torch.zeros(1, 4, 4, 2, dtype=torch.long), torch.zeros(1, 4, 5, 2, dtype=torch.long), ValueError),
    (torch.zeros(1, 4, 4, 3, dtype=torch.long), torch.zeros(1, 4, 4, 3, dtype=torch.long), ValueError),
    (torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2, dtype=torch.long), ValueError),
    (np.zeros((1, 4, 4, 2), np.int64), torch.zeros(1, 4, 4, 2, dtype=torch.long), TypeError),
])
def test_bad_tensors_raise_torchmetrics_exception_types(preds: Any, target: Any, error: type) -> None:
    with pytest.raises(error):
        PanopticQuality([1], [0]).update(preds, target)
    with pytest.raises(error):
        PanbenchPanopticQuality([1], [0]).update(preds, target)


def test_point_clouds_and_volumes_score_as_images_do() -> None:
    """torchmetrics' (B, *spatial, 2): one spatial dimension (points) or three (volumes) score as the same pixels
    laid out as an image."""
    preds, target = batches(seed=4, n=2)[0]
    image = float(PanbenchPanopticQuality(THINGS, STUFFS)(preds, target))
    points = float(PanbenchPanopticQuality(THINGS, STUFFS)(preds.reshape(2, -1, 2), target.reshape(2, -1, 2)))
    volume = float(PanbenchPanopticQuality(THINGS, STUFFS)(preds.reshape(2, 6, 6, -1, 2),
                                                           target.reshape(2, 6, 6, -1, 2)))
    assert image == points == volume


def test_sparse_large_instance_ids_score_as_small_ones() -> None:
    preds, target = batches(seed=5, n=2)[0]
    small = float(PanbenchPanopticQuality(THINGS, STUFFS)(preds, target))
    big = (preds.clone(), target.clone())
    for x in big:
        x[..., 1] = x[..., 1] * 4 * 10**17 - 18 * 10**17  # (category, instance) keys beyond int64
    assert float(PanbenchPanopticQuality(THINGS, STUFFS)(*big)) == small


def test_many_categories_and_instance_ids_score_as_few_do() -> None:
    """Over 2^22 possible (category, instance) keys per image: the segments are renumbered another way (np.unique),
    with the same numbers."""
    preds, target = batches(seed=5, n=2)[0]
    few = float(PanbenchPanopticQuality(THINGS, STUFFS)(preds, target))
    many = (preds.clone(), target.clone())
    for x in many:
        x[..., 1] *= 100_000
    assert float(PanbenchPanopticQuality(THINGS + list(range(1000, 1200)), STUFFS)(*many)) == few


def test_the_state_is_integer_sums_and_images_split_over_metrics_add_up_exactly() -> None:
    """What a DDP sync does (sum of each process's state), done by hand: two metrics with half the images each."""
    data = batches(seed=6, n=8)
    whole = PanbenchPanopticQuality(THINGS, STUFFS, return_per_class=True)
    a, b = (PanbenchPanopticQuality(THINGS, STUFFS, return_per_class=True) for _ in range(2))
    for metric, part in ((whole, data), (a, data[::2]), (b, data[1::2])):
        for preds, target in part:
            metric.update(preds, target)
    assert whole.sums.dtype == torch.int64
    a.sums += b.sums
    assert torch.equal(a.compute(), whole.compute())


def score_cli(files: dict[str, Path]) -> dict[str, Any]:
    import contextlib
    import io

    from panbench.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["score", "--gt-json", str(files["gt_json"]), "--gt-dir", str(files["gt_dir"]),
                     "--pred-json", str(files["pred_json"]), "--pred-dir", str(files["pred_dir"]), "--json"]) == 0
    return json.loads(out.getvalue())


def lightning_validate(tmp: Path, data: list[tuple[Any, Any]], devices: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    """``Trainer.validate`` (tests/integrations/lightning_validate.py) on each of ``devices`` CPU processes, in order,
    in one process of its own (and the ranks Lightning starts): device count -> what rank 0 wrote."""
    import os
    import subprocess
    import sys

    from helpers import free_port

    npz = tmp / "data.npz"
    np.savez(npz, preds=torch.cat([p for p, _ in data]).numpy(), target=torch.cat([t for _, t in data]).numpy(),
             things=np.array(THINGS), stuffs=np.array(STUFFS))
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "PL_DISABLE_FORK": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("lightning_validate.py")), str(npz),
                           str(tmp), *map(str, devices)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {d: json.loads((tmp / f"out{d}.json").read_text()) for d in devices}


@pytest.mark.slow
def test_lightning_validate_on_two_ddp_cpu_processes_gives_one_process_pq_and_panbench_score(tmp_path: Path) -> None:
    """Lightning's DDP sync adds the integer states: the 2-process PQ, SQ, RQ and per-class values equal one
    process's, and ``panbench score`` on the same images written as COCO panoptic PNG + JSON."""
    pytest.importorskip("lightning", reason="lightning is not installed (scripts/setup.sh installs it)")
    data = batches(seed=7, n=6, size=1)
    runs = lightning_validate(tmp_path, data, (1, 2))  # ddp last: its process group stays
    two, one = runs[2], runs[1]
    assert two["world_size"] == 2 and two["seen_per_process"] == [3, 3] and one["seen_per_process"] == [6]
    score = score_cli(coco_files(tmp_path / "coco", data))
    for run_ in (two, one):
        assert run_["pq_sq_rq"] == pytest.approx([score["PQ"] / 100, score["SQ"] / 100, score["RQ"] / 100],
                                                 abs=1e-9)
        assert run_["per_class"][0] == pytest.approx(
            [0.0 if score["per_class"][str(c)]["PQ"] is None else score["per_class"][str(c)]["PQ"] / 100
             for c in THINGS + STUFFS], abs=1e-9)
        assert run_["returned"][0]["val_pq"] == pytest.approx(score["PQ"] / 100, abs=1e-6)
    assert two["pq_sq_rq"] == one["pq_sq_rq"] and two["per_class"] == one["per_class"]


def test_setup_and_the_test_extra_install_the_lightning_the_ddp_test_runs_with() -> None:
    import re

    import tomllib

    from panbench.package import REPO_ROOT

    test_extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert "lightning==2.6.6" in test_extra
    assert re.search(r"\btorchmetrics==1\.9\.0 vernier==0\.5\.4 lightning==2\.6\.6\b",
                     (REPO_ROOT / "scripts" / "setup.sh").read_text())


def test_with_no_category_present_every_value_is_nan_as_in_torchmetrics() -> None:
    """Only VOID on both sides: no category has a TP, FP or FN, and the average of none is NaN in both."""
    preds, target = one_image([9] * 10, [9] * 10)
    kw: dict[str, Any] = {"things": [1], "stuffs": [2], "allow_unknown_preds_category": True,
                          "return_sq_and_rq": True}
    assert torch.isnan(PanbenchPanopticQuality(**kw)(preds, target)).all()
    assert torch.isnan(PanopticQuality(**kw)(preds, target)).all()


@pytest.mark.slow
def test_bench_torchmetrics_checks_panbench_against_score_and_panopticapi_before_printing_a_ratio(
        tmp_path: Path, coco_sample: Path) -> None:
    """scripts/bench_torchmetrics.py on a few images of its real set (COCO's own PNGs; the synthetic set differs only
    in the files it starts from): the tensors it builds, written back as COCO files, score in ``panbench score`` and
    panopticapi as PanbenchPanopticQuality scores the tensors, and the ratio is printed."""
    import subprocess
    import sys

    from panbench.package import REPO_ROOT

    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "bench_torchmetrics.py"), "--set", "real",
                        "--real-images", "2", "--tm-images", "1", "--workdir", str(tmp_path),
                        "--sample", str(coco_sample / "annotations")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("equal `panbench score`") == 1 and r.stdout.count("speed-up on the same 1 images") == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_and_a_metric_on_the_gpu_give_the_cpu_numbers() -> None:
    data = batches(seed=8, n=4)
    cpu = run(PanbenchPanopticQuality(THINGS, STUFFS, return_per_class=True), data)
    metric = PanbenchPanopticQuality(THINGS, STUFFS, return_per_class=True).to("cuda")
    gpu = run(metric, [(p.cuda(), t.cuda()) for p, t in data])
    assert gpu.device.type == "cuda" and metric.sums.device.type == "cuda"
    assert torch.equal(gpu.cpu(), cpu)


def test_category_ids_far_apart_need_no_table_of_their_span() -> None:
    """things {0} and stuffs {10**12}: looked up by a sorted search, not a table of 10**12 entries."""
    import torch

    from panbench.integrations.torchmetrics import PanbenchPanopticQuality

    far = 10**12
    target = torch.tensor([[[[0, 1], [0, 1]], [[far, 0], [far, 0]]]])
    preds = torch.tensor([[[[0, 1], [0, 1]], [[far, 0], [0, 1]]]])
    pq = PanbenchPanopticQuality(things={0}, stuffs={far}, return_sq_and_rq=True)
    pq.update(preds, target)
    res = pq.compute()
    m = PanbenchPanopticQuality(things={0, 5}, stuffs={far - 1, far})  # ids around, not present
    m.update(preds, target)
    assert res.shape == (3,) and float(m.compute()) == pytest.approx(float(res[0]))


def test_predictions_in_another_class_order_warn_and_keep_the_result_a_tensor() -> None:
    """The target as the prediction with each category written as the next of its kind: the diagnosis is a
    warning (torchmetrics' compute keeps its tensor)."""
    from panbench import DiagnosisWarning

    roll = {**dict(zip(THINGS, THINGS[1:] + THINGS[:1], strict=True)),
            **dict(zip(STUFFS, STUFFS[1:] + STUFFS[:1], strict=True))}
    data = []
    for _, target in batches(seed=3, n=8):
        preds = target.clone()
        for a, b in roll.items():
            preds[..., 0][target[..., 0] == a] = b
        data.append((preds, target))
    with pytest.warns(DiagnosisWarning, match="category_mapping"):  # the target's VOID (UNKNOWN) copied along
        pq = run(PanbenchPanopticQuality(THINGS, STUFFS, allow_unknown_preds_category=True), data)
    assert isinstance(pq, torch.Tensor) and pq.shape == () and float(pq) < 0.05


def test_every_evaluation_of_a_class_order_mistake_warns() -> None:
    """A training loop's rounds (update, compute, reset): each compute warns, not the first alone."""
    import warnings

    from panbench import DiagnosisWarning

    roll = {**dict(zip(THINGS, THINGS[1:] + THINGS[:1], strict=True)),
            **dict(zip(STUFFS, STUFFS[1:] + STUFFS[:1], strict=True))}
    data = []
    for _, target in batches(seed=3, n=8):
        preds = target.clone()
        for a, b in roll.items():
            preds[..., 0][target[..., 0] == a] = b
        data.append((preds, target))
    metric = PanbenchPanopticQuality(THINGS, STUFFS, allow_unknown_preds_category=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            run(metric, data)
            metric.reset()
    assert len([w for w in caught if issubclass(w.category, DiagnosisWarning)]) == 3


IMAGE_COUNT = f"{Path(__file__).parents[2] / 'examples' / 'evaluators' / 'image_count.py'}:ImageCount"


def _image_count(data: list[tuple[Any, Any]]) -> dict[str, int]:
    """The example evaluator's fields on ``data``, from the independent conversion of :func:`to_coco`."""
    targets = [t for _, target in data for t in target.numpy()]
    return {"images": len(targets), "gt_segments": sum(len(to_coco(t, set(THINGS + STUFFS)).segments_info)
                                                       for t in targets)}


def test_a_user_evaluator_sees_every_image_and_result_carries_its_fields_beside_computes_numbers() -> None:
    data = batches(seed=8, n=6)
    metric = PanbenchPanopticQuality(THINGS, STUFFS, return_sq_and_rq=True, evaluators=[IMAGE_COUNT])
    pq, sq, rq = run(metric, data).tolist()
    result = metric.result()
    assert result.evaluators == {"ImageCount": _image_count(data)}
    assert (result.all.pq, result.all.sq, result.all.rq) == (pq, sq, rq) and result.n_images == 6
    metric.reset()
    assert run(metric, data[:1]).shape == (3,) and metric.result().evaluators["ImageCount"]["images"] == 2


def _rank(rank: int, port: int, data: list[tuple[Any, Any]], out: Path) -> None:
    import os

    import torch.distributed as dist
    from helpers import close_ranks, end_rank

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        metric = PanbenchPanopticQuality(THINGS, STUFFS, evaluators=[IMAGE_COUNT])
        pq = run(metric, data).item()
        result = metric.result()
        (out / f"rank{rank}.json").write_text(json.dumps({"pq": pq, "result_pq": result.all.pq,
                                                          "evaluators": result.evaluators}))
    finally:
        close_ranks()
    end_rank()


@pytest.mark.parametrize("split", [pytest.param("halves", marks=pytest.mark.system), "one rank without images"])
def test_two_gloo_ranks_give_a_user_evaluator_every_image_once(tmp_path: Path, split: str) -> None:
    """The evaluators' parts cross ranks as torchmetrics' concatenated state (a rank without images adds an empty
    float tensor): on every rank, the fields and PQ of one process with all the images."""
    from helpers import free_port, spawn_ranks

    data = batches(seed=9, n=6)
    whole = PanbenchPanopticQuality(THINGS, STUFFS)
    want = run(whole, data).item()
    shares = [data[::2], data[1::2]] if split == "halves" else [data, []]
    port = free_port()
    assert spawn_ranks(_rank, [(r, port, shares[r], tmp_path) for r in range(2)]) == [0, 0]
    for r in range(2):
        got = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert got == {"pq": want, "result_pq": want, "evaluators": {"ImageCount": _image_count(data)}}, r


def _rank_built_differently(rank: int, port: int, data: list[tuple[Any, Any]], out: Path) -> None:
    import os
    from datetime import timedelta

    import torch.distributed as dist
    from helpers import close_ranks, end_rank

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=20))  # fails, never hangs
    try:
        said = {}
        for case, kw in (("evaluators", {"evaluators": [IMAGE_COUNT]} if rank else {}),
                         ("categories", {"things": [*THINGS, 9]} if rank else {})):
            metric = PanbenchPanopticQuality(**{"things": THINGS, "stuffs": STUFFS, **kw})
            try:
                said[case] = run(metric, data).item()
            except TorchmetricsInputError as e:
                said[case] = str(e)
        (out / f"rank{rank}.json").write_text(json.dumps(said))
    finally:
        close_ranks()
    end_rank()


def test_two_gloo_ranks_built_differently_are_refused_on_each_by_name(tmp_path: Path) -> None:
    """Evaluators on one rank only, or other categories: every rank raises one line at the sync (not a wait on a
    state the other rank never sends, nor torch's error of two sizes)."""
    from helpers import free_port, spawn_ranks

    port = free_port()
    assert spawn_ranks(_rank_built_differently, [(r, port, batches(seed=9, n=2), tmp_path) for r in range(2)],
                       timeout=90) == [0, 0]
    fix = "build the metric alike on every process (the same things, stuffs and evaluators)"
    for r, (evaluators, things) in enumerate((("no evaluators", THINGS), ("evaluators=['ImageCount@1']",
                                                                           [*THINGS, 9]))):
        assert json.loads((tmp_path / f"rank{r}.json").read_text()) == {
            "evaluators": f"PanbenchPanopticQuality: the processes' metrics have different evaluators ({evaluators} "
                          f"on this process); {fix}",
            "categories": f"PanbenchPanopticQuality: the processes' metrics have different categories (things="
                          f"{things}, stuffs={STUFFS} on this process); {fix}"}
