"""``panbench score``: PQ of COCO-panoptic predictions (JSON + PNGs) from any framework (never imports torch)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from panbench.analyses import ANALYSES
from panbench.cli.options import Common, check_writable, deprecated_alias, model_name, positive_int
from panbench.errors import InputError
from panbench.pq import ahead


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "score", parents=[common.results, common.json, common.boundary, common.strict, common.per_image,
                          common.diagnosis, common.evaluator, common.rules],
        help="score COCO panoptic predictions (JSON + PNGs) against ground truth",
        description="Score predictions in the COCO panoptic format (from any framework) against ground truth; gives "
        "panopticapi's numbers exactly, streaming, optionally on several cores.")
    p.add_argument("--gt-json", required=True, help="ground-truth panoptic JSON (e.g. panoptic_val2017.json)")
    p.add_argument("--gt-dir", required=True, help="folder of ground-truth panoptic PNGs")
    p.add_argument("--pred-json", required=True, help="prediction JSON in the COCO panoptic format")
    p.add_argument("--pred-dir", required=True, help="folder of predicted panoptic PNGs")
    p.add_argument("--procs", type=positive_int, default=None,
                   help="cores to score on (default: every available core, at most one per image; 1: one): "
                   "threads of this process; every choice gives the same numbers, bit for bit")
    deprecated_alias(p, "--workers", "--procs")
    p.add_argument("--name", type=model_name, help="store a result record under this model name (e.g. "
                   '"Mask DINO (detectron2)") so that the system appears in `panbench table`')
    p.add_argument("--dataset-name", metavar="NAME", help="the dataset the --name record is filed under (default: "
                   "the dataset of the ground truth: the name of earlier records of the same images, else the "
                   "dataset its folder names, e.g. demo for data/demo/annotations/...)")
    deprecated_alias(p, "--dataset", "--dataset-name")
    p.add_argument("--instances", metavar="FILE.json",
                   help="COCO instance results (RLE masks with scores, the dataset's category ids): also COCO mask AP "
                   "of the thing classes against the ground truth converted from the panoptic PNGs")

    titles = "; ".join(a.title.replace("%", "%%") for a in ANALYSES)
    p.add_argument("--no-analysis", action="store_true",
                   help=f"PQ only, none of the analyses ({titles}; the baseline of scripts/bench_pq.py)")
    # no reference cycles: the JSON, the arrays and the analyses' numbers (main() pauses the cyclic collector,
    # whose collections would only walk the modules imported here: 10-15 ms of a run)
    p.set_defaults(no_cycles=True)
    return p


def run(args: argparse.Namespace) -> int:
    # the two JSONs read and scanned on a thread while numpy and panbench's modules import (panbench.pq.ahead);
    # what score did not take is dropped at the block's end
    with ahead.ReadAhead((args.gt_json, True), (args.pred_json, False)):
        return _scored(args)


def _scored(args: argparse.Namespace) -> int:
    _numpy_without_blas_threads()
    _reuse_freed_memory()
    _refuse_folders(args)
    extra = _check_options(args)
    t = time.perf_counter()
    from panbench.evaluators import Evaluators
    from panbench.evaluators.files import score_folder
    from panbench.pq.score import json_ready, read_truth, unlisted_note
    from panbench.pq.stuff_rule import stuff_rule_warning

    truth = read_truth(args.gt_json)  # read once, then passed to everything that reads it
    evaluators = Evaluators.for_run(truth.categories, boundary=args.boundary, strict=args.strict,
                                    analyses=not args.no_analysis, ap=bool(args.instances),
                                    ap_source="instances JSON", semantic=False, diagnose=not args.no_diagnosis,
                                    rules=args.rules or (), extra=extra)
    score_folder(evaluators, truth, args.gt_dir, args.pred_json, args.pred_dir, args.procs, args.instances)
    with _freed_memory_returned():
        result = evaluators.evaluate()
    res, aset = result["metrics"], result.get("analysis")  # PQ's numbers; the per-image export, saved apart
    fields = {k: v for k, v in result.items() if k not in ("metrics", "analysis", "diagnosis")}
    seconds = time.perf_counter() - t  # the scoring's, without a finding's pass
    if findings := _diagnosis(args, truth, result.get("diagnosis", [])):
        fields["diagnosis"] = [f.to_json() for f in findings]
    if warning := stuff_rule_warning(truth):  # two segments of one stuff category in an image
        print(warning, file=sys.stderr)
    if note := unlisted_note(res):
        print(note, file=sys.stderr)
    # the numbers on the screen before any file is written: a write that fails loses none of them
    print(json.dumps(json_ready({**res, **fields})) if args.json else _text(res, fields), flush=True)
    if args.name:
        from panbench.records.scored import record_scored

        files = {"truth": truth, **{k: getattr(args, k) for k in ("gt_dir", "pred_json", "pred_dir")}}
        written = record_scored(Path(args.results), args.name, args.dataset_name, res, aset, fields, files, seconds)
        print(f"record: {Path(args.results) / str(written.record)}", file=sys.stderr)
    if args.per_image and aset is not None:
        _per_image(args, aset, truth)
    return 0


def _diagnosis(args: argparse.Namespace, truth: Any, findings: list[Any]) -> list[Any]:
    """The format mistakes scoring found (none with ``--no-diagnosis``), each with the PQ its fix would give (the
    PNGs scored once more with the corrected ids: only when there is a finding)."""
    if args.no_diagnosis or not findings:
        return []
    from panbench.pq.score import with_pq_if_fixed

    return with_pq_if_fixed(findings, truth, args.gt_dir, args.pred_json, args.pred_dir, args.procs, args.strict)


def _check_options(args: argparse.Namespace) -> list[Any]:
    """Options without effect in the run's settings, and the files the run writes, refused before any work; the
    user's evaluators, loaded."""
    if args.dataset_name is not None and not args.name:
        raise InputError(f"--dataset-name {args.dataset_name} files the record of --name: add --name SYSTEM to "
                         "store a record, or leave out --dataset-name")
    extra: list[Any] = []
    if args.evaluator:  # refused in one line before any image is read
        from panbench.evaluators import load_evaluators

        extra = load_evaluators(args.evaluator)
    if args.no_analysis and args.boundary:
        raise InputError("--boundary is an analysis: leave out --no-analysis to get it")
    if args.per_image:
        _per_image(args, None)
    if args.name:
        check_writable(Path(args.results) / "runs", "--results")
    return extra


# what OpenBLAS reads for its thread count, in its order
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _numpy_without_blas_threads() -> None:
    """Load numpy with OpenBLAS on one thread, unless numpy is loaded already or the environment sets a count; the
    environment as it was after the import (docs/pq-evaluator.md, "Parallel paths")."""
    if "numpy" in sys.modules or any(k in os.environ for k in BLAS_THREADS):
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def _libc() -> Any:
    """glibc, where this process runs on it (None elsewhere: musl and others have no mallopt)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # numpy has imported it

    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _reuse_freed_memory() -> None:
    """glibc's malloc told to keep what this process frees for its next allocations (docs/pq-evaluator.md, "Parallel
    paths"); a setting of the whole process, a Python caller of ``main(["score", ...])`` keeps it, but for the
    analyses (:func:`_freed_memory_returned`)."""
    if (libc := _libc()) is not None:
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)


@contextmanager
def _freed_memory_returned() -> Iterator[None]:
    """For the analyses, once the images are scored: blocks of 1 MiB and more the OS's pages, returned as they are
    freed (the analyses' large arrays), and, where the process holds more than :data:`TRIM_FREED` freed (the
    prediction JSON, the scoring's buffers), that memory handed back first, so that the peak is what the process
    holds at once; less is kept for the analyses to reuse, each page handed back being a fault when touched again.
    :func:`_reuse_freed_memory`'s settings again after them (docs/pq-evaluator.md, "Parallel paths")."""
    if (libc := _libc()) is None:
        yield
        return
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 20)
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
    if _freed_bytes(libc) > TRIM_FREED:
        libc.malloc_trim(0)
    try:
        yield
    finally:
        _reuse_freed_memory()


TRIM_FREED = 32 << 20  # 15 MiB freed after scoring 1000 COCO-size images, 45 MiB after 20,000


def _freed_bytes(libc: Any) -> int:
    """What malloc holds freed (``mallinfo2``'s ``fordblks``; glibc 2.33 and later, else as if it were much)."""
    import ctypes

    class _Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    info = getattr(libc, "mallinfo2", None)
    if info is None:
        return 1 << 62
    info.restype = _Info
    return int(info().fordblks)


def _refuse_folders(args: argparse.Namespace) -> None:  # a JSON option given a folder: the JSON file(s) to pass
    for option, path in (("--gt-json", args.gt_json), ("--pred-json", args.pred_json), ("--instances", args.instances)):
        if not (path and (folder := Path(path)).is_dir()):
            continue
        found = sorted(folder.glob("*.json"))
        panoptic = [p for p in found if "panoptic" in p.name] if option == "--gt-json" else []
        if len(panoptic or found) == 1:
            fix = f"pass the file: {option} {(panoptic or found)[0]}"
        elif found:
            more = ", ..." if len(found) > 5 else ""
            fix = f"pass one of its JSON files ({', '.join(p.name for p in found[:5])}{more})"
        else:
            fix = "pass the JSON file itself (e.g. annotations/panoptic_val2017.json); its PNGs' folder goes to " + \
                option.replace("-json", "-dir") if option != "--instances" else "pass the instance results JSON file"
        raise InputError(f"{option} {folder}: a folder, not a JSON file; {fix}")


def _per_image(args: argparse.Namespace, aset: Any, truth: Any = None) -> None:  # no aset: its path checked
    from panbench.analysis.per_image import check_table, file_names, write_per_image

    if aset is None:
        if args.no_analysis:
            raise InputError("--per-image reads the per-image analysis: leave out --no-analysis to get it")
        check_table(args.per_image)
        return
    wrote = write_per_image(aset, args.per_image, file_names(truth.data, aset.image_ids))
    print(f"per-image table: {wrote}", file=sys.stderr)


def _text(res: dict[str, object], fields: dict[str, object]) -> str:  # PQ's table, the analyses, the mask AP
    from panbench.reporting.text import (
        attribution_lines,
        diagnosis_lines,
        evaluator_lines,
        format_analyses,
        format_metrics,
        rules_lines,
    )

    analyses = format_analyses({**fields, "n_images": res["n_images"]})
    lines = [format_metrics(res, f"{res['n_images']} images"), *analyses]
    if "ap" in fields:
        from panbench.analysis.ap import ap_line

        lines.append(ap_line(fields["ap"]))  # type: ignore[arg-type]
    lines += rules_lines(fields.get("rules"))  # type: ignore[arg-type]
    lines += attribution_lines(fields.get("rules_attribution"))  # type: ignore[arg-type]
    lines += evaluator_lines(fields.get("evaluators"))  # type: ignore[arg-type]
    lines += diagnosis_lines(fields.get("diagnosis", []))  # type: ignore[arg-type]
    return "\n".join(lines)
