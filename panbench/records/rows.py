"""A record as one row of ``runs.csv`` (loads with ``pandas.read_csv``, one row per run, like timm's results
tables) and the record's speed and GFLOPs as tables and plots show them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from panbench.pq.matching import METRIC_KEYS

if TYPE_CHECKING:  # annotations only: score's terminal output never loads the schema
    from panbench.records.schema import RunRecord

CSV_FIELDS = ["model", "framework", "architecture", "backbone", "dataset", "postprocess", *METRIC_KEYS, "pixel_acc",
              "mIoU", "mDice", "n_images", "images_per_s", "device", "params", "gflops", "date", "record",
              "AP", "ap_source", "miou_source"]
SEMANTIC_KEYS = ("pixel_acc", "mIoU", "mDice")
SHARED_SPEED_MARK = "~"  # after a speed measured beside another panbench run or on a loaded machine
SHARED_SPEED_NOTE = "measured beside another panbench run or while other work loaded the cores it used"
MIN_TIMED_IMAGES = 10  # fewer timed images give no images/s: one or two images say little about a speed
LOAD_SLACK = 0.5  # cores busy with other work, beyond those panbench left free, that still count as idle


def measured_speed(record: RunRecord) -> float | None:
    """The record's images/s when it was measured; None otherwise (a run served from a cache without a
    stored speed, an external record; :func:`panbench.records.io.load_record` reads an unmeasured 0 as None)."""
    v = record.timings.get("images_per_s")
    return None if v is None else float(v)


def speed_shared(record: RunRecord) -> bool:
    """Whether the record's speed was measured while another panbench run overlapped it, or while other work kept more
    cores busy than the run left free (:func:`loaded`; from its ``speed_context``; False for records without one)."""
    ctx = record.speed_context or {}
    return bool(ctx.get("overlapped")) or loaded(ctx)


def loaded(ctx: dict[str, Any]) -> bool:
    """Other work on the cores while the run was timed: on average more cores busy with other processes
    (``other_cores``) than the run left free, by more than :data:`LOAD_SLACK`.  A context without these counts
    (records before them, or off Linux) is not judged."""
    cores, used, others = ctx.get("cores"), ctx.get("cores_used"), ctx.get("other_cores")
    if not cores or used is None or others is None:
        return False
    return others > max(0.0, cores - used) + LOAD_SLACK


def mark_shared_speed(text: str, record: RunRecord) -> str:
    """``text`` (a formatted speed) with :data:`SHARED_SPEED_MARK` when :func:`speed_shared`; tables and plots
    show speeds through it, with a note saying that ``~`` marks a speed measured beside another run."""
    return text + SHARED_SPEED_MARK if text and speed_shared(record) else text


def gflops(record: RunRecord) -> float | None:
    """GFLOPs per image of a record (None when not counted)."""
    f = record.flops
    return round(f["gflops"], 3) if isinstance(f, dict) and f.get("gflops") is not None else None


def csv_row(record: RunRecord) -> dict[str, Any]:
    """The record's row of ``runs.csv`` (:data:`CSV_FIELDS`)."""
    m = record.metrics
    return {
        "model": record.model, "framework": record.framework, "architecture": record.architecture,
        "backbone": record.backbone, "dataset": record.dataset, "postprocess": record.postprocess,
        **{k: "" if m.get(k) is None else round(m[k], 6) for k in METRIC_KEYS},
        **{k: round(v, 6) for k, v in record.semantic.items()}, "n_images": record.n_images,
        "images_per_s": "" if (v := measured_speed(record)) is None else round(v, 4), "device": record.device,
        "params": record.params, "gflops": gflops(record), "date": record.date, "record": record.record,
        "AP": "" if not record.ap or record.ap.get("AP") is None else round(record.ap["AP"], 6),
        "ap_source": record.ap_source or "", "miou_source": record.miou_source or "",
    }
