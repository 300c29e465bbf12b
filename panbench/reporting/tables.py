"""Comparison tables (pandas) from result records: the latest run of each model side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.pq.matching import METRIC_KEYS
from panbench.reporting.records import load_records, measured_speed


def latest_runs(records: list[dict[str, Any]], dataset: str | None = None) -> list[dict[str, Any]]:
    """The newest record of each (model, post-processing) pair, in first-seen order."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: r.get("date", "")):
        if dataset is None or r.get("dataset") == dataset:
            out[(r["model"], r.get("postprocess", "default"))] = r
    return list(out.values())


def comparison(records: list[dict[str, Any]], vs_published: bool = False) -> Any:
    """One row per model: PQ/SQ/RQ for All/Things/Stuff, category counts, images/s, device, parameters."""
    import pandas as pd

    rows = []
    for r in records:
        m, n = r["metrics"], r.get("n_categories", {})
        row: dict[str, Any] = {"model": r["model"], "postprocess": r.get("postprocess", "default")}
        row.update({k: m[k] for k in METRIC_KEYS})
        row.update(r.get("semantic", {}))
        row.update({"N_all": n.get("All"), "N_th": n.get("Things"), "N_st": n.get("Stuff"),
                    "n_images": r["n_images"], "images_per_s": measured_speed(r),
                    "device": r.get("device"), "params_M": (r.get("params") or 0) / 1e6})
        if vs_published:
            pub = r.get("published") or {}
            for k in METRIC_KEYS:
                row[f"{k}_pub"] = pub.get(k)
                row[f"{k}_delta"] = m[k] - pub[k] if pub.get(k) is not None else None
        rows.append(row)
    df = pd.DataFrame(rows).set_index("model")
    if df["postprocess"].nunique() <= 1:
        df = df.drop(columns="postprocess")
    return df


def per_class(records: list[dict[str, Any]]) -> Any:
    """Per-class PQ: one row per category (id, name, thing/stuff), one column per model."""
    import pandas as pd

    cols = {}
    names: dict[str, str] = {}
    for r in records:
        cols[r["model"]] = {cid: v["PQ"] for cid, v in r["per_class"].items()}
        names.update(r.get("provenance", {}).get("category_names", {}))
    df = pd.DataFrame(cols)
    df.index.name = "category_id"
    df.insert(0, "name", [names.get(str(c), str(c)) for c in df.index])
    return df


def render(df: Any, fmt: str, digits: int = 3) -> str:
    """The table as markdown, csv, latex or html."""
    df = df.round(digits)
    if fmt == "md":  # an unmeasured speed or an unpublished number is '-', never 'nan'
        return df.astype(object).where(df.notna(), None).to_markdown(missingval="-")
    if fmt == "csv":
        return df.to_csv()
    if fmt == "latex":
        return df.to_latex(float_format=f"%.{digits}f", na_rep="-")
    if fmt == "html":
        return df.to_html(na_rep="-", float_format=f"%.{digits}f".__mod__)
    raise PanbenchError(f"--format {fmt}: use md, csv, latex or html")


def table_from_dir(results_dir: Path, dataset: str | None, fmt: str, vs_published: bool, by_class: bool) -> str:
    records = latest_runs(load_records(results_dir), dataset)
    if not records:
        where = f" for dataset '{dataset}'" if dataset else ""
        raise PanbenchError(f"{results_dir}/runs: no result records{where}; run `panbench eval` first")
    df = per_class(records) if by_class else comparison(records, vs_published)
    return render(df, fmt)
