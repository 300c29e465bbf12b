"""Comparison tables (pandas) from result records: the latest run of each model side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.pq.matching import METRIC_KEYS
from panbench.reporting.records import load_records, measured_speed


def dataset_key(r: dict[str, Any]) -> str:
    """The dataset a run used: its name and the fingerprint of its annotation file and image ids (two demo
    sets generated with different seeds, or a --limit run and a full run, are different datasets)."""
    fp = ((r.get("provenance") or {}).get("dataset") or {}).get("fingerprint")
    return f"{r.get('dataset')} {fp[:8]}" if fp else str(r.get("dataset"))


def latest_runs(records: list[dict[str, Any]], dataset: str | None = None) -> list[dict[str, Any]]:
    """The newest record of each (model, post-processing, dataset fingerprint), in first-seen order."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: r.get("date", "")):
        if dataset is None or r.get("dataset") == dataset:
            out[(r["model"], r.get("postprocess", "default"), dataset_key(r))] = r
    return list(out.values())


def selection(r: dict[str, Any]) -> str:
    """How the run's images were chosen: 'all', 'limit N' or 'subset FILE' (read from the record's command
    for records that do not store it)."""
    if r.get("selection"):
        return str(r["selection"])
    if r.get("architecture") == "external":
        return "external"
    cmd = ((r.get("provenance") or {}).get("command") or "").split()
    parts = [f"{o[2:]} {cmd[i + 1]}" for i, o in enumerate(cmd[:-1]) if o in ("--limit", "--subset")]
    return ", ".join(parts) or "all"


def comparison(records: list[dict[str, Any]], vs_published: bool = False) -> Any:
    """One row per run: dataset, how its images were chosen, batch size and precision, PQ/SQ/RQ for
    All/Things/Stuff, category counts, images/s, device, parameters (blank where not measured)."""
    import pandas as pd

    published = vs_published and any(_has_published(r) for r in records)
    rows = []
    for r in records:
        m, n = r["metrics"], r.get("n_categories", {})
        row: dict[str, Any] = {"model": r["model"], "postprocess": r.get("postprocess", "default"),
                               "dataset": dataset_key(r), "n_images": r["n_images"], "selection": selection(r),
                               "batch": r.get("batch_size"), "amp": r.get("amp", "fp32") if r.get("batch_size")
                               else None}
        row.update({k: m[k] for k in METRIC_KEYS})
        row.update(r.get("semantic", {}))
        row.update({"N_all": n.get("All"), "N_th": n.get("Things"), "N_st": n.get("Stuff"),
                    "images_per_s": measured_speed(r), "device": r.get("device"),
                    "params_M": r["params"] / 1e6 if r.get("params") else None})
        if vs_published:
            pub = r.get("published") or {}
            row["published"] = "zoo" if _has_published(r) else "none for this model and dataset"
            for k in METRIC_KEYS if published else ():
                row[f"{k}_pub"] = pub.get(k)
                row[f"{k}_delta"] = m[k] - pub[k] if pub.get(k) is not None else None
        rows.append(row)
    df = pd.DataFrame(rows).set_index("model")
    if df["postprocess"].nunique() <= 1:
        df = df.drop(columns="postprocess")
    return df


def _has_published(r: dict[str, Any]) -> bool:
    return any(v is not None for v in (r.get("published") or {}).values())


def absent(v: dict[str, Any]) -> bool:
    """A category absent from both the ground truth and the predictions: its PQ is undefined, not 0."""
    return all(k in v for k in ("TP", "FP", "FN")) and v["TP"] + v["FP"] + v["FN"] == 0


def run_label(r: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The model's name, with its post-processing (and dataset) where several runs would share it."""
    same = [x for x in records if x["model"] == r["model"]]
    label = f"{r['model']} [{r.get('postprocess', 'default')}]"
    if len({dataset_key(x) for x in same}) > 1:
        label += f" ({dataset_key(r)})"
    return label


def per_class(records: list[dict[str, Any]]) -> Any:
    """Per-class PQ: one row per category (id, name), one column per run labelled with its post-processing;
    a category absent from both ground truth and predictions is blank (NaN), not 0."""
    import pandas as pd

    cols = {}
    names: dict[str, str] = {}
    for r in records:
        cols[run_label(r, records)] = {cid: (None if absent(v) else v["PQ"]) for cid, v in r["per_class"].items()}
        names.update(r.get("provenance", {}).get("category_names", {}))
    df = pd.DataFrame(cols).astype(float)
    df = df.loc[sorted(df.index, key=lambda c: int(c) if str(c).isdigit() else 0)]
    df.index.name = "category_id"
    df.insert(0, "name", [names.get(str(c), str(c)) for c in df.index])
    return df


def render(df: Any, fmt: str, digits: int = 3) -> str:
    """The table as markdown, csv, latex (compiles: special characters escaped) or html; a missing value
    (unmeasured speed, unpublished number, absent category) is '-' (empty in csv)."""
    df = df.round(digits)
    if fmt == "md":
        return df.astype(object).where(df.notna(), None).to_markdown(missingval="-")
    if fmt == "csv":
        return df.to_csv()
    flat = df.reset_index()  # the index as a plain column: no empty index-name row
    if fmt == "latex":
        return flat.to_latex(index=False, float_format=f"%.{digits}f", na_rep="-", escape=True)
    if fmt == "html":
        return flat.to_html(index=False, na_rep="-", float_format=f"%.{digits}f".__mod__)
    raise PanbenchError(f"--format {fmt}: use md, csv, latex or html")


def table_from_dir(results_dir: Path, dataset: str | None, fmt: str, vs_published: bool, by_class: bool) -> str:
    records = latest_runs(load_records(results_dir), dataset)
    if not records:
        where = f" for dataset '{dataset}'" if dataset else ""
        raise PanbenchError(f"{results_dir}/runs: no result records{where}; run `panbench eval` first")
    df = per_class(records) if by_class else comparison(records, vs_published)
    return render(df, fmt)
