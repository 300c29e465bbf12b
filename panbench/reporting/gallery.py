"""The report's gallery: for a dataset with two or more runs on the same images, the images where each model
loses most PQ to the best other run (:func:`panbench.analysis.per_image.ranked`), as :mod:`panbench.reporting.viz`
overlays (image, ground truth, both models, where their labels differ) when the images and both runs' saved
predictions (``--save-predictions``) are at hand, else as a table."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panbench.analysis.collect import AnalysisSet
from panbench.analysis.per_image import file_names_of, per_image_columns, ranked
from panbench.errors import PanbenchError
from panbench.records.schema import RunRecord
from panbench.reporting.labels import fingerprint

N_IMAGES = 3  # images per model


def losses(recs: list[RunRecord], results: Path, n: int = N_IMAGES) -> list[tuple[RunRecord, RunRecord, list]]:
    """Per run A with a per-image analysis file: the best other run B (highest PQ) on the same images and the
    (at most ``n``) images of A's largest loss PQ(A) - PQ(B) < 0, best run first; an image where A does as well
    or better is no loss."""
    groups: dict[str | None, list[RunRecord]] = {}
    for r in recs:
        if r.analysis_file and (results / r.analysis_file).is_file() and fingerprint(r):
            groups.setdefault(fingerprint(r), []).append(r)
    out = []
    for runs in groups.values():
        if len(runs) < 2:
            continue
        runs = sorted(runs, key=lambda r: -r.metrics["PQ"])
        cols = {id(r): _columns(r, results) for r in runs}
        for a in runs:
            b = next(r for r in runs if r is not a)  # the best other run
            rows = ranked(cols[id(a)], cols[id(b)], n)
            out.append((a, b, [r for r in rows if r["key"] is not None and r["key"] < 0]))
    return out


def _columns(r: RunRecord, results: Path) -> dict[str, Any]:
    aset = AnalysisSet.load(results / str(r.analysis_file))
    return per_image_columns(aset, file_names_of(_dataset(r).get("ann_file"), aset.image_ids))


def _dataset(r: RunRecord) -> dict[str, Any]:
    return (r.provenance or {}).get("dataset") or {}


def gallery_section(recs: list[RunRecord], results: Path, out_dir: Path, img: Callable[[Path], str],
                    n: int = N_IMAGES, where: str = "") -> str:
    """The gallery's HTML (empty with fewer than two runs on the same images): per model, a table of its ``n``
    largest losses to the best other run and, where available, their overlays (PNGs written under ``out_dir``);
    ``where`` (the dataset and fingerprint of the runs, where a dataset has several) follows the heading."""
    found = losses(recs, results, n)
    if not found:
        return ""
    head = "where each model loses most" + (f" · {where}" if where else "")
    parts = [f"<h3>{html.escape(head)}</h3><p class='note'>Per model, the images with the largest loss "
             "PQ(model) - PQ(best other run) on the same images; each image is scored alone (panbench images "
             "--run A --vs B lists more). Overlays need the images and both runs' --save-predictions.</p>"]
    cache: dict[Any, Any] = {}  # datasets and saved prediction JSONs, each read once
    for a, b, rows in found:
        head = f"<h4>{html.escape(a.model)} vs {html.escape(b.model)}</h4>"
        if not rows:
            parts.append(head + f"<p class='note'>no image where {html.escape(a.model)} has a lower PQ</p>")
            continue
        parts.append(head + _table(rows, a.model, b.model))
        for k, row in enumerate(rows):
            path = _overlay(a, b, row, out_dir / f"{_safe(a.model)}-vs-{_safe(b.model)}-{k}.png", cache)
            if path is not None:
                parts.append(img(path))
    return "".join(parts)


def _table(rows: list[dict[str, Any]], name_a: str, name_b: str) -> str:
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    head = ["image", "file", f"PQ {name_a}", f"PQ {name_b}", "A - B", "TP", "FP", "FN"]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
        r["image_id"], r["file_name"], num(r["PQ"]), num(r["PQ_vs"]), num(r["key"]), r["TP"], r["FP"], r["FN"]))
        + "</tr>" for r in rows)
    return ("<div class='wide'><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + body
            + "</table></div>")  # a box that scrolls sideways on a narrow page, as the report's other tables


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _overlay(a: RunRecord, b: RunRecord, row: dict[str, Any], out: Path, cache: dict[Any, Any]) -> Path | None:
    """The viz figure of one image with both runs' saved predictions; None when the image, the dataset or a
    run's saved predictions are not at hand (a moved folder, a run without --save-predictions)."""
    try:
        ds = _load(_dataset(a), cache)
        sample = next((s for s in ds.samples if str(s.image_id) == str(row["image_id"])), None) if ds else None
        preds = [_saved(r, row["image_id"], cache) for r in (a, b)]
        if ds is None or sample is None or not sample.image_path.is_file() or None in preds:
            return None
        from panbench.reporting.viz import draw_overlay

        heading = f" · PQ {a.model} {row['PQ']:.1f}, {b.model} {row['PQ_vs']:.1f}"
        return draw_overlay(sample, ds, preds, out, heading=heading)
    except (PanbenchError, OSError, ValueError, KeyError, StopIteration):
        return None


def _load(meta: dict[str, Any], cache: dict[Any, Any]) -> Any:
    """The dataset a run's record names (root and name), loaded once per report; None when it is not known."""
    if not meta.get("root") or not meta.get("name"):
        return None
    key = ("dataset", str(meta["root"]), str(meta["name"]))
    if key not in cache:
        from panbench.data.datasets import load_dataset

        cache[key] = load_dataset(Path(key[1]), name=key[2])
    return cache[key]


def _saved(r: RunRecord, image_id: Any, cache: dict[Any, Any]) -> Any:
    """A run's saved prediction of one image as a :class:`panbench.reporting.viz.Prediction`, or None."""
    from panbench.pq.png import read_ids
    from panbench.reporting.viz import Prediction

    saved = (r.provenance or {}).get("predictions") or {}
    if not saved.get("json") or not Path(saved["json"]).is_file():
        return None
    key = ("predictions", saved["json"])
    if key not in cache:
        cache[key] = {str(x["image_id"]): x for x in json.loads(Path(saved["json"]).read_text()).get("annotations", [])}
    ann = cache[key].get(str(image_id))
    if ann is None or not (Path(saved["dir"]) / ann["file_name"]).is_file():
        return None
    ids = read_ids(Path(saved["dir"]) / ann["file_name"], f"{r.model} image {image_id}")
    return Prediction(r.model, ids, ann["segments_info"])
