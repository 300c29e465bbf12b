"""Results as plain text for the terminal (docs/analysis.md).  No torch, no pandas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.analyses import ANALYSES
from panbench.analysis.ap import ap_line
from panbench.data.catalog import DATASETS
from panbench.records.rows import (
    MIN_TIMED_IMAGES,
    SHARED_SPEED_MARK,
    SHARED_SPEED_NOTE,
    mark_shared_speed,
    measured_speed,
    speed_shared,
)
from panbench.reporting.analysis_views import text_of
from panbench.reporting.labels import (
    UNDEFINED,
    absent_notes,
    decimals,
    images,
    other_pipeline,
    settings,
    shown_rules,
)

if TYPE_CHECKING:  # annotations only: score's terminal output never loads the schema
    from panbench.records.schema import RunRecord


def format_metrics(m: dict[str, Any], title: str = "") -> str:
    """The All/Things/Stuff table of PQ/SQ/RQ with category counts (as panopticapi prints it)."""
    n = m.get("n_categories", {})
    lines = [title] if title else []
    lines += [f"{'':8}|{'PQ':>8} {'SQ':>8} {'RQ':>8} | {'N':>4}", "-" * 8 + "+" + "-" * 27 + "+" + "-" * 6]
    lines += [f"{name:8}|{m['PQ' + sfx]:8.3f} {m['SQ' + sfx]:8.3f} {m['RQ' + sfx]:8.3f} | {n.get(name, 0):4d}"
              for name, sfx in (("All", ""), ("Things", "_th"), ("Stuff", "_st"))]
    if "pixel_acc" in m:  # mIoU left out where the caller prints the record's one mIoU apart
        miou = f", mIoU {m['mIoU']:.3f}" if "mIoU" in m else ""
        lines.append(f"semantic: pixel accuracy {m['pixel_acc']:.3f}{miou}, mean Dice {m['mDice']:.3f}")
    return "\n".join(lines)


def format_record(rec: RunRecord, results_dir: Any = None) -> str:
    """The model's All/Things/Stuff table, timings, published deltas, analyses and the record's path."""
    m = {**rec.metrics, **rec.semantic, "n_categories": rec.n_categories}
    if rec.miou is not None:  # one mIoU, named by its source, on its own line below
        m.pop("mIoU", None)
    t = rec.timings
    extra = settings(rec)  # batch size, AMP, --cfg-options: what else changes the numbers
    title = (f"{rec.model} [{rec.postprocess}]{f' ({extra})' if extra else ''} on "
             f"{rec.dataset} ({images(rec.n_images)}, {rec.device})")
    lines = [format_metrics(m, title)]
    per_image = (f"; per image: data {_ms(t, 'data_s')}, forward {_ms(t, 'forward_s')}, post-processing "
                 f"{_ms(t, 'postprocess_s')}, scoring {_ms(t, 'scoring_s')} ms" if t.get("timed_images") else "")
    lines.append(f"  {_speed(rec)}{per_image}")
    if rec.batch_size and rec.largest_batch and rec.largest_batch < rec.batch_size:
        lines.append(f"  batch size {rec.batch_size} asked; the largest batch held {rec.largest_batch} images (a "
                     "batch holds images of one padded input shape, as many as the run had)")
    if rec.ap:
        lines.append(f"  {ap_line(rec.ap)} ({rec.ap_source})")
    if rec.miou is not None:
        lines.append(f"  mIoU {rec.miou:.3f} (from the {rec.miou_source} output)")
    pub, rule = rec.published, rec.published_rules
    if any(v is not None for v in pub.values()):
        d: Mapping[str, Any] = rec.delta_to_published  # a metric's None left out below
        ruled = rec.metrics if rule == "panopticapi" else (rec.rules or {}).get(rule or "") or {}
        other = other_pipeline(rec)  # another pipeline's run (an older record's delta too): no difference
        parts = [f"{k} {ruled[k]:.1f} vs {pub[k]:.1f} ({decimals(d[k], '+.1f')})" for k in ("PQ", "PQ_th", "PQ_st")
                 if pub.get(k) is not None and ruled.get(k) is not None and d.get(k) is not None and not other]
        under = f"under {rule}'s rules" if rule else "under rules it does not say: no difference shown"
        if other:
            under = f"{under}; {other}"
        lines.append(f"  published ({rec.published_source or 'zoo'}; {under}): " + ("; ".join(parts) or "-"))
        if not other and (dpq := d.get("PQ")) is not None and abs(dpq) > 1.0:
            full = DATASETS[name].card.images if (name := rec.dataset.split("+")[0]) in DATASETS else None
            note = "on a subset, a gap is expected" if full is not None and rec.n_images < full else \
                "check checkpoint and class order"
            lines.append(f"  WARNING: PQ differs from the published value by {dpq:+.1f} ({note})")
    lines += ["  " + line for line in rules_lines(rec.rules) + attribution_lines(rec.rules_attribution)]
    lines += ["  " + line for line in format_analyses(rec) + evaluator_lines(rec.evaluators)
              + diagnosis_lines(rec.diagnosis or [])]
    if saved := (rec.provenance or {}).get("predictions"):  # --save-predictions: where they went
        lines.append(f"  predictions: {saved['json']} and {saved['dir']}/ (COCO panoptic format)")
    if rec.record is not None:  # a written record (a command prints the numbers before it writes it)
        lines.append(record_line(rec, results_dir))
    return "\n".join(lines)


def record_line(rec: RunRecord, results_dir: Any = None) -> str:
    """Where the record was written: its path under ``results_dir``."""
    return f"  record: {Path(results_dir) / str(rec.record) if results_dir is not None else rec.record}"


def format_analyses(res: Mapping[str, Any]) -> list[str]:
    """The lines of each analysis ``res`` has, in :data:`panbench.analyses.ANALYSES`'s order, the inline ones joined."""
    lines: list[str] = []
    inline: list[str] = []
    at = None  # where the inline line goes
    for a in ANALYSES:
        got = text_of[a.key](res)
        if a.inline:
            at = len(lines) if at is None else at
            inline += got
        else:
            lines += got
    if inline:
        lines.insert(at or 0, "; ".join(inline))
    return lines


def _speed(rec: RunRecord) -> str:
    """The run's speed in images/s, or why it was not measured."""
    v = measured_speed(rec)
    if v is None:
        n = rec.timings.get("speed_images") or 0
        return (f"speed not measured ({n} timed image{'s' * (n != 1)}: a speed needs at least {MIN_TIMED_IMAGES} "
                "past the warm-up, computed or stored with the cache)")
    cached = " (with the speed stored with the cached images)" if rec.timings.get("speed_from_cache") else ""
    return f"{v:.2f} img/s{cached}"


def _ms(t: dict[str, Any], key: str) -> str:
    return f"{1000 * t.get(key, 0.0) / max(t.get('timed_images', 0), 1):.1f}"


def format_comparison(records: list[RunRecord], results_dir: Any = None) -> str:
    """One row per model; with ``results_dir`` the verdict first (:func:`panbench.reporting.tables.verdicts`)."""
    w = max([len("post-processing"), *(len(r.postprocess) for r in records)])
    head = f"{'model':24} {'post-processing':{w}} {'PQ':>6} {'SQ':>6} {'RQ':>6} {'PQ_th':>6} {'PQ_st':>6} {'img/s':>7}"
    rows = []
    if results_dir is not None:
        from panbench.reporting.tables import lines, verdicts  # reads records: their schema

        found, notes = verdicts(records, results_dir)
        rows += [line for v in found for line in lines(v)] + [f"  {n}" for n in notes] + [""]
    rows += [head, "-" * len(head)]
    for r in records:
        m, v = r.metrics, measured_speed(r)
        speed = mark_shared_speed(f"{v:.2f}", r).rjust(7) if v is not None else f"{'-':>7}"
        rows.append(f"{r.model:24} {r.postprocess:{w}} {m['PQ']:6.2f} {m['SQ']:6.2f} "
                    f"{m['RQ']:6.2f} {m['PQ_th']:6.2f} {m['PQ_st']:6.2f} {speed}")
    if any(speed_shared(r) and measured_speed(r) is not None for r in records):  # a '~' was written
        rows.append(f"{SHARED_SPEED_MARK} after img/s: {SHARED_SPEED_NOTE}")
    return "\n".join(rows)


def format_grid(doc: dict[str, Any], records: list[RunRecord]) -> str:
    """A grid's settings in one table (:mod:`panbench.records.grids`' summary ``doc`` and the records, in order):
    the headline metrics, AP where measured, PQ under each rule some setting computed (``--rules``), each setting's
    own post-processing per image; the model's own setting marked ``*``, the best on these images ``<- best``."""
    rows = doc["settings"]
    w = max(len("setting"), *(len(r["label"]) for r in rows)) + 2
    ap = any(r.ap for r in records)
    rules = shown_rules(records)  # PQ under each rule of --rules, beside panbench's
    head = (f"{'setting':{w}} {'PQ':>7} {'SQ':>7} {'RQ':>7} {'PQ_th':>7} {'PQ_st':>7}" + (f" {'AP':>6}" if ap else "")
            + "".join(f" {f'PQ[{rule}]':>7}" for rule in rules) + f" {'post ms':>8}")
    first = records[0]
    timed = first.timings.get("timed_images") or 0
    forward = (f"forward {_ms(first.timings, 'forward_s')} ms per image" if timed else
               "no image timed: every image from the resume caches" if first.timings.get("resumed_images") else
               "no image timed past the warm-up")
    lines = [f"{doc['model']} on {doc['dataset']}: {len(rows)} settings from one forward ({images(first.n_images)}; "
             f"{forward}; post ms: each setting's own, the first's with the work they share)", head,
             "-" * len(head)]
    for k, (row, rec) in enumerate(zip(rows, records)):
        m = row["metrics"]
        mark = ("*" if row["default"] else " ") + " "
        ap_text = f" {rec.ap['AP']:6.2f}" if ap and rec.ap and rec.ap.get("AP") is not None else (" " * 7 if ap else "")
        best = "  <- best" if k == doc["best"] else ""
        ruled = _rule_cells(rec, rules)
        lines.append(f"{mark}{row['label']:{w - 2}} {m['PQ']:7.3f} {m['SQ']:7.3f} {m['RQ']:7.3f} {m['PQ_th']:7.3f} "
                     f"{m['PQ_st']:7.3f}{ap_text}{ruled} {_ms(rec.timings, 'postprocess_s'):>8}{best}")
    if doc["default"] is not None:
        lines.append("* the model's own setting")
    if rules:
        lines.append(GRID_RULES_NOTE)
        labels = {id(rec): row["label"] for row, rec in zip(rows, records)}
        lines += absent_notes(records, rules, lambda r: labels[id(r)])
    lines.append(f"best: {doc['best_note']}")
    return "\n".join(lines)


GRID_RULES_NOTE = (f"PQ[RULE]: PQ under that rule (--rules, docs/pq-rules.md), beside panbench's (panopticapi's), "
                   f"which picks the best; {UNDEFINED}: undefined under it (its reference gives NaN); -: not computed")


def _rule_cells(rec: RunRecord, rules: list[str]) -> str:
    """A grid row's PQ under each of ``rules``, each as wide as its header (``-``: the run did not compute it)."""
    out = ""
    for rule in rules:
        got = (rec.rules or {}).get(rule)
        width = max(7, len(f"PQ[{rule}]"))
        pq = None if got is None else got.get("PQ")
        out += " " + ("-".rjust(width) if got is None else decimals(float("nan") if pq is None else pq, f"{width}.3f"))
    return out


def format_compare(result: dict[str, Any], top: int | None = None) -> str:
    """The paired intervals of ``compare`` (B - A): whole metrics, then the categories (largest difference first)."""
    a, b = result["a"], result["b"]
    lines = [f"{k}: {r.get('label') or r['model']} ({r.get('record')})" for k, r in (("A", a), ("B", b))]
    lines += [f"B - A with its 95% paired image-bootstrap interval ({result['n_images']} images, "
              f"{result['resamples']} resamples, seed {result['seed']}); * the interval excludes 0"]
    head = f"{'':24} {'A':>8} {'B':>8} {'B - A':>8}  {'interval':>20}"
    lines += [head, "-" * len(head)]

    def row(label: str, v: dict[str, Any]) -> str:
        lo, hi = v["interval"]
        mark = "*" if v["excludes_zero"] else ""
        a, b, d = (f"{'-':>8}" if x is None else decimals(x, f) for x, f in ((v["a"], "8.2f"), (v["b"], "8.2f"),
                                                                              (_diff(v), "+8.2f")))
        return f"{label[:24]:24} {a} {b} {d}  [{decimals(lo, '+8.2f')}, {decimals(hi, '+8.2f')}] {mark}"

    lines += [row(k, v) for k, v in result["metrics"].items()]
    classes = result.get("per_class") or {}
    if classes:  # a class undefined in one run ('-': no TP, FP or FN there) ranks as no difference
        order = sorted(classes, key=lambda c: -abs(_diff(classes[c]) or 0.0))
        shown = order if top is None else order[:top]
        lines.append(f"per class (PQ; {len(shown)} of {len(classes)} categories, largest difference first; * per "
                     f"class is not corrected for the {len(classes)} comparisons: where no class differs, about 1 in "
                     "20 would still get one)")
        lines += [row(classes[c]["name"], classes[c]) for c in shown]
    return "\n".join(lines)


def _diff(v: dict[str, Any]) -> float | None:
    return None if v["a"] is None or v["b"] is None else v["b"] - v["a"]


#: what an evaluator's line shows at most: its first fields, the first items of a list or mapping (at most three
#: levels deep), the characters of a text and of the whole line; the rest is counted ("... and K more")
SHOWN_FIELDS, SHOWN_ITEMS, SHOWN_DEPTH, SHOWN_TEXT, SHOWN_LINE = 20, 8, 3, 200, 2000
WHOLE = "(whole in --json and the record)"


def evaluator_lines(evaluators: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    """A line per evaluator of the user's (``--evaluator``): its name and fields, a large result cut to its first
    fields and items with how many more there are (:data:`SHOWN_FIELDS` and the rest)."""
    return [_evaluator_line(name, fields) for name, fields in (evaluators or {}).items()]


def _evaluator_line(name: str, fields: Mapping[str, Any]) -> str:
    cut: list[bool] = []  # one entry per list, mapping or text shortened
    shown = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {_shown(v, 0, cut, top=True)}"
             for k, v in islice(fields.items(), SHOWN_FIELDS)]
    if more := len(fields) - len(shown):
        shown.append(f"... and {more} more")
    line = f"{name}: " + ", ".join(shown)
    if len(line) > SHOWN_LINE:
        return f"{line[:SHOWN_LINE]}... and {len(line) - SHOWN_LINE} more characters {WHOLE}"
    return f"{line} {WHOLE}" if more or cut else line


def _shown(v: Any, depth: int, cut: list[bool], top: bool = False) -> str:
    """``v`` as ``str`` of it reads (a field's text bare, inside a list or mapping quoted), its lists and mappings
    cut to their first :data:`SHOWN_ITEMS` items and :data:`SHOWN_DEPTH` levels, its texts to :data:`SHOWN_TEXT`
    characters; each cut noted in ``cut``."""
    if isinstance(v, str):
        if len(v) > SHOWN_TEXT:
            v = f"{v[:SHOWN_TEXT]}... and {len(v) - SHOWN_TEXT} more characters"
            cut.append(True)
        return v if top else repr(v)
    if not isinstance(v, (list, tuple, dict)):
        return str(v) if top else repr(v)
    open_, close = ("{", "}") if isinstance(v, dict) else ("[", "]")
    if depth >= SHOWN_DEPTH and v:
        cut.append(True)
        return f"{open_}... {len(v)} item{'s' * (len(v) != 1)}{close}"
    if isinstance(v, dict):
        parts = [f"{_shown(k, depth + 1, cut)}: {_shown(x, depth + 1, cut)}" for k, x in islice(v.items(), SHOWN_ITEMS)]
    else:
        parts = [_shown(x, depth + 1, cut) for x in islice(v, SHOWN_ITEMS)]
    if more := len(v) - len(parts):
        parts.append(f"... and {more} more")
        cut.append(True)
    return open_ + ", ".join(parts) + close


UNDEFINED_NOTE = (f"  {UNDEFINED}: undefined under that rule (no class with a TP, FP or FN under it: its reference "
                  "gives NaN)")


def rules_lines(rules: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    """PQ, SQ and RQ (All, Things, Stuff) under each rule of ``--rules`` (docs/pq-rules.md), one line each."""
    if not rules:
        return []
    width = max(len(r) for r in rules)
    rows = [[decimals(float("nan") if v.get(k) is None else v[k], "6.2f") for k in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")]
            for v in rules.values()]
    undefined = [UNDEFINED_NOTE] if any(UNDEFINED in c for row in rows for c in row) else []
    absent = [f"  {r}: {v['absent_classes']} of {v['classes_averaged']} classes absent, counted as 0 (its mean is "
              "over every class)" for r, v in rules.items() if v.get("absent_classes")]
    return ["PQ under each rule (docs/pq-rules.md):   PQ     SQ     RQ   PQ_th  PQ_st"] + [
        f"  {r:<{width}}  " + " ".join(row) for r, row in zip(rules, rows)] + undefined + absent


def attribution_lines(rows: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> list[str]:
    """Each rule's difference from panopticapi's PQ, quirk by quirk in the order they are switched on."""
    out = []
    for rule, quirks in (rows or {}).items():
        out.append(f"{rule} minus panopticapi, by quirk (docs/pq-rules.md):    PQ   PQ_th   PQ_st")
        width = max((len(q["quirk"]) for q in quirks), default=0)
        out += [f"  {q['quirk']:<{width}}  " + " ".join(decimals(q[k], "+7.2f") for k in ("PQ", "PQ_th", "PQ_st"))
                for q in quirks]
    return out


def diagnosis_lines(findings: list[dict[str, Any]]) -> list[str]:
    """Each format mistake found (``diagnosis``) as a line under the table."""
    return [f"diagnosis ({f['kind']}): {f['message']}"
            + (f"; PQ with the fix: {f['pq_if_fixed']:.2f}" if f.get("pq_if_fixed") is not None else "")
            for f in findings]
