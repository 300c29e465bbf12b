"""Result records: one JSON per run (metrics, timings, provenance) and one flat CSV row per run.

Both are written atomically, so an interrupted write never leaves a half record, and
``runs.csv`` loads with ``pandas.read_csv`` (one row per run, like timm's results tables).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, TypedDict, cast

from panbench import REPO_ROOT
from panbench.pq.matching import METRIC_KEYS

SCHEMA_VERSION = 2  # the "schema" field of every record; raise it when a field changes meaning
# 2: the analysis fields (ci ... analysis_file); schema-1 records lack them and are read as they are
CSV_FIELDS = ["model", "framework", "architecture", "backbone", "dataset", "postprocess", *METRIC_KEYS, "pixel_acc",
              "mIoU", "mDice", "n_images", "images_per_s", "device", "params", "gflops", "date", "record"]
SEMANTIC_KEYS = ("pixel_acc", "mIoU", "mDice")
# the record fields of the analyses (schema 2; boundary only with --boundary, analysis_file set by write_record)
ANALYSIS_FIELDS = ("ci", "by_size", "pq_dagger", "errors", "mask_quality", "boundary", "analysis_file")


class RunRecord(TypedDict, total=False):
    """One result record (``results/runs/*.json``), in the order its fields are written.
    ``panbench eval`` writes every field; ``panbench score --name`` (an external system) leaves
    out ``amp`` and ``precision``."""

    schema: int  # SCHEMA_VERSION
    model: str  # registry name, or the --name of an external system
    framework: str  # what ran the model: "mmdet", "transformers" (hf: models) or "external" (score --name)
    architecture: str  # PanopticFPN, MaskFormer, Mask2Former; "external"
    backbone: str  # e.g. R-50, Swin-L; "?" for an external system
    dataset: str  # coco, demo
    postprocess: str  # PostProcess.label(): default, argmax, maskwise(...); "external"
    # what ran the model's own panoptic fusion: "panbench" (vectorized, pixel-identical) or "mmdet" (eval --fusion
    # mmdet); None when it did not run (--postprocess maskwise|argmax, hf: models); absent in older records
    fusion: str | None
    date: str  # UTC, ISO 8601, seconds
    n_images: int  # images scored
    metrics: dict[str, float]  # PQ, SQ, RQ and their _th / _st variants (METRIC_KEYS), 0-100
    semantic: dict[str, float]  # pixel_acc, mIoU, mDice from the same panoptic maps, 0-100
    n_categories: int  # categories of the dataset
    per_class: dict[str, Any]  # per category id: PQ, SQ, RQ, TP, FP, FN
    # ground-truth pixels whose PNG id segments_info does not list, scored as panopticapi scores them:
    # {"pixels": N, "images": M}; absent in records written before it was counted
    unlisted_gt: dict[str, int]
    published: dict[str, float | None]  # the model zoo's metrics (COCO only)
    delta_to_published: dict[str, float | None]  # measured minus published, per metric
    # where ``published`` comes from: "MMDetection model zoo" or, for hf: models, the original release's
    # table (models.registry); absent in records written before it was kept
    published_source: str | None
    params: int | None  # model parameters
    # GFLOPs per image (panbench.evaluation.flops): gflops, images, per_image_gflops, input_hw, counter, convention,
    # seconds; None with --flops-images 0; absent in older records
    flops: dict[str, Any] | None
    device: str  # GPU name, or "cpu (<cpu>, N threads)"; "external"
    world_size: int  # torchrun ranks
    batch_size: int | None  # images per forward pass
    amp: str  # fp32, bf16, fp16
    precision: dict[str, Any]  # autocast mode and whether TF32 was allowed (evaluation.timings.precision_info)
    timings: dict[str, Any]  # per-stage seconds, images_per_s (None when not measured), resumed_images ...
    # what the speed was measured on and beside (evaluation.context.speed_context): cpu, gpu, torch_threads,
    # processes, ranks, load_start / load_end (1-minute load average), overlapped (other panbench runs, by pid)
    speed_context: dict[str, Any]
    memory: dict[str, float]  # peak CPU / GPU memory in MiB
    provenance: dict[str, Any]  # config, checkpoint sha256, dataset fingerprint, versions, git commit, command
    # which images of the dataset ran: {"limit": --limit or None, "subset": the --subset file or None,
    # "images": how many}; so that tables tell a subset run from a full one without parsing the command
    selection: dict[str, Any]
    # the analyses (docs/analysis.md), from the per-image records; absent in schema-1 records
    ci: dict[str, list[float]]  # PQ, SQ, RQ, PQ_th, PQ_st -> [low, high], 95% image bootstrap, 0-100
    by_size: dict[str, dict[str, float | int]]  # small/medium/large -> PQ, SQ, RQ (0-100), n categories, segments
    pq_dagger: float  # PQ-dagger (Porzi et al. 2019), 0-100
    errors: dict[str, dict[str, float | int]]  # error type -> count, fp, fn, delta_PQ (oracle gain, PQ points)
    mask_quality: dict[str, float]  # TPs: loss (summed 1 - IoU), mean_loss, delta_PQ (every TP IoU set to 1)
    boundary: dict[str, float]  # boundary PQ: the nine METRIC_KEYS, 0-100; only with --boundary
    analysis_file: str  # the per-image AnalysisSet (.npz) below the results folder, beside the record
    # --corruption runs (docs/robustness.md): name, severity, group, implementation; absent for a clean run
    corruption: dict[str, Any]
    record: str  # path of the JSON below the results folder (set by write_record)


def make_record(res: dict[str, Any], **fields: Any) -> RunRecord:
    """The record of a scored run: ``res`` (``PanopticEvaluator.evaluate()``) gives the metric
    fields, ``fields`` the others (every :class:`RunRecord` field but those and ``record``)."""
    metric = {"n_images": res["n_images"], "metrics": {k: res[k] for k in METRIC_KEYS},
              "semantic": {k: res[k] for k in SEMANTIC_KEYS}, "n_categories": res["n_categories"],
              "per_class": res["per_class"]}
    if "unlisted_gt" in res:
        metric["unlisted_gt"] = res["unlisted_gt"]
    given = {"schema": SCHEMA_VERSION, "date": now_iso(), **metric, **fields}
    unknown = set(given) - set(RunRecord.__annotations__)
    if unknown:
        raise TypeError(f"make_record: unknown record fields {sorted(unknown)}")
    return cast(RunRecord, {k: given[k] for k in RunRecord.__annotations__ if k in given})


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and ``os.replace``: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or a folder in the way: no stray temporary file
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` for text."""
    atomic_write(path, text.encode())


def git_commit(root: Path | None = None) -> str | None:
    """The repository's HEAD commit (with ``-dirty`` when there are local changes), if any."""
    root = root or REPO_ROOT
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("-dirty" if dirty else "")) if head else None


def versions() -> dict[str, str | None]:
    """Versions of the stack that produced a result."""
    import importlib

    from panbench import __version__

    out: dict[str, str | None] = {"panbench": __version__, "python": platform.python_version()}
    for mod in ("torch", "mmcv", "mmengine", "mmdet", "numpy"):
        try:
            out[mod] = importlib.import_module(mod).__version__
        except Exception:
            out[mod] = None
    try:
        import torch

        out["cuda"] = torch.version.cuda
    except Exception:
        out["cuda"] = None
    from panbench.ops import active

    out["mmcv_ops"] = active()  # "mmcv" (compiled) or "panbench" (panbench.ops); None: no mmcv op reached
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def record_path(results_dir: Path, model: str, dataset: str, date: str) -> Path:
    import re

    stamp = date.replace(":", "").replace("-", "").replace("+0000", "Z")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}_{dataset}").strip("_")
    return results_dir / "runs" / f"{stamp}_{safe}.json"


def write_record(results_dir: Path, record: dict[str, Any], analysis: Any = None) -> Path:
    """Write the run's JSON record and append its row to ``runs.csv``; returns the record path.
    ``analysis`` (a :class:`panbench.analysis.AnalysisSet`) is saved first, beside the record as
    ``<record stem>.analysis.npz``, and named in its ``analysis_file``."""
    path = record_path(results_dir, record["model"], record["dataset"], record["date"])
    k = 1
    while path.exists():
        path = path.with_name(path.stem.rsplit("~", 1)[0] + f"~{k}.json")
        k += 1
    if analysis is not None:
        npz = path.with_name(path.stem + ".analysis.npz")
        analysis.save(npz)
        record["analysis_file"] = str(npz.relative_to(results_dir))
    record["record"] = str(path.relative_to(results_dir))
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=False, default=str) + "\n")
    append_csv(results_dir / "runs.csv", csv_row(record))
    return path


def measured_speed(record: dict[str, Any]) -> float | None:
    """The record's images/s when it was measured; None otherwise (a run served from a cache without a
    stored speed, an external record, or an older record that wrote 0 for an unmeasured speed)."""
    v = (record.get("timings") or {}).get("images_per_s")
    return float(v) if isinstance(v, int | float) and v > 0 else None


SHARED_SPEED_MARK = "~"  # after a speed measured while another panbench run shared the machine


def speed_shared(record: dict[str, Any]) -> bool:
    """Whether the record's speed was measured while another panbench run overlapped it (its
    ``speed_context``; False for records without one)."""
    return bool((record.get("speed_context") or {}).get("overlapped"))


def mark_shared_speed(text: str, record: dict[str, Any]) -> str:
    """``text`` (a formatted speed) with :data:`SHARED_SPEED_MARK` when :func:`speed_shared`; tables and plots
    show speeds through it, with a note saying that ``~`` marks a speed measured beside another run."""
    return text + SHARED_SPEED_MARK if text and speed_shared(record) else text


def gflops(record: dict[str, Any]) -> float | None:
    """GFLOPs per image of a record (None when not counted)."""
    f = record.get("flops")
    return round(f["gflops"], 3) if isinstance(f, dict) and f.get("gflops") is not None else None


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    m = record["metrics"]
    return {
        "model": record["model"], "framework": record.get("framework"), "architecture": record.get("architecture"),
        "backbone": record.get("backbone"),
        "dataset": record["dataset"], "postprocess": record.get("postprocess", "default"),
        **{k: round(m[k], 6) for k in METRIC_KEYS},
        **{k: round(v, 6) for k, v in record.get("semantic", {}).items()}, "n_images": record["n_images"],
        "images_per_s": "" if (v := measured_speed(record)) is None else round(v, 4), "device": record["device"],
        "params": record.get("params"), "gflops": gflops(record), "date": record["date"], "record": record["record"],
    }


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append one row atomically (the whole file is rewritten through a temporary file).  A file written
    with other columns (an older panbench) is rewritten under today's columns plus its own others, its rows
    kept and a column they lack left empty, so that every row stays under its own header."""
    old = path.read_text() if path.exists() else ""
    have = next(csv.reader([old.splitlines()[0]])) if old else []
    fields = CSV_FIELDS + [c for c in have if c not in CSV_FIELDS]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    if have != fields:
        w.writeheader()
        w.writerows(csv.DictReader(io.StringIO(old)))
        old = ""
    w.writerow(row)
    atomic_write_text(path, old + buf.getvalue())


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """Every JSON record under ``results_dir/runs``, oldest first; a JSON file there that is not a result
    record (unreadable, or without ``model`` and ``metrics``) is a one-line error naming it."""
    from panbench.errors import InputError

    out = []
    for p in sorted((results_dir / "runs").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            rec = e
        if not isinstance(rec, dict) or not {"model", "metrics"} <= set(rec):
            why = f"({rec})" if isinstance(rec, Exception) else "(no 'model' and 'metrics')"
            raise InputError(f"{p}: not a panbench result record {why}; move it out of {p.parent} (it holds "
                             "the records of `panbench eval` and `score --name` only)")
        out.append(rec)
    return sorted(out, key=lambda r: r.get("date", ""))


def external_record(name: str, dataset: str, res: dict[str, Any], args: Any, seconds: float,
                    fingerprint: str | None = None, **analyses: Any) -> RunRecord:
    """A result record for predictions made elsewhere and scored with ``panbench score --name``;
    ``analyses``: the analysis fields (``ci`` ... ``boundary``)."""
    from panbench.pq.coco_format import read_json

    cats = read_json(args.gt_json, "ground-truth JSON").get("categories", [])
    provenance = {
        "predictions": {"json": str(Path(args.pred_json).resolve()), "dir": str(Path(args.pred_dir).resolve())},
        "dataset": {"ann_file": str(Path(args.gt_json).resolve()), "png_dir": str(Path(args.gt_dir).resolve()),
                    **({"fingerprint": fingerprint} if fingerprint else {})},
        "versions": versions(), "git_commit": git_commit(),
        "category_names": {str(c["id"]): c.get("name", str(c["id"])) for c in cats if isinstance(c, dict)},
    }
    return make_record(
        res, model=name, framework="external", architecture="external", backbone="?", dataset=dataset,
        postprocess="external", fusion=None,
        published={}, delta_to_published={}, published_source=None, params=None, flops=None, device="external",
        world_size=1,
        batch_size=None,
        timings={"scoring_s": seconds, "images_per_s": None}, memory={}, provenance=provenance, **analyses,
    )
