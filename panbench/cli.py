"""The ``panbench`` command line.

Every command imports its heavy dependencies (torch, mmdet, pandas) only when it runs, so
``panbench score`` and ``panbench --help`` start in a fraction of a second.  Errors in the
input are one line on stderr with exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from panbench import __version__
from panbench.errors import PanbenchError


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``low`` (argparse turns the ValueError into a usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is not allowed: give an integer >= {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``panbench eval: error: ...; see panbench eval --help``),
    exit code 2, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


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
    if "mIoU" in m:
        lines.append(f"semantic: pixel accuracy {m['pixel_acc']:.3f}, mIoU {m['mIoU']:.3f}, mean Dice {m['mDice']:.3f}")
    return "\n".join(lines)


def cmd_score(args: argparse.Namespace) -> int:
    import time

    from panbench.score import score_files

    t = time.perf_counter()
    res = score_files(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir, workers=args.workers)
    if args.name:
        from panbench.results import external_record, write_record

        rec = external_record(args.name, args.dataset, res, args, time.perf_counter() - t)
        path = write_record(Path(args.results), rec)
        print(f"record: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(res))
    else:
        print(format_metrics(res, f"{res['n_images']} images"))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from panbench.doctor import run_doctor

    return run_doctor(data_root=args.data_root)


def cmd_ls(args: argparse.Namespace) -> int:
    from panbench.checkpoints import cache_dir
    from panbench.registry import all_models

    specs = all_models()
    if args.dataset:
        specs = [s for s in specs if s.dataset == args.dataset]
    rows = []
    for s in specs:
        cached = bool(s.checkpoint_filename and (cache_dir() / s.checkpoint_filename).exists())
        pq = s.published.get("PQ") if s.published else None
        params = _params(s) if args.params or s.params is None else f"{s.params / 1e6:.1f}M"
        rows.append((s.name, s.architecture, s.backbone, s.dataset, f"{pq:.1f}" if pq is not None else "-",
                     params, "yes" if cached else "no", ", ".join(s.aliases)))
    head = ("model", "architecture", "backbone", "dataset", "pub. PQ", "params", "cached", "aliases")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _params(spec) -> str:
    from panbench import mm

    n = mm.count_parameters(mm.build_model(mm.load_config(spec.config), spec.config))
    return f"{n / 1e6:.1f}M"


def cmd_eval(args: argparse.Namespace) -> int:
    from panbench.dataset import load_dataset
    from panbench.errors import PanbenchError
    from panbench.evaluate import evaluate_model
    from panbench.registry import resolve
    from panbench.runner import EvalOptions

    specs = resolve(args.model, dataset=args.dataset)
    if args.checkpoint and len(specs) > 1:
        raise PanbenchError("--checkpoint applies to one model; pass a single --model with it")
    root = args.data_root or ("data/coco" if args.dataset == "coco" else f"data/{args.dataset}")
    ds = load_dataset(root, name=args.dataset, limit=args.limit, subset=args.subset)
    opts = EvalOptions(device=args.device, batch_size=args.batch_size, amp=args.amp, workers=args.workers,
                       cpu_procs=args.cpu_procs,
                       warmup=args.warmup,
                       seed=args.seed, progress=not args.no_progress, resume=not args.no_resume,
                       cache_root=Path(args.results) / "cache", flush_every=max(1, args.cache_every))
    from panbench.postprocess import PostProcess

    pp = PostProcess(args.postprocess, args.pp_alpha, args.pp_beta, args.pp_conf, args.pp_keep)
    records = []
    for spec in specs:
        rec = evaluate_model(spec, ds, opts, checkpoint=args.checkpoint, trust_checkpoint=args.trust_checkpoint,
                             results_dir=Path(args.results), command=" ".join(sys.argv), postprocess=pp)
        records.append(rec)
        if int(os.environ.get("RANK", "0")) == 0:
            print(format_record(rec))
    if len(records) > 1 and int(os.environ.get("RANK", "0")) == 0:
        print(format_comparison(records))
    _finish_distributed()
    return 0


def _finish_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def format_record(rec: dict) -> str:
    """The model's All/Things/Stuff table, timings, and the delta to the published numbers."""
    m = {**rec["metrics"], **rec.get("semantic", {}), "n_categories": rec["n_categories"]}
    t = rec["timings"]
    lines = [format_metrics(m, f"{rec['model']} on {rec['dataset']} ({rec['n_images']} images, {rec['device']})")]
    per_image = (f"; per image: data {_ms(t, 'data_s')}, forward {_ms(t, 'forward_s')}, post-processing "
                 f"{_ms(t, 'postprocess_s')}, scoring {_ms(t, 'scoring_s')} ms" if t.get("timed_images") else "")
    lines.append(f"  {_speed(rec)}{per_image}")
    pub = rec.get("published") or {}
    if any(v is not None for v in pub.values()):
        d = rec["delta_to_published"]
        parts = [f"{k} {rec['metrics'][k]:.1f} vs {pub[k]:.1f} ({d[k]:+.1f})" for k in ("PQ", "PQ_th", "PQ_st")
                 if pub.get(k) is not None]
        lines.append("  published (zoo): " + "; ".join(parts))
        if d.get("PQ") is not None and abs(d["PQ"]) > 1.0:
            note = "on a subset, a gap is expected" if rec["n_images"] < 5000 else "check checkpoint and class order"
            lines.append(f"  WARNING: PQ differs from the published value by {d['PQ']:+.1f} ({note})")
    lines.append(f"  record: {rec.get('record')}")
    return "\n".join(lines)


def _speed(rec: dict) -> str:
    from panbench.results import measured_speed

    v = measured_speed(rec)
    if v is None:
        return "speed not measured (no image past the warm-up was computed, nor a speed stored with the cache)"
    t = rec["timings"]
    cached = " (with the speed stored with the cached images)" if t.get("speed_from_cache") else ""
    return f"{v:.2f} img/s{cached}"


def _ms(t: dict, key: str) -> str:
    n = max(t.get("timed_images", 0), 1)
    return f"{1000 * t.get(key, 0.0) / n:.1f}"


def format_comparison(records: list[dict]) -> str:
    """One row per model: the nine metrics and speed."""
    head = f"{'model':24} {'PQ':>6} {'SQ':>6} {'RQ':>6} {'PQ_th':>6} {'PQ_st':>6} {'img/s':>7}"
    from panbench.results import measured_speed

    rows = [head, "-" * len(head)]
    for r in records:
        m, v = r["metrics"], measured_speed(r)
        speed = f"{v:7.2f}" if v is not None else f"{'-':>7}"
        rows.append(f"{r['model']:24} {m['PQ']:6.2f} {m['SQ']:6.2f} {m['RQ']:6.2f} {m['PQ_th']:6.2f} "
                    f"{m['PQ_st']:6.2f} {speed}")
    return "\n".join(rows)


def _add_ls(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ls", help="list the models panbench knows", description="Every registered model with "
                       "architecture, backbone, published PQ and whether its checkpoint is cached.")
    p.add_argument("--dataset", help="only models for this dataset (coco, demo)")
    p.add_argument("--params", action="store_true",
                   help="build each model to count its parameters instead of reading the config's count")
    p.set_defaults(func=cmd_ls)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate zoo models on COCO panoptic val (or the demo set)",
                       description="Run a model over a panoptic dataset, score PQ/SQ/RQ, write a result record "
                       "under results/ and a row in results/runs.csv.")
    p.add_argument("--model", required=True,
                   help="a name or alias from `panbench ls`, a comma-separated list, 'all', or a config path")
    p.add_argument("--dataset", default="coco", help="coco (default) or demo")
    p.add_argument("--data-root", help="dataset root (default data/coco or data/demo)")
    p.add_argument("--limit", type=int_at_least(1), help="evaluate only the first N images (N >= 1)")
    p.add_argument("--subset", help="file of image ids (one per line) to evaluate")
    p.add_argument("--checkpoint", help="your own weights instead of the zoo's")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of a checkpoint that weights_only loading refuses")
    p.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda, cuda:1")
    p.add_argument("--batch-size", type=int_at_least(1), default=1, help="images per forward pass (default 1)")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="mixed-precision inference (default: fp32)")
    p.add_argument("--postprocess", default="default", choices=["default", "maskwise", "argmax"],
                   help="panoptic post-processing for MaskFormer/Mask2Former: the model's own fusion (default), "
                   "Panoptic SegFormer's mask-wise merging, or pixel-wise argmax")
    p.add_argument("--pp-alpha", type=float, default=0.25, help="maskwise: exponent of the class probability")
    p.add_argument("--pp-beta", type=float, default=1.0, help="maskwise: exponent of the mask quality")
    p.add_argument("--pp-conf", type=float, default=0.25, help="maskwise: confidence threshold t_cnf")
    p.add_argument("--pp-keep", type=float, default=0.6, help="maskwise: fraction of a mask that must remain")
    p.add_argument("--workers", type=int_at_least(0), default=2, help="data-loading worker processes (default 2)")
    p.add_argument("--cpu-procs", type=int_at_least(0), default=0,
                   help="on the CPU: inference processes forked after the model is loaded, each with cores/N "
                   "threads and its own data loading (default 0: one per core; 1: a single process)")
    p.add_argument("--warmup", type=int_at_least(0), default=1, help="batches left out of the timings (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", default="results", help="results folder (default results/)")
    p.add_argument("--no-resume", action="store_true", help="ignore per-image results cached by an earlier run")
    p.add_argument("--cache-every", type=int_at_least(1), default=16,
                   help="write the per-image results cache every N images (default 16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)


def cmd_data_demo(args: argparse.Namespace) -> int:
    import time

    from panbench.demo_data import make_demo, tree_digest

    t = time.perf_counter()
    root = make_demo(Path(args.root), seed=args.seed, force=args.force)
    print(f"demo dataset at {root} ({time.perf_counter() - t:.1f} s); sha256 {tree_digest(root)[:16]}")
    return 0


def cmd_data_coco(args: argparse.Namespace) -> int:
    from panbench.data_coco import prepare_coco
    from panbench.panoptic_io import read_json

    sums = read_json(args.checksums, "checksums file") if args.checksums else None
    root = prepare_coco(Path(args.root), Path(args.from_dir) if args.from_dir else None, sums,
                        progress=not args.no_progress)
    print(f"COCO panoptic val ready at {root}")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare datasets", description="Prepare datasets in the COCO panoptic layout.")
    dsub = p.add_subparsers(dest="data_command", metavar="DATASET", required=True)
    d = dsub.add_parser("demo", help="generate the synthetic demo dataset (offline, seconds)",
                        description="Generate the seeded synthetic panoptic dataset under data/demo (train2017 "
                        "and val2017 splits, COCO layout).")
    d.add_argument("--root", default="data/demo", help="where to write it (default data/demo)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--force", action="store_true", help="regenerate even if present")
    d.set_defaults(func=cmd_data_demo)
    c = dsub.add_parser("coco", help="download and extract COCO-2017 panoptic val (about 1.6 GB of zips)",
                        description="Get val2017 images and the panoptic val annotations: download (resumable) or "
                        "--from a folder with val2017.zip and panoptic_annotations_trainval2017.zip; archives are "
                        "checked (CRC, optional sha256, entry names) before extraction.")
    c.add_argument("--root", default="data/coco", help="where to put it (default data/coco)")
    c.add_argument("--from", dest="from_dir", help="folder that already holds the official zip files")
    c.add_argument("--checksums", help='JSON file {"val2017.zip": "<sha256>", ...} to pin the archives')
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=cmd_data_coco)


def cmd_table(args: argparse.Namespace) -> int:
    from panbench.tables import table_from_dir

    print(table_from_dir(Path(args.results), args.dataset, args.format, args.vs_published, args.per_class))
    return 0


def _add_table(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help="compare the latest run of each model (pandas)",
                       description="The latest run of each model side by side: PQ/SQ/RQ for All/Things/Stuff with "
                       "category counts, images/s, device and parameters.")
    p.add_argument("--results", default="results", help="results folder (default results/)")
    p.add_argument("--dataset", help="only runs on this dataset (coco, demo)")
    p.add_argument("--format", default="md", choices=["md", "csv", "latex", "html"])
    p.add_argument("--vs-published", action="store_true", help="add the zoo's published numbers and the deltas")
    p.add_argument("--per-class", action="store_true", help="per-class PQ of the models instead")
    p.set_defaults(func=cmd_table)


def cmd_plot(args: argparse.Namespace) -> int:
    from panbench.plots import make_plots
    from panbench.results import load_records
    from panbench.tables import latest_runs

    records = latest_runs(load_records(Path(args.results)), args.dataset)
    if not records:
        from panbench.errors import PanbenchError

        raise PanbenchError(f"{args.results}/runs: no result records; run `panbench eval` first")
    for p in make_plots(records, Path(args.results) / "plots"):
        print(p)
    return 0


def cmd_viz(args: argparse.Namespace) -> int:
    from panbench.dataset import load_dataset
    from panbench.errors import PanbenchError
    from panbench.evaluate import load_model
    from panbench.registry import resolve
    from panbench.runner import pick_device
    from panbench.viz import find_sample, predict, render

    if len(args.model) > 2:
        raise PanbenchError("--model: give one or two models")
    if args.checkpoint and len(args.checkpoint) != len(args.model):
        raise PanbenchError("--checkpoint: give one per --model, in the same order")
    root = args.data_root or ("data/coco" if args.dataset == "coco" else f"data/{args.dataset}")
    ds = load_dataset(root, name=args.dataset)
    sample = find_sample(ds, args.image)
    device = pick_device(args.device)
    preds = []
    for k, name in enumerate(args.model):
        spec = resolve(name, dataset=args.dataset)[0]
        lm = load_model(spec, ds.categories, args.checkpoint[k] if args.checkpoint else None, args.trust_checkpoint,
                        device)
        preds.append(predict(lm, spec.name, sample, len(lm.names)))
    out = Path(args.out or Path(args.results) / "viz" / f"{args.image}_{'_vs_'.join(p.model for p in preds)}.png")
    print(render(sample, ds, preds, out))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from panbench.report import write_report

    print(write_report(Path(args.results), args.dataset, Path(args.out) if args.out else None))
    return 0


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="PNG plots of the results (matplotlib)",
                       description="Grouped bars of PQ/SQ/RQ for All/Things/Stuff per model, PQ against images/s, "
                       "and per-class PQ where the models differ most, under RESULTS/plots/.")
    p.add_argument("--results", default="results")
    p.add_argument("--dataset", help="only runs on this dataset")
    p.set_defaults(func=cmd_plot)


def _add_viz(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("viz", help="panoptic overlays of one or two models on one image",
                       description="The image with each model's panoptic overlay beside the ground truth; for two "
                       "models a map of where their labels disagree; for MaskFormer/Mask2Former the mask maps "
                       "of the top queries.")
    p.add_argument("--model", action="append", required=True, help="a model (repeat for a second one)")
    p.add_argument("--image", type=int, required=True, help="image id")
    p.add_argument("--dataset", default="coco")
    p.add_argument("--data-root")
    p.add_argument("--checkpoint", action="append", help="weights for each --model, in order")
    p.add_argument("--trust-checkpoint", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--results", default="results")
    p.add_argument("--out", help="output PNG (default RESULTS/viz/<image>_<models>.png)")
    p.set_defaults(func=cmd_viz)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page: tables, plots, visualizations, provenance",
                       description="Write RESULTS/report.html with the comparison tables, the plots, the images "
                       "under RESULTS/viz and the provenance of each run, all embedded.")
    p.add_argument("--results", default="results")
    p.add_argument("--dataset", help="only runs on this dataset")
    p.add_argument("--out", help="output file (default RESULTS/report.html)")
    p.set_defaults(func=cmd_report)


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
    p.add_argument("--name", help='store a result record under this model name (e.g. "Mask DINO (detectron2)") '
                   "so that the system appears in `panbench table`")
    p.add_argument("--dataset", default="coco", help="dataset name for the record (default coco)")
    p.add_argument("--results", default="results", help="results folder for --name (default results/)")
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


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_doctor, _add_ls, _add_eval, _add_table, _add_plot, _add_viz, _add_report, _add_score, _add_data,
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="panbench",
        description="Benchmark panoptic segmentation models from the MMDetection zoo on COCO panoptic.",
    )
    parser.add_argument("--version", action="version", version=f"panbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    _debug_everywhere(sub)
    return parser


def _debug_everywhere(sub: argparse._SubParsersAction) -> None:
    """Accept ``--debug`` after the command too (``panbench eval ... --debug``)."""
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _debug_everywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``panbench`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if not args.debug:  # library deprecation chatter hides panbench's own messages
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
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
