"""Robustness summaries from result records (Michaelis et al. 2019, PQ as the performance measure): clean, mPC, rPC and
per group for PQ, PQ_th and PQ_st (docs/robustness.md), of one model's runs on one set of images."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from panbench.records.io import write_new
from panbench.records.schema import RunRecord
from panbench.robustness.corruptions import CORRUPTION_GROUPS, CORRUPTION_NAMES

SUMMARY_METRICS = ("PQ", "PQ_th", "PQ_st")
SCHEMA = 1  # the "schema" field of a robustness summary (results/robustness/*.json)


def _fingerprint(r: RunRecord) -> str | None:
    """The fingerprint of the run's images (``provenance.dataset.fingerprint``), if recorded."""
    return (r.provenance.get("dataset") or {}).get("fingerprint")


def base_dataset(r: RunRecord) -> str:
    """The record's dataset without its corruption: ``coco`` for ``coco+fog-3``."""
    return r.dataset.split("+", 1)[0]


def group_key(r: RunRecord) -> tuple:
    """What a corrupted run and its clean run share: model, post-processing, images, batch size, AMP, cfg options."""
    cfg = json.dumps(r.provenance.get("cfg_options") or {}, sort_keys=True)
    return (r.model, r.postprocess, base_dataset(r), _fingerprint(r), r.batch_size, r.amp or "fp32", cfg)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def robustness_summaries(records: list[RunRecord]) -> list[dict[str, Any]]:
    """One summary per :func:`group_key` with a clean and a corrupted run (newest of each), first-seen order."""
    groups: dict[tuple, dict[Any, RunRecord]] = {}
    for r in sorted(records, key=lambda r: r.date):
        c = r.corruption
        slot = (c["name"], int(c["severity"])) if c else None
        groups.setdefault(group_key(r), {})[slot] = r
    out = []
    for runs in groups.values():
        clean = runs.pop(None, None)
        if clean is None or not runs:
            continue
        out.append(summary(clean, [runs[k] for k in sorted(runs, key=lambda k: (CORRUPTION_NAMES.index(k[0]), k[1]))]))
    return out


def summary(clean: RunRecord, corrupted: list[RunRecord]) -> dict[str, Any]:
    """The summary of one model's clean record and its corrupted records."""
    cm = clean.metrics
    runs = [_run(r) for r in corrupted]
    mpc = {k: mean([x[k] for x in runs]) for k in SUMMARY_METRICS}
    rpc = {k: 100 * v / cm[k] if cm[k] and (v := mpc[k]) is not None else None for k in SUMMARY_METRICS}
    groups = {g: {k: mean([x[k] for x in runs if x["corruption"] in names]) for k in SUMMARY_METRICS}
              for g, names in CORRUPTION_GROUPS.items() if any(x["corruption"] in names for x in runs)}
    implementations = sorted({str((r.corruption or {}).get("implementation")) for r in corrupted})
    return {"schema": SCHEMA, "model": clean.model, "postprocess": clean.postprocess,
            "settings": {"batch_size": clean.batch_size, "amp": clean.amp,
                         "cfg_options": json.loads(json.dumps(clean.provenance.get("cfg_options") or {}, default=str))},
            "dataset": base_dataset(clean), "fingerprint": _fingerprint(clean), "n_images": clean.n_images,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "corruptions": sorted({x["corruption"] for x in runs}, key=CORRUPTION_NAMES.index),
            "severities": sorted({x["severity"] for x in runs}), "n_runs": len(runs),
            "implementation": "; ".join(implementations),
            "clean": {**{k: cm[k] for k in SUMMARY_METRICS}, "record": clean.record},
            "mPC": mpc, "rPC": rpc, "groups": groups, "runs": runs}


def _run(r: RunRecord) -> dict[str, Any]:
    """One corrupted run of a summary: corruption, severity, group, the SUMMARY_METRICS, cost per image, record."""
    c, m, t = r.corruption or {}, r.metrics, r.timings
    n = t.get("corrupt_images") or 0
    return {"corruption": c["name"], "severity": int(c["severity"]), "group": c.get("group"),
            **{k: m[k] for k in SUMMARY_METRICS}, "corrupt_ms_per_image": 1000 * t["corrupt_s"] / n if n else None,
            "record": r.record}


def write_summary(results_dir: Path, s: dict[str, Any]) -> Path:
    """``results/robustness/<date>_<model>_<dataset>.json`` (or its first free ``~k`` twin, claimed atomically)."""
    import re

    stamp = s["date"].replace(":", "").replace("-", "").replace("+0000", "Z")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{s['model']}_{s['dataset']}").strip("_")
    data = (json.dumps(s, indent=1) + "\n").encode()
    return write_new(Path(results_dir) / "robustness" / f"{stamp}_{safe}.json", lambda path: data)
