"""``panbench eval``: run zoo models (or your own weights) over a panoptic dataset and record PQ and speed."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.cli.options import Common, check_writable, dataset_root, fraction, non_negative_float, non_negative_int
from panbench.cli.running import finish_distributed, import_torch, models_and_dataset, rank, single_checkpoint
from panbench.data.catalog import DATASETS
from panbench.errors import PanbenchError
from panbench.evaluation.options import EvalOptions, check_models
from panbench.models.postprocess import FUSIONS, POSTPROCESSES, PostProcess

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord


# the settings of Panoptic SegFormer's mask-wise merging: flag -> (PostProcess' field, type, help)
MASKWISE_OPTIONS = {"--pp-alpha": ("alpha", non_negative_float, "exponent of the class probability, >= 0"),
                    "--pp-beta": ("beta", non_negative_float, "exponent of the mask quality, >= 0"),
                    "--pp-conf": ("conf_thr", fraction, "confidence threshold t_cnf in [0, 1]"),
                    "--pp-keep": ("keep_thr", fraction, "fraction of a mask that must remain, in [0, 1]")}


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    others = [name for name in DATASETS if name != "coco"]
    p = sub.add_parser("eval", parents=[common.models, common.pipeline, common.dataset,
                       common.results, common.data_root,
                                        common.image_selection, common.checkpoint, common.device, common.run,
                                        common.evaluator, common.amp, common.seed, common.progress, common.corruption,
                                        common.boundary, common.strict, common.per_image, common.diagnosis,
                                        common.rules],
                       help=f"evaluate models on COCO panoptic val (or {', '.join(others)})",
                       description="Run a model over a panoptic dataset, score PQ/SQ/RQ, write a result record "
                       "under results/ and a row in results/runs.csv.")
    p.add_argument("--save-predictions", metavar="DIR",
                   help="also write the predictions in the COCO panoptic format (PNGs + JSON) under DIR")
    p.add_argument("--images", metavar="DIR|JSON",
                   help="run on images without ground truth (a folder, or an image-info JSON such as COCO's "
                   "image_info_test-dev2017.json) and save the predictions (needs --save-predictions); no scoring")
    p.add_argument("--image-dir", help="with --images JSON: the folder of its images (default DATA_ROOT/test2017)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                   help="override settings of the model config, mmengine's syntax (as mmdet's tools/test.py), e.g. "
                   "model.test_cfg.object_mask_thr=0.9; part of the record and of the resume-cache key")
    p.add_argument("--postprocess", default=PostProcess.name, choices=POSTPROCESSES,
                   help="panoptic post-processing for MaskFormer/Mask2Former: the model's own fusion (default), "
                   "Panoptic SegFormer's mask-wise merging, or pixel-wise argmax")
    p.add_argument("--fusion", default=EvalOptions.fusion, choices=FUSIONS,
                   help="how the model's own panoptic fusion runs: panbench's vectorized implementation of the "
                   "same rules, pixel-identical (default), or mmdet's per-segment loop")
    p.add_argument("--flops-images", type=non_negative_int, default=EvalOptions.flops_images, metavar="N",
                   help="GFLOPs per image averaged over the first N images, counted in a separate pass after the "
                   f"timed inference (default {EvalOptions.flops_images}; the Mask2Former paper uses 100; 0: not "
                   "counted)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                   help="score every combination of these post-processing values from one forward (repeatable; "
                   "e.g. object_mask_thr=0.6,0.7,0.8 or postprocess=default,maskwise,argmax): one record per "
                   "setting, each equal to a separate run of it (docs/eval.md, \"Grids\")")
    for flag, (field, kind, what) in MASKWISE_OPTIONS.items():
        p.add_argument(flag, type=kind, help=f"maskwise (needs --postprocess maskwise): {what} (default "
                       f"{getattr(PostProcess, field)})")
    return p


def run(args: argparse.Namespace) -> int:
    check_settings(args)
    import_torch()

    from panbench.data.datasets import load_dataset
    from panbench.evaluation import storage
    from panbench.evaluation.run import Run
    from panbench.records.io import records_written
    from panbench.reporting.text import format_comparison, format_record

    specs, args.dataset = models_and_dataset(args.model, args.dataset)
    args.checkpoint = single_checkpoint(args.checkpoint, specs)
    for written in ("", "runs", "cache"):  # the folder, its records and the resume cache written as images are scored
        check_writable(Path(args.results) / written, "--results")
    if args.save_predictions:
        check_writable(args.save_predictions, "--save-predictions")
    opts = EvalOptions.from_cli(args)
    if args.images:
        return _predict(args, specs, opts)
    ds = load_dataset(dataset_root(args), name=args.dataset, limit=args.limit, subset=args.subset)
    handles = check_models(specs, ds.categories, opts)  # every model and option, before any model runs
    if opts.save_predictions is not None and not opts.grid:  # no other run saves these predictions there now
        # (a grid's settings save into folders of their own, each claimed as its run starts)
        storage.claim_up_front([s.name for s in specs], ds, opts.save_predictions)
    records = []
    names = [s.name for s in specs]
    # for Ctrl-C's line, each time set in one step: the models finished, those left (the running one first), the
    # count of records written at which the running one is finished too (None while it loads) and the count of
    # caches opened before the running one's (a cache opened after them is its own, the line's images)
    args.models = ([], names, None, storage.opened())
    for k, (spec, handle) in enumerate(zip(specs, handles)):
        run = Run(spec, ds, opts, handle)
        args.models = (names[:k], names[k:], records_written() + len(run.parts), args.models[3])
        # the numbers on the screen before any file is written (a grid's: one table once every record is written)
        scored = run.evaluate(show=lambda r: print(format_record(r, args.results), flush=True))
        args.models = (names[:k + 1], names[k + 1:], None, storage.opened())
        records += [r for _, r in scored]
        if rank() == 0:
            _model_done(args, spec.name, scored, opts, len(specs) > 1)
    if len(records) > 1 and not opts.grid and rank() == 0:
        print(format_comparison(records, args.results))
    finish_distributed()
    return 0


def _model_done(args: argparse.Namespace, model: str, scored: list[tuple[Any, RunRecord]], opts: EvalOptions,
                several: bool) -> None:
    """A model's lines once its records are written (rank 0): the record's, or a grid's table; its notes."""
    from panbench.pq.score import unlisted_note
    from panbench.reporting.text import record_line

    if scored[0][0] is not None:
        print(grid_output(scored, model, args.dataset, opts, Path(args.results)))
    else:
        print(record_line(rec := scored[0][1], args.results))
        if args.per_image:
            print(f"  per-image table: {per_image_out(args.per_image, rec, args.results, several)}")
    notes = [n for _, r in scored for n in (unlisted_note(r.to_json()), shared_note(r)) if n]
    for note in dict.fromkeys(notes):  # a grid's settings (one forward) share their notes
        print(note, file=sys.stderr)


def grid_output(scored: list[tuple[Any, RunRecord]], model: str, dataset: str, opts: EvalOptions,
                results: Path) -> str:
    """A grid's summary written (``RESULTS/grids/``) and its one table of the settings, as printed."""
    from panbench.records.grids import GridRow, grid_summary, write_grid_summary
    from panbench.reporting.text import format_grid

    rows = [GridRow(s.label(), dict(s.values), s.default, str(r.record), r.metrics) for s, r in scored]
    used = {k for s, _ in scored for k in dict(s.values)}  # the model's own keys (full names) of the grid given
    grid = {k: v for k, v in (opts.grid or {}).items() if any(u == k or u.endswith("." + k) for u in used)}
    doc = grid_summary(model, dataset, grid, rows, opts.command)
    path = write_grid_summary(results, doc)
    said = f"{len(rows)} record{'s' if len(rows) != 1 else ''}"
    return format_grid(doc, [r for _, r in scored]) + f"\n  grid: {path} ({said} under {results}/runs)"


def check_settings(args: argparse.Namespace) -> None:
    """Options without effect in the run's settings, refused before anything loads, each naming the one it needs."""
    if args.postprocess != "maskwise":
        if given := [o for o in MASKWISE_OPTIONS if getattr(args, o[2:].replace("-", "_")) is not None]:
            raise PanbenchError(f"{given[0]} sets Panoptic SegFormer's mask-wise merging, which runs with "
                                f"--postprocess maskwise only; add --postprocess maskwise or leave out "
                                f"{' and '.join(given)}")
    if args.grid:
        if args.images:
            raise PanbenchError("--grid scores post-processing settings; --images has no ground truth: leave one out")
        if args.fusion == "mmdet":
            raise PanbenchError("--grid runs each setting through panbench's fusion (pixel-identical to mmdet's): "
                                "leave --fusion mmdet out")
        if args.per_image:
            raise PanbenchError("--per-image writes one run's table; a grid has a record per setting: leave it out "
                                "and write a setting's with `panbench images --run RECORD.json --per-image FILE`")
    if args.image_dir and not args.images:
        raise PanbenchError("--image-dir goes with --images FILE.json")
    if args.images and not args.save_predictions:
        raise PanbenchError("--images runs models without scoring them: pass --save-predictions DIR to keep "
                            "their predictions")
    if args.evaluator and args.images:
        raise PanbenchError("--evaluator reads scored images; --images has no ground truth: leave one out")
    if args.per_image and args.images:
        raise PanbenchError("--per-image needs scored runs; --images has no ground truth: leave one out")
    if args.per_image:  # a .csv or .parquet file (pyarrow present)
        from panbench.analysis.per_image import check_table

        check_table(args.per_image)


def per_image_out(path: str, rec: RunRecord, results: str, several: bool) -> Path:
    """Write the run's per-image table to ``path`` (``FILE-<model>.csv`` when several models ran)."""
    from panbench.analysis.per_image import write_record_per_image

    p = Path(path)
    if several:
        p = p.with_name(f"{p.stem}-{re.sub(r'[^A-Za-z0-9._-]+', '_', rec.model)}{p.suffix}")
    return write_record_per_image(rec, results, p)


def shared_note(rec: RunRecord) -> str | None:  # the run's speed measured while other panbench runs shared it
    from panbench.records.rows import measured_speed

    ctx = rec.speed_context or {}
    if not ctx.get("overlapped") or measured_speed(rec) is None:  # no speed, nothing to mark
        return None
    runs = ctx.get("overlapped_runs") or []
    cached = (rec.timings.get("speed_from_cache") or {}).get("overlapped")
    who = ", ".join(f"pid {o['pid']}" for o in runs[:3]) or ("while the speed stored with the cached images was "
                                                              "measured" if cached else "on another rank's machine")
    return (f"note: another panbench run overlapped this one ({who}): its speed shares the machine and is marked "
            "~ in tables; rerun alone for a speed to compare")


def _predict(args: argparse.Namespace, specs: list, opts: Any) -> int:  # --images: predictions saved, no score
    from panbench.data.datasets import load_images
    from panbench.evaluation.run import predict_images
    from panbench.evaluation.storage import claim_up_front

    if args.subset:
        raise PanbenchError("--subset selects images of a dataset with ground truth; with --images, list the "
                            "images in the folder or the JSON")
    images = load_images(args.images, args.dataset, dataset_root(args), args.image_dir, limit=args.limit)
    handles = check_models(specs, images.categories, opts)
    claim_up_front([s.name for s in specs], images, opts.save_predictions)
    for spec, handle in zip(specs, handles):
        path = predict_images(spec, images, opts, handle)
        if rank() == 0:
            print(f"{spec.name} [{opts.postprocess.label()}]: predictions of {len(images.samples)} images in "
                  f"{path} and {path.with_suffix('')}/ (not scored: no ground truth)")
    finish_distributed()
    return 0
