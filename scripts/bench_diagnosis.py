"""What the diagnosis of a low PQ costs `panbench score` (docs/pq-evaluator.md, "Why is my PQ low?"), on a set of
COCO's own PNGs replicated by scripts/pq_bench_data.py (5000 images by default).

    .venv/bin/python scripts/bench_diagnosis.py --work /tmp/pb/real5000 --images 5000

In one process, each step timed ``--repeat`` times (medians), all on one core (``workers=1``):

* score: ``score_files`` of the set (its prediction in the right class order: no finding, so no second pass);
* check: the diagnosis itself, :func:`panbench.pq.diagnosis.diagnose` of that run's sums (the class order over all
  categories and, where a group's PQ is near zero, over each group) and :func:`panbench.pq.diagnosis.image_pairing`
  of its annotations (what every score adds when there is nothing to find);
* fix: :func:`panbench.pq.score.with_pq_if_fixed` of the same prediction written in another class order (each
  category as the next of its kind) with the finding's table, the second pass a finding costs.

Before any time is printed: the class-order prediction is found as ``category_mapping``, and the fix's PQ equals the
right prediction's PQ exactly (the second pass scores the corrected ids).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from pq_bench_data import make_real_set  # noqa: E402

from panbench.pq.coco_format import parse_annotations, read_json  # noqa: E402
from panbench.pq.diagnosis import Finding, category_mapping, diagnose, image_pairing  # noqa: E402
from panbench.pq.score import Scoring, read_truth, score_files, score_stream, with_pq_if_fixed  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def class_order(work: Path) -> tuple[Path, dict[int, int]]:
    """The set's prediction with each category written as the next of its kind; the table that undoes it."""
    cats = json.loads((work / "gt.json").read_text())["categories"]
    order: dict[int, int] = {}
    for kind in (0, 1):
        ids = [c["id"] for c in cats if c.get("isthing", 0) == kind]
        order.update(zip(ids, ids[1:] + ids[:1], strict=True))
    pred = json.loads((work / "pred.json").read_text())
    for a in pred["annotations"]:
        for s in a["segments_info"]:
            s["category_id"] = order[s["category_id"]]
    path = work / "pred-class-order.json"
    path.write_text(json.dumps(pred))
    return path, {v: k for k, v in order.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/pb/real5000"))
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print(make_real_set(args.work, args.images))
    gt, gd, pj, pd = (args.work / n for n in ("gt.json", "gt", "pred.json", "pred"))
    t_score, res = timed(lambda: score_files(gt, gd, pj, pd, workers=1), args.repeat)
    ev = score_stream(read_truth(gt), gd, pj, pd, 1, Scoring())[0]
    gt_anns = parse_annotations(read_json(gt, "gt"), gt, gt=True)
    pred_anns = parse_annotations(read_json(pj, "pred"), pj, gt=False)
    t_check, found = timed(lambda: diagnose(ev.stats, ev.categories) or image_pairing(gt_anns, pred_anns),
                           max(args.repeat, 100))
    t_rules = timed(lambda: diagnose(ev.stats, ev.categories), max(args.repeat, 100))[0]
    t_pairing = timed(lambda: image_pairing(gt_anns, pred_anns), max(args.repeat, 100))[0]
    wrong, undo = class_order(args.work)
    ev_wrong = score_stream(read_truth(gt), gd, wrong, pd, 1, Scoring())[0]
    finding = category_mapping(ev_wrong.stats.conf, ev_wrong.categories, ev_wrong.stats.n_images)
    if found or finding is None or finding.kind != "category_mapping":
        raise SystemExit(f"diagnosis: {found} on the right prediction, {finding} on the class order")
    truth = read_truth(gt)
    t_fix, fixed = timed(lambda: with_pq_if_fixed([Finding(finding.kind, finding.message, remap=undo)], truth, gd,
                                                  wrong, pd, 1), args.repeat)
    if fixed[0].pq_if_fixed != res["PQ"]:
        raise SystemExit(f"pq_if_fixed {fixed[0].pq_if_fixed} != the right prediction's PQ {res['PQ']}")
    print(f"PQ {res['PQ']:.4f}; class order: PQ {ev_wrong.evaluate()['PQ']:.4f}, found {finding.kind}, "
          f"pq_if_fixed {fixed[0].pq_if_fixed:.4f} (= the right prediction's)")
    print(f"score (one core)         {t_score:9.3f} s")
    print(f"check (every score)      {t_check * 1e3:9.3f} ms  = {t_check / t_score:.2e} x score")
    print(f"  of which diagnose      {t_rules * 1e3:9.3f} ms, image_pairing {t_pairing * 1e3:.3f} ms (each alone)")
    print(f"fix (only with a finding) {t_fix:8.3f} s   = {t_fix / t_score:.2f} x score")
    return 0


if __name__ == "__main__":
    sys.exit(main())
