"""MMDetection's own test loop, run as the reference that panbench's numbers are checked against.

What runs is what mmdet's ``tools/test.py`` runs: ``Config.fromfile`` on the model's config,
mmengine ``Runner.from_cfg(cfg).test()`` with the config's ``test_dataloader`` and mmdet's
``CocoPanopticMetric`` (which writes every prediction as a PNG and scores it with panopticapi's
per-image ``pq_compute_single_core``).  Nothing of panbench takes part: no import trimming, no
panbench model loading, no panbench scoring.  The only changes to the config are where the data
and the checkpoint are (``data_root``, ``ann_file``, ``seg_prefix``, ``load_from``), a scratch
``work_dir``, quiet logging and, when asked, the first ``limit`` images (``dataset.indices``),
the data-loading workers and :func:`panbench.models.mmdet.family.panoptic_only` (the instance/semantic outputs
off, as ``panbench eval`` runs MaskFormer-family models).

Per-class TP/FP/FN/IoU come from the ``PQStat`` that the metric averages: ``PQStat.pq_average``
is wrapped to note the object it is called on before it computes.  The image ids are those the
metric's ``process`` received.

Used by ``tests/evaluation/test_mmdet_parity.py`` and ``scripts/bench_eval.py``, always in a child process
(one process runs one or more models one after the other)::
    .venv/bin/python scripts/mmdet_reference.py --data-root data/demo --model CONFIG=CHECKPOINT [--model ...]
        [--limit N] [--workers W] [--panoptic-only]

prints one line ``MMDET_REFERENCE {json}`` per model: metrics (the nine, 0-100), per_class,
image_ids, loop_s (``Runner.from_cfg`` + ``test()``) and process_s (since this module started).
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's panbench, run from anywhere

from panbench.models.mmdet.family import panoptic_only as switch_off  # noqa: E402
from panbench.ops import install  # noqa: E402
from panbench.pq.matching import METRIC_KEYS  # noqa: E402

MARK = "MMDET_REFERENCE "


@dataclass
class Reference:
    """One model's result from MMDetection's test loop."""

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]  # category id -> TP, FP, FN, IOU (panopticapi's PQStat)
    image_ids: list[int]
    loop_s: float
    process_s: float


_SEEN: dict[str, Any] = {}


def _hook_once() -> None:
    """Note (in ``_SEEN``) the PQStat the metric averages and the image ids its ``process`` receives."""
    if _SEEN.get("hooked"):
        return
    _SEEN["hooked"] = True
    from mmdet.evaluation.metrics.coco_panoptic_metric import CocoPanopticMetric
    from panopticapi.evaluation import PQStat

    average, process = PQStat.pq_average, CocoPanopticMetric.process

    def pq_average(self: Any, categories: Any, isthing: Any) -> Any:
        if isthing is None:
            _SEEN["stat"] = {str(c): {"TP": s.tp, "FP": s.fp, "FN": s.fn, "IOU": s.iou}
                            for c, s in self.pq_per_cat.items()}
        return average(self, categories, isthing)

    def record_ids(self: Any, data_batch: Any, data_samples: Any) -> None:
        _SEEN["ids"].extend(int(s["img_id"]) for s in data_samples)
        return process(self, data_batch, data_samples)

    PQStat.pq_average = pq_average
    CocoPanopticMetric.process = record_ids


def _configure(config: str, checkpoint: str, data_root: Path, limit: int | None, workers: int | None,
               panoptic_only: bool) -> Any:
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.load_from = checkpoint
    cfg.work_dir = tempfile.mkdtemp(prefix="mmdet_reference_")
    cfg.log_level = "WARNING"
    cfg.default_hooks.logger.interval = 10_000
    ds = cfg.test_dataloader.dataset
    ds.data_root = str(data_root) + "/"
    if limit is not None:
        ds.indices = limit  # mmengine's BaseDataset: the first `limit` images of the annotation file
    if workers is not None:
        cfg.test_dataloader.num_workers = workers
        cfg.test_dataloader.persistent_workers = workers > 0
    cfg.test_evaluator.ann_file = str(data_root / "annotations" / "panoptic_val2017.json")
    cfg.test_evaluator.seg_prefix = str(data_root / "annotations" / "panoptic_val2017") + "/"
    if panoptic_only:
        switch_off(cfg)
    return cfg


def run_in_this_process(config: str, checkpoint: str, data_root: Path, limit: int | None = None,
                        workers: int | None = None, panoptic_only: bool = False) -> dict[str, Any]:
    """Run MMDetection's test loop on one model; mmdet's numbers as a JSON-ready dict."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    install()  # before the runner builds the model (mmdet's models import mmcv.ops)
    _hook_once()
    _SEEN.update(ids=[], stat={})
    t = time.perf_counter()
    cfg = _configure(config, checkpoint, Path(data_root).resolve(), limit, workers, panoptic_only)
    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    out = Runner.from_cfg(cfg).test()
    loop_s = time.perf_counter() - t
    metrics = {k: float(out[f"coco_panoptic/{k}"]) for k in METRIC_KEYS}
    return {"config": config, "checkpoint": checkpoint, "metrics": metrics, "per_class": _SEEN["stat"],
            "image_ids": _SEEN["ids"], "loop_s": loop_s, "process_s": time.perf_counter() - _T0}


def run_references(models: list[tuple[Path, Path]], data_root: Path, limit: int | None = None,
                   workers: int | None = None, panoptic_only: bool = False,
                   cwd: Path | None = None) -> tuple[list[Reference], float]:
    """MMDetection's test loop on each (config, checkpoint) in one child process, one after the
    other; the references and the child's whole wall time (start-up included)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--data-root", str(data_root)]
    for config, ckpt in models:
        cmd += ["--model", f"{config}={ckpt}"]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if panoptic_only:
        cmd.append("--panoptic-only")
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t
    lines = [x[len(MARK):] for x in r.stdout.splitlines() if x.startswith(MARK)]
    if r.returncode or len(lines) != len(models):
        raise RuntimeError(f"MMDetection's test loop failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    refs = []
    for line in lines:
        d = json.loads(line)
        refs.append(Reference(d["metrics"], d["per_class"], d["image_ids"], d["loop_s"], d["process_s"]))
    return refs, wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="CONFIG=CHECKPOINT (repeatable)")
    ap.add_argument("--data-root", type=Path, required=True)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--panoptic-only", action="store_true")
    a = ap.parse_args(argv)
    for spec in a.model:
        config, _, ckpt = spec.partition("=")
        res = run_in_this_process(config, ckpt, a.data_root, a.limit, a.workers, a.panoptic_only)
        print(MARK + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
