"""``panbench compare A B``: is B really better than A?  The paired image bootstrap of B - A on the same images,
for the whole metrics and per class, from the runs' per-image analysis files (which runs a model name stands for:
docs/analysis.md).  Never imports torch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.analyses import by_key
from panbench.cli.options import Common, deprecated_alias, non_negative_int, positive_int, seed_int
from panbench.cli.records import find_records, load_run
from panbench.errors import InputError

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compare", parents=[common.results, common.only_dataset, common.json],
        help="paired bootstrap of two runs on the same images: is the difference real?",
        description="Compare two runs (record JSON paths or model names: the run `panbench table` shows for "
        "the model, with default settings unless --settings names others, on the same images as the other run) "
        "scored on the same images: the 95% paired image-bootstrap interval of B - A for PQ, SQ, RQ, PQ_th, "
        "PQ_st and per class; * marks an interval that excludes 0 (docs/analysis.md). Where both runs' segments "
        "have scores, the same for PQ at each run's best score threshold, and whether the sign of the difference "
        "holds there (a threshold chosen on these images is not a test result).")
    p.add_argument("a", help="run A: a record JSON (results/runs/*.json) or a model name")
    p.add_argument("b", help="run B: a record JSON or a model name")
    p.add_argument("--settings", metavar="TEXT", help="with model names: the runs with these settings, as "
                   "`table` labels them (e.g. 'batch 2; amp bf16' or 'model.test_cfg.iou_thr=0.95'; words in any "
                   "order; a word postprocess=NAME: that post-processing, else the model's own where a run has "
                   "it); 'best': a grid's best setting (`eval --grid`), 'best:KEYS' that of the grid of these keys "
                   "(e.g. best:object_mask_thr, needed where the model has grids of different keys); default: the "
                   "runs without settings, else a grid's setting that is the model's own ('default:KEYS': that "
                   "grid's)")
    p.add_argument("--settings-a", metavar="TEXT", help="--settings for A only (e.g. an ablation of one model)")
    p.add_argument("--settings-b", metavar="TEXT", help="--settings for B only")
    p.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--bootstrap-seed", type=seed_int, default=0, help="bootstrap seed (default 0)")
    deprecated_alias(p, "--seed", "--bootstrap-seed")
    p.add_argument("--top", type=non_negative_int, default=15,
                   help="categories shown, largest difference first (default 15; 0: all); --json has all")
    return p


SHOWN = 4  # the other settings a note names


def choose_settings(what: str, runs: list[RunRecord], wanted: str | None,
                    marked: dict[str, dict[str, str]] | None = None, option: str = "--settings") -> list[RunRecord]:
    """The runs a model name stands for, as ``panbench table`` shows them, with the settings ``wanted`` (None: none;
    a word ``postprocess=NAME``: that post-processing; ``best`` or ``best:KEYS``: the best setting of a grid, of the
    grid of these keys; ``default`` or none where no run is without settings, or ``default:KEYS``: a grid's setting
    that is the model's own), and a note on stderr when it has runs with other settings; ``marked``: the record paths
    of the grids' settings by mark, each with its grid's name (:func:`panbench.reporting.grids.marked_records`);
    ``option``: the option that gave ``wanted``, for the errors; a record path stands for itself."""
    from panbench.reporting.labels import choice_label, settings_match
    from panbench.reporting.tables import latest_runs

    if len(runs) == 1 and Path(what).suffix == ".json":
        return runs
    marked = marked or {}
    shown = sorted(latest_runs(runs), key=lambda r: r.date)  # oldest first, as pick_pair reads them
    found = sorted({choice_label(r) for r in shown})
    listed = "; ".join(f"'{s}'" if s else "'default'" for s in found)
    if wanted == "best" or (wanted or "").startswith(("best:", "default:")):  # a grid's mark, by its name
        return _grid_mark(what, shown, str(wanted), marked, option, listed)
    # where grids are among the runs, the model's own post-processing among all its runs (a grid's rule without keys
    # of its own has no settings words); else among those matched
    pick = [r for r in shown if settings_match(r, wanted)]
    pick = _own_postprocess(pick, wanted, shown if any(marked.values()) else pick)
    if not pick and wanted in (None, "default") and any(str(r.record) in marked.get("default", {}) for r in shown):
        return _grid_mark(what, shown, "default", marked, option, listed)
    if wanted is not None and not pick:
        raise InputError(f"{option} {wanted}: {what} has no run with these settings; its runs have: {listed}")
    if not pick and len(found) == 1:  # one set of settings, not the default: that run, said so
        print(f"{what}: its only runs have settings {found[0]}", file=sys.stderr)
        return shown
    if not pick:
        raise InputError(f"{what}: runs with several settings ({listed}) and none without; choose one with "
                         "--settings TEXT or pass a record path")
    if others := [s for s in found if s != choice_label(pick[0])]:
        named = ", ".join(repr(s) if s else "default settings" for s in others[:SHOWN])
        more = f" and {len(others) - SHOWN} more (`panbench table` lists them)" if len(others) > SHOWN else ""
        print(f"{what}: compared its run with {'default settings' if wanted is None else 'settings ' + wanted}; it "
              f"also has runs with {named}{more} (choose with --settings, --settings-a/-b or a record path)",
              file=sys.stderr)
    return pick


def _grid_mark(what: str, shown: list[RunRecord], wanted: str, marked: dict[str, dict[str, str]], option: str,
               listed: str) -> list[RunRecord]:
    """The runs among ``shown`` that a grid's mark ``wanted`` names (``best``, ``default``, either with ``:KEYS``,
    the grid's name), said on stderr; refused where the model has no such grid, or grids of several names and
    ``wanted`` names none."""
    from panbench.records.grids import BEST_NOTE
    from panbench.reporting.grids import same_name
    from panbench.reporting.labels import choice_label

    where, (mark, _, asked) = f"{option} {wanted}: {what}", wanted.partition(":")
    by_name: dict[str, list[RunRecord]] = {}
    for r in shown:
        if (name := marked.get(mark, {}).get(str(r.record))) is not None:
            by_name.setdefault(name, []).append(r)
    names = sorted(by_name)
    if not names:
        raise InputError(f"{where} has no grid (`eval --grid`) among these runs; its runs have: {listed}")
    choices = " or ".join(f"{option} {mark}:{n}" for n in names)
    if asked and not (names := [n for n in names if same_name(n, asked)]):
        raise InputError(f"{where} has no grid of {asked}; name one of its grids: {choices}")
    if len(names) > 1:
        raise InputError(f"{where} has {len(names)} grids (`eval --grid`), of {' and of '.join(names)}; name "
                         f"one: {choices}")
    pick = by_name[names[0]]
    what_it_is = ("the setting of highest PQ of its grid" if mark == "best" else
                  "the setting of its grid that is the model's own")
    print(f"{what}: {mark}: {what_it_is} ({names[0]}), {choice_label(pick[-1]) or 'default'}"
          + (f" ({BEST_NOTE})" if mark == "best" else ""), file=sys.stderr)
    return pick


def _own_postprocess(pick: list[RunRecord], wanted: str | None, shown: list[RunRecord]) -> list[RunRecord]:
    """``pick``, of the model's own post-processing where ``wanted`` names none and some of the model's runs
    (``shown``) have it (else as it is)."""
    from panbench.reporting.labels import PP_WORD

    if PP_WORD in (wanted or "") or not any(r.postprocess == "default" for r in shown):
        return pick
    return [r for r in pick if r.postprocess == "default"]


def compare(ra: RunRecord, a: Any, rb: RunRecord, b: Any, resamples: int, seed: int) -> dict[str, Any]:
    """The paired intervals of B - A with both runs' values (whole metrics and per class)."""
    from panbench.analysis import check_paired
    from panbench.analysis.bootstrap import CI_METRICS, too_few
    from panbench.analysis.paired import SparseRun
    from panbench.reporting.labels import absent, fingerprint, these_images
    from panbench.reporting.pairing import paired_difference

    fa, fb = fingerprint(ra), fingerprint(rb)
    sa = SparseRun.of(a, fa, f"A ({ra.record or ra.model})")  # the per-image sums kept sparse
    sb = SparseRun.of(b, fb, f"B ({rb.record or rb.model})")
    if fa is None or fb is None:
        raise InputError(f"{sa.name if fa is None else sb.name}: the record names no dataset fingerprint; rerun it "
                         "with this version of panbench")
    # other images first: a difference of runs on other images is no difference
    check_paired(sa.shape_only(), sb.shape_only())
    if (why := too_few(a.n_images, resamples)) is not None:
        d = rb.metrics["PQ"] - ra.metrics["PQ"]
        raise InputError(f"no interval: {why}; B - A is {d:+.2f} PQ on {these_images(a.n_images)}, which says "
                         "nothing about other images")
    res = paired_difference(sb, sa, a.isthing, n_resamples=resamples, seed=seed, per_class=True,  # B - A
                            category_ids=a.category_ids)
    out: dict[str, Any] = {"a": _who(ra, [ra, rb]), "b": _who(rb, [ra, rb]), "difference": "B - A",
                           "n_images": a.n_images, "resamples": resamples, "seed": seed, "metrics": {}, "per_class": {}}
    for k in CI_METRICS:
        out["metrics"][k] = {"a": ra.metrics.get(k), "b": rb.metrics.get(k), "interval": res["metrics"][k],
                             "excludes_zero": res["excludes_zero"][k]}
    out["at_best_threshold"] = at_best_thresholds(ra, a, rb, b, resamples, seed)
    names = ra.provenance.get("category_names") or {}
    for cid, iv in res["per_class"].items():
        ca, cb = ra.per_class.get(cid, {}), rb.per_class.get(cid, {})
        if not any(c.get(f, 0) for c in (ca, cb) for f in ("TP", "FP", "FN")):
            continue  # in neither run: nothing to compare
        # a category with no TP, FP or FN in one run (an FP-only class of the other): PQ undefined, None not 0
        out["per_class"][cid] = {"name": names.get(cid, cid), "a": None if absent(ca) else ca.get("PQ"),
                                 "b": None if absent(cb) else cb.get("PQ"), "interval": iv,
                                 "excludes_zero": bool(iv[0] > 0 or iv[1] < 0)}
    return out




def at_best_thresholds(ra: RunRecord, a: Any, rb: RunRecord, b: Any, resamples: int, seed: int
                       ) -> dict[str, Any] | None:
    """B - A in PQ at each run's own best segment score threshold (its record's ``score_threshold``) beside B - A at
    the defaults, whether the sign holds, and the paired interval at those thresholds (the per-image sums with the
    segments below each run's threshold removed); None where neither run has the analysis, the reason where one
    lacks it."""
    from panbench.reporting.pairing import paired_difference, sparse_at_threshold

    sa, sb = ra.score_threshold, rb.score_threshold
    if not sa and not sb:
        return None
    if not sa or not sb:
        return {"none": f"{'A' if not sa else 'B'} has no PQ against the segment score threshold (no predicted "
                        "segment with a score, or a record written before segment scores)"}
    ta, tb = sa["best"]["threshold"], sb["best"]["threshold"]
    at_default, at_best = rb.metrics["PQ"] - ra.metrics["PQ"], sb["best"]["PQ"] - sa["best"]["PQ"]
    res = paired_difference(sparse_at_threshold(b, tb, name="B"), sparse_at_threshold(a, ta, name="A"), a.isthing,
                            n_resamples=resamples, seed=seed)
    return {"threshold_a": ta, "threshold_b": tb, "a": sa["best"]["PQ"], "b": sb["best"]["PQ"],
            "difference": at_best, "at_default": at_default, "sign_holds": _sign(at_best) == _sign(at_default),
            "interval": res["metrics"]["PQ"], "excludes_zero": res["excludes_zero"]["PQ"],
            "note": by_key("score_threshold").note}


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def threshold_lines(out: dict[str, Any]) -> list[str]:
    """``compare``'s lines on the best thresholds: B - A in PQ there, its interval, whether the sign of B - A at the
    defaults holds; none without the analysis."""
    t = out.get("at_best_threshold")
    if t is None:
        return []
    if "none" in t:
        return [f"PQ at each run's best score threshold: none ({t['none']})"]
    lo, hi = t["interval"]
    held = ("the sign holds" if t["sign_holds"] else
            "no difference at one of them" if 0 in (_sign(t["difference"]), _sign(t["at_default"])) else
            "the sign flips")
    return [f"PQ at each run's best score threshold (A {t['threshold_a']:.2f}, B {t['threshold_b']:.2f}): A "
            f"{t['a']:.2f}, B {t['b']:.2f}, B - A {t['difference']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            f"{' *' if t['excludes_zero'] else ''}; at the defaults {t['at_default']:+.2f}: {held}",
            f"({t['note']})"]


def _who(rec: RunRecord, pair: list[RunRecord]) -> dict[str, Any]:
    """A run in the JSON: its record's fields, settings and its name as the verdict, the tables and the figures
    give it (``label``: :func:`~panbench.reporting.labels.short_label`)."""
    from panbench.reporting.labels import settings, short_label

    return {**{k: getattr(rec, k) for k in ("model", "dataset", "postprocess", "record", "date")},
            "settings": settings(rec), "label": short_label(rec, pair)}


def with_threshold_lines(text: str, out: dict[str, Any]) -> str:
    """``compare``'s text with :func:`threshold_lines` after the whole metrics (before the classes)."""
    lines = text.split("\n")
    at = next((k for k, line in enumerate(lines) if line.startswith("per class (")), len(lines))
    return "\n".join(lines[:at] + threshold_lines(out) + lines[at:])


def run(args: argparse.Namespace) -> int:
    from panbench.analysis.paired import THRESHOLD_COLUMNS
    from panbench.reporting.grids import marked_records
    from panbench.reporting.pairing import pick_pair
    from panbench.reporting.text import format_compare

    picked = []
    for what, own, option in ((args.a, args.settings_a, "--settings-a"), (args.b, args.settings_b, "--settings-b")):
        runs, root = find_records(what, Path(args.results), args.only_dataset)
        wanted, option = (own, option) if own is not None else (args.settings, "--settings")
        picked.append((choose_settings(what, runs, wanted, marked_records(root, runs), option), root))
    (runs_a, root_a), (runs_b, root_b) = picked
    ra, rb = pick_pair(runs_a, runs_b)  # model names: their runs that `table` shows, on the same images
    read = THRESHOLD_COLUMNS  # of the per-image columns, those the pairing reads
    out = compare(ra, load_run(ra, root_a, read), rb, load_run(rb, root_b, read), args.resamples, args.bootstrap_seed)
    print(json.dumps(out) if args.json else with_threshold_lines(format_compare(out, top=args.top or None), out))
    return 0
