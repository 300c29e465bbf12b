"""``panbench table``: the latest run of each model side by side (pandas)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from panbench.analyses import ANALYSES
from panbench.cli.options import Common, check_results, deprecated_alias
from panbench.cli.records import alias_names
from panbench.cluster.sweep import note_incomplete_sweeps
from panbench.errors import PanbenchError
from panbench.reporting.formats import writer


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("table", parents=[common.results, common.only_dataset, common.format, common.reference,
                                         common.by],
                       help="compare the latest run of each model (pandas)",
                       description="The verdict first (per dataset, the ranking on PQ with each run's 95% paired "
                       "bootstrap difference to a reference run, and one line that reads it), then the latest "
                       "run of each model side by side: PQ with its interval, PQ things, PQ stuff, SQ, RQ, AP "
                       "and GFLOPs where some run has them, mIoU, images/s and parameters, with dataset and images "
                       "in one line when every row shares them (--all-columns: every column), the settings of a "
                       "grid of `eval --grid` marked default (the model's own) and best (on these images) in a "
                       "column grid; with an analysis option, "
                       "that analysis instead (options combine; docs/reporting.md says how to read each). --by "
                       "dataset: one table across datasets instead, a row per architecture and backbone, a column "
                       "group per dataset, the published numbers beside the measured ones.")
    p.add_argument("--all-columns", action="store_true", help="every column: framework, selection, batch, amp, "
                   "--cfg-options, PQ/SQ/RQ of things and stuff, semantic metrics, category counts, device")
    p.add_argument("--vs-published", action="store_true", help="add the published numbers and the deltas")
    p.add_argument("--per-class", action="store_true", help="per-class PQ of the models instead")
    for a in ANALYSES:  # one option per analysis
        p.add_argument(a.option, dest=a.key, action="store_true", help=a.help)
        for alias in a.aliases:
            deprecated_alias(p, alias, a.option)
    p.add_argument("--robustness", action="store_true", help="clean PQ, mPC, rPC and the PQ per corruption group "
                   "of each model with corrupted runs (docs/robustness.md)")
    return p


def _reference(args: argparse.Namespace) -> str | None:
    """``--reference`` as a recorded model's name: a registry alias becomes the one recorded model it stands for."""
    from panbench.records.io import load_records

    if (ref := args.reference) is None:
        return None
    models = {r.model for r in load_records(Path(args.results))}
    names = alias_names(ref, args.only_dataset) & models if ref not in models else set()
    return names.pop() if len(names) == 1 else ref


def _by_dataset_refusal(args: argparse.Namespace) -> PanbenchError | None:
    """The one line refusing an option ``--by dataset`` does not take (its table has columns of its own); None."""
    options = {"all_columns": "--all-columns", "vs_published": "--vs-published", "per_class": "--per-class",
               "robustness": "--robustness", **{a.key: a.option for a in ANALYSES}}
    given = [flag for dest, flag in options.items() if getattr(args, dest)]
    given += ["--reference"] if args.reference is not None else []
    if not given:
        return None
    return PanbenchError(f"--by dataset: leave out {', '.join(given)} (the table across datasets has its own columns, "
                         f"published numbers included), or run `panbench table {given[0]}` without --by")


def run(args: argparse.Namespace) -> int:
    from panbench.reporting.columns import KEYS
    from panbench.reporting.tables import table_with_notes

    check_results(args.results)
    if args.by == "dataset" and (refused := _by_dataset_refusal(args)) is not None:
        raise refused
    note_incomplete_sweeps(args.results)  # one line on stderr
    if args.by == "dataset":
        from panbench.reporting.across_datasets import across_datasets_table

        text, notes = across_datasets_table(Path(args.results), args.only_dataset, args.format)
    elif args.robustness:
        from panbench.reporting.robustness import NOTE, robustness_table

        text, notes = robustness_table(Path(args.results), args.only_dataset, args.format), [NOTE]
    else:
        text, notes = table_with_notes(Path(args.results), args.only_dataset, args.format, args.vs_published,
                                       args.per_class, [a for a in KEYS if getattr(args, a)], _reference(args),
                                       args.all_columns)
    print(text.rstrip("\n"))  # CSV ends with its last row's line break, no blank line after it
    if writer(args.format).notes_apart:  # a machine-readable format (CSV): the verdict and footnotes go to stderr
        for n in notes:
            print(n, file=sys.stderr)
    return 0
