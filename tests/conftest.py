"""Shared fixtures: the demo dataset, the real COCO sample in ../shared, and panopticapi as the reference."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# MKL's strict reproducible mode for the whole session, before anything calls MKL: panbench sets it as a model loads
# (panbench.models.numerics), which in a test process would come after other tests' products
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


def worker_threads() -> int | None:
    """The threads each pytest-xdist worker (and every process its tests start) runs on: its share of the cores, so
    that ``-n auto``'s workers do not each start an OpenMP team as wide as the machine and spin against each other
    (docs/testing.md, "How long"); None outside xdist, or where the environment sets ``OMP_NUM_THREADS`` itself."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:
        return None
    return max(1, len(os.sched_getaffinity(0)) // workers)


# before torch or numpy starts its thread pool (xdist sets the count before a worker reads this file)
if (_THREADS := worker_threads()) is not None:
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)

ROOT = Path(__file__).resolve().parents[1]
COCO_SAMPLE = Path(
    os.environ.get("PANBENCH_COCO_SAMPLE", ROOT.parent / "shared" / "data" / "coco-panoptic-val2017-sample")
)


@pytest.fixture(scope="module")
def demo_root() -> Path:
    """The demo dataset under data/demo (``panbench data demo``), made once per test module when absent."""
    from panbench.data.demo import make_demo

    return make_demo(ROOT / "data" / "demo")


@pytest.fixture
def coco_sample() -> Path:
    """The 2-image COCO panoptic val2017 sample (read in place, never copied into the repo)."""
    if not (COCO_SAMPLE / "annotations" / "panoptic_val2017.json").is_file():
        pytest.skip(f"COCO sample not found at {COCO_SAMPLE} (set PANBENCH_COCO_SAMPLE)")
    return COCO_SAMPLE


def panopticapi_reference(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path) -> dict[str, Any]:
    """panopticapi's numbers (single core, no multiprocessing) in panbench's key names; per class its
    TP/FP/FN, IoU sum (``IOU``) and PQ/SQ/RQ (0-100)."""
    from panopticapi.evaluation import pq_compute_single_core

    gt = json.loads(Path(gt_json).read_text())
    pred = json.loads(Path(pred_json).read_text())
    cats = {c["id"]: c for c in gt["categories"]}
    pred_by_id = {a["image_id"]: a for a in pred["annotations"]}
    pairs = [(a, pred_by_id[a["image_id"]]) for a in gt["annotations"]]
    stat = pq_compute_single_core(0, pairs, str(gt_dir), str(pred_dir), cats)
    out: dict[str, Any] = {}
    for sfx, isthing in (("", None), ("_th", True), ("_st", False)):
        try:
            res, _ = stat.pq_average(cats, isthing=isthing)
        except ZeroDivisionError:  # no category of the group present: panbench reports 0
            res = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
        out["PQ" + sfx], out["SQ" + sfx], out["RQ" + sfx] = 100 * res["pq"], 100 * res["sq"], 100 * res["rq"]
    try:
        _, per_class = stat.pq_average(cats, isthing=None)
    except ZeroDivisionError:  # no category present at all: every class is 0
        per_class = {cid: {"pq": 0.0, "sq": 0.0, "rq": 0.0} for cid in cats}
    out["per_class"] = {
        str(cid): {"TP": stat.pq_per_cat[cid].tp, "FP": stat.pq_per_cat[cid].fp, "FN": stat.pq_per_cat[cid].fn,
                   "IOU": stat.pq_per_cat[cid].iou, "PQ": 100 * per_class[cid]["pq"],
                   "SQ": 100 * per_class[cid]["sq"], "RQ": 100 * per_class[cid]["rq"]}
        for cid in cats
    }
    return out


@pytest.fixture(autouse=True, scope="session")
def _own_running_dir(tmp_path_factory) -> None:
    """The markers of running panbench evals (panbench.evaluation.context.running_dir) in a folder of this test
    session: another panbench run on the machine does not mark the tests' runs as overlapped."""
    os.environ["PANBENCH_RUNNING_DIR"] = str(tmp_path_factory.mktemp("running"))


@pytest.fixture(autouse=True, scope="session")
def _own_cache_dir(tmp_path_factory) -> None:
    """panbench's cache (the model facts of ``ls`` and of eval's FLOPs pass, panbench.evaluation.flops)
    in a folder of this test session: the user's cache neither serves nor receives the tests' counts."""
    os.environ["PANBENCH_CACHE"] = str(tmp_path_factory.mktemp("panbench-cache"))


@pytest.fixture
def figures(monkeypatch) -> Any:
    """The figures the plot functions draw, by file name (saved nowhere; closed after the test)."""
    from panbench.reporting import plot_parts
    from panbench.reporting.figure_style import plt

    drawn: dict[str, Any] = {}

    def keep(fig: Any, path: Path, dpi: int = 100) -> Path:
        drawn[path.name] = fig
        return path

    monkeypatch.setattr(plot_parts, "save", keep)
    yield drawn
    for fig in drawn.values():
        plt().close(fig)


def write_figures_blank(monkeypatch: pytest.MonkeyPatch, in_full: Callable[[Path], bool] = lambda path: False) -> None:
    """Each figure a plot function makes written as a blank inch at 10 dpi by the real ``write_figure`` (its name,
    format, file and manifest as drawn), not fitted and rendered at full size; those whose path ``in_full`` picks
    are saved as drawn. For the tests of folders, links and notes, which read no figure's content (the figures'
    own tests do)."""
    from panbench.reporting import plot_parts
    from panbench.reporting.figure_style import plt

    save, write = plot_parts.save, plot_parts.write_figure

    def blank(fig: Any, path: Path, dpi: int = 100) -> Path:
        if in_full(path):
            return save(fig, path, dpi)
        plt().close(fig)
        small = plt().figure(figsize=(1, 1))
        try:
            return write(small, path, 10)
        finally:
            plt().close(small)

    monkeypatch.setattr(plot_parts, "save", blank)


@pytest.fixture
def blank_figures(monkeypatch) -> None:
    """:func:`write_figures_blank` for the test."""
    write_figures_blank(monkeypatch)


# `make test-vision` sets it: there a test marked `torchvision` that skips is a failure (the tier exists to run them)
VISION_TIER = os.environ.get("PANBENCH_VISION_TIER") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if VISION_TIER and report.skipped and item.get_closest_marker("torchvision") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in the torchvision tier (PANBENCH_VISION_TIER=1), where it must run: {reason}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """In the torchvision tier a test module that marks its tests `torchvision` and skips as a whole (a module-level
    ``importorskip``, before any of its tests runs) fails too."""
    report = yield
    if VISION_TIER and report.skipped and isinstance(collector, pytest.Module) \
            and "pytest.mark.torchvision" in collector.path.read_text():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in the torchvision tier (PANBENCH_VISION_TIER=1), where it must run: {reason}"
    return report


#: every collected test, kept before ``-m`` and ``-k`` deselect any (tests/test_test_tree.py reads it when the
#: session collected the whole tree)
COLLECTED = pytest.StashKey[list[pytest.Item]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[COLLECTED] = list(items)
