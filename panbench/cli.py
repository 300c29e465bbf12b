"""The ``panbench`` command line.

Every command imports its heavy dependencies (torch, mmdet, pandas) only when it runs, so
``panbench score`` and ``panbench --help`` start in a fraction of a second.  Errors in the
input are one line on stderr with exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from panbench import __version__
from panbench.errors import PanbenchError


def format_metrics(m: dict, title: str = "") -> str:
    """The All/Things/Stuff table of PQ/SQ/RQ with category counts (as panopticapi prints it)."""
    n = m.get("n_categories", {})
    lines = [title] if title else []
    lines.append(f"{'':8}|{'PQ':>8} {'SQ':>8} {'RQ':>8} | {'N':>4}")
    lines.append("-" * 8 + "+" + "-" * 27 + "+" + "-" * 6)
    for name, sfx in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        lines.append(
            f"{name:8}|{m['PQ' + sfx]:8.3f} {m['SQ' + sfx]:8.3f} {m['RQ' + sfx]:8.3f} | {n.get(name, 0):4d}"
        )
    return "\n".join(lines)


def cmd_score(args: argparse.Namespace) -> int:
    from panbench.score import score_files

    res = score_files(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir, workers=args.workers)
    if args.json:
        print(json.dumps(res))
    else:
        print(format_metrics(res, f"{res['n_images']} images"))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from panbench.doctor import run_doctor

    return run_doctor(data_root=args.data_root)


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score COCO panoptic predictions (JSON + PNGs) against ground truth",
        description="Score predictions in the COCO panoptic format (from any framework) against ground "
        "truth; gives panopticapi's numbers exactly, streaming, optionally on several cores.",
    )
    p.add_argument("--gt-json", required=True, help="ground-truth panoptic JSON (e.g. panoptic_val2017.json)")
    p.add_argument("--gt-dir", required=True, help="folder of ground-truth panoptic PNGs")
    p.add_argument("--pred-json", required=True, help="prediction JSON in the COCO panoptic format")
    p.add_argument("--pred-dir", required=True, help="folder of predicted panoptic PNGs")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(func=cmd_score)


def _add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the installation: versions, compiled mmcv ops, GPU, data and checkpoints",
        description="Print the versions of the stack and check that each part works; each problem on "
        "one line with its fix. Exit 1 when a required part is broken.",
    )
    p.add_argument("--data-root", default="data/coco", help="COCO panoptic root to look for (default data/coco)")
    p.set_defaults(func=cmd_doctor)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_doctor, _add_score]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panbench",
        description="Benchmark panoptic segmentation models from the MMDetection zoo on COCO panoptic.",
    )
    parser.add_argument("--version", action="version", version=f"panbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``panbench`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PanbenchError as e:
        if args.debug:
            raise
        print(f"panbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("panbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
