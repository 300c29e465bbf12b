"""``panbench table``: the latest run of each model side by side (pandas)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from panbench.cli.options import Common, deprecated_alias


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("table", parents=[common.results, common.only_dataset, common.format, common.reference],
                       help="compare the latest run of each model (pandas)",
                       description="The verdict first (per dataset, the ranking on PQ with each run's 95% paired "
                       "bootstrap difference to a reference run, and one line that reads it), then the latest "
                       "run of each model side by side: dataset and images, PQ with its interval, PQ_th, PQ_st, "
                       "SQ, RQ, images/s and parameters (--all-columns: every column); with an analysis option, "
                       "that analysis instead (options combine; docs/reporting.md says how to read each).")
    p.add_argument("--all-columns", action="store_true", help="every column: framework, selection, batch, amp, "
                   "--cfg-options, PQ/SQ/RQ of things and stuff, semantic metrics, category counts, device")
    p.add_argument("--vs-published", action="store_true", help="add the published numbers and the deltas")
    p.add_argument("--per-class", action="store_true", help="per-class PQ of the models instead")
    p.add_argument("--ci", action="store_true", help="PQ, SQ, RQ, PQ_th, PQ_st with their 95%% bootstrap "
                   "intervals, and each row's paired PQ difference to the reference run on the same images")
    p.add_argument("--by-size", action="store_true", help="PQ/SQ/RQ of things by object size (small, medium, "
                   "large: COCO's area limits)")
    p.add_argument("--errors", action="store_true", help="the error breakdown: count and oracle delta PQ per "
                   "error type")
    p.add_argument("--boundary-pq", dest="boundary", action="store_true",
                   help="boundary PQ (runs scored with --boundary)")
    deprecated_alias(p, "--boundary", "--boundary-pq")
    p.add_argument("--dagger", action="store_true", help="PQ-dagger beside PQ")
    p.add_argument("--robustness", action="store_true", help="clean PQ, mPC, rPC and the PQ per corruption group "
                   "of each model with corrupted runs (docs/robustness.md)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.cluster.sweep import note_incomplete_sweeps
    from panbench.reporting.columns import ANALYSES
    from panbench.reporting.tables import table_with_notes

    note_incomplete_sweeps(args.results)  # one line on stderr
    if args.robustness:
        from panbench.reporting.robustness import robustness_table

        print(robustness_table(Path(args.results), args.only_dataset, args.format))
        return 0
    analyses = [a for a in ANALYSES if getattr(args, a)]
    text, notes = table_with_notes(Path(args.results), args.only_dataset, args.format, args.vs_published,
                                   args.per_class, analyses, args.reference, args.all_columns)
    print(text)
    if args.format == "csv":  # the CSV stays machine-readable: its footnotes go to stderr
        for n in notes:
            print(n, file=sys.stderr)
    return 0
