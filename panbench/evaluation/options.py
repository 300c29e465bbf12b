"""The options of one ``panbench eval`` run, built once from the command line
(as lm-evaluation-harness's ``EvaluatorConfig.from_cli``) and passed whole to the run."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.errors import PanbenchError
from panbench.models.families import open_model
from panbench.models.grid import check_grid, parse_grid
from panbench.models.hf.types import PIPELINE_KEY
from panbench.models.postprocess import PostProcess
from panbench.records.provenance import command_line

if TYPE_CHECKING:
    from panbench.models.protocol import ModelHandle
    from panbench.robustness.corruptions import Corruption


@dataclass
class EvalOptions:
    """Everything ``panbench eval`` passes to :func:`panbench.evaluation.run.evaluate_model`."""

    device: str = "auto"  # auto (cuda when available), cpu, cuda, cuda:1
    batch_size: int = 1  # images per forward pass
    workers: int = 2  # data-loading worker processes
    warmup: int = 1  # batches left out of the timings
    seed: int = 0
    progress: bool = True  # a progress bar on stderr
    resume: bool = True  # reuse per-image results cached by an earlier run
    cache_root: Path = Path("results/cache")  # per-run caches of per-image results
    flush_every: int = 16  # write the cache every N images
    amp: str | None = None  # None (fp32), "bf16" or "fp16"
    cpu_procs: int = 0  # CPU inference processes forked after the model is loaded (0: one per core)
    checkpoint: str | None = None  # the user's weights instead of the zoo's
    trust_checkpoint: bool = False  # allow full unpickling of a checkpoint weights_only loading refuses
    results_dir: Path = Path("results")  # where records and runs.csv go
    command: str | None = None  # the command line, kept in the record's provenance
    postprocess: PostProcess = field(default_factory=PostProcess)
    diagnosis: bool = True  # look for the format mistakes behind a low PQ (panbench.pq.diagnosis)
    cfg_options: dict[str, Any] | None = None  # --cfg-options, merged into the model config before building
    save_predictions: Path | None = None  # --save-predictions DIR: COCO panoptic PNGs + JSON
    limit: int | None = None  # --limit, recorded in the record's selection
    subset: str | None = None  # --subset FILE, recorded in the record's selection
    boundary: bool = False  # also boundary PQ per image (opt-in, docs/analysis.md); part of the cache key
    strict: bool = False  # refuse ground-truth PNG ids that segments_info does not list (default: score them)
    corruption: Corruption | None = None  # --corruption NAME --severity S (docs/robustness.md); part of the key
    fusion: str = "panbench"  # the model's own panoptic fusion: panbench's vectorized one, or mmdet's
    flops_images: int = 1  # images of the GFLOPs pass (panbench.evaluation.flops); 0: none
    ap: bool = True  # COCO mask AP beside PQ where the model gives instances (--no-ap: off); part of the key
    # the user's evaluators (--evaluator): module:Class, path/to/file.py:Class, classes or instances
    # (panbench.evaluators); not part of the key: the cache keeps each one's shares by name@version
    evaluators: tuple[Any, ...] = ()
    # --rules: PQ also under other implementations' rules (panbench.pq.rules); the published numbers' rule is added
    # where it is not panopticapi's. Not part of the key: the cache keeps the rules' shares by their names
    rules: tuple[str, ...] = ()
    # --grid KEY=V1,V2 (docs/eval.md, "Grids"): {key: values}, every setting scored from one forward; None: one run
    grid: dict[str, list[Any]] | None = None

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> EvalOptions:
        """The options of a parsed command line: ``panbench eval``'s, or a command with fewer options
        (``robustness``), which keeps the defaults here for those it lacks."""
        from panbench.robustness.corruptions import corruption_of

        pp = PostProcess()

        def given(name: str, default: Any = None) -> Any:
            value = getattr(args, name, None)  # absent (a command without the option) or not given: the default
            return default if value is None else value

        on_cpu = args.device == "cpu" or (args.device == "auto" and not _cuda_visible())  # forked procs: CPU only
        if on_cpu and (note := cpu_procs_note(args.cpu_procs)):
            print(note, file=sys.stderr)
        return cls(
            device=args.device, batch_size=args.batch_size, workers=args.workers, warmup=args.warmup,
            seed=args.seed, progress=not args.no_progress, resume=not args.no_resume,
            cache_root=Path(args.results) / "cache", flush_every=args.cache_every, amp=args.amp,
            cpu_procs=args.cpu_procs, checkpoint=args.checkpoint, trust_checkpoint=args.trust_checkpoint,
            results_dir=Path(args.results), command=getattr(args, "command_line", None) or command_line(),
            postprocess=PostProcess(given("postprocess", pp.name), given("pp_alpha", pp.alpha),
                                    given("pp_beta", pp.beta), given("pp_conf", pp.conf_thr),
                                    given("pp_keep", pp.keep_thr)),
            cfg_options=with_pipeline(parse_cfg_options(given("cfg_options")), given("pipeline")),
            limit=args.limit, subset=args.subset,
            save_predictions=Path(args.save_predictions) if given("save_predictions") else None,
            boundary=given("boundary", cls.boundary), strict=given("strict", cls.strict),
            fusion=given("fusion", cls.fusion), flops_images=given("flops_images", cls.flops_images),
            ap=not given("no_ap", not cls.ap), diagnosis=not given("no_diagnosis", not cls.diagnosis),
            corruption=corruption_of(given("corruption"), given("severity")),
            evaluators=tuple(given("evaluator", ())), rules=tuple(given("rules", ())),
            grid=parse_grid(given("grid")) if given("grid") else None,
        )


def _cuda_visible() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def cpu_procs_note(procs: int, cores: int | None = None) -> str | None:
    """The warning for ``--cpu-procs`` above the cores this process may use (``cores``; default: its CPU
    affinity; docs/eval.md, "Forked CPU processes"); None under torchrun."""
    if os.environ.get("RANK", "0") != "0" or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if procs <= cores:
        return None
    return (f"panbench: warning: --cpu-procs {procs} is more than the {cores} core{'s' if cores != 1 else ''} this "
            f"process may use: the processes share them (no faster on the CPU, the same numbers); going on")


def parse_cfg_options(items: list[str] | None) -> dict[str, Any] | None:
    """``--cfg-options KEY=VALUE ...`` parsed as mmengine's ``DictAction`` parses them (docs/eval.md, "Config
    overrides"); None when no option is given."""
    if not items:
        return None
    from mmengine.config import DictAction

    out: dict[str, Any] = {}
    for kv in items:
        key, sep, val = kv.partition("=")
        if not sep or not key:
            raise PanbenchError(f"--cfg-options {kv!r}: expected KEY=VALUE (e.g. model.test_cfg.max_per_image=50)")
        try:
            out[key] = DictAction._parse_iterable(val)
        except AssertionError as e:  # mmengine asserts on unbalanced brackets
            raise PanbenchError(f"--cfg-options {kv!r}: {e}; balance the brackets of the value (e.g. "
                                "model.test_cfg.x=[1,2])") from e
        if (big := _beyond_int64(out[key])) is not None:  # torch would wrap it or refuse it with a traceback
            raise PanbenchError(f"--cfg-options {kv!r}: {big} does not fit a 64-bit integer; give at most "
                                f"{INT64_MAX} (a config's integers are torch's int64)")
    return out


INT64_MAX = 2**63 - 1


def with_pipeline(cfg_options: dict[str, Any] | None, pipeline: str | None) -> dict[str, Any] | None:
    """``--cfg-options`` with ``--pipeline`` (an ``hf:`` model's inference) among them; one given twice with two
    values refused in one line."""
    if pipeline is None:
        return cfg_options
    given = (cfg_options or {}).get(PIPELINE_KEY, pipeline)
    if given != pipeline:
        raise PanbenchError(f"--pipeline {pipeline} and --cfg-options {PIPELINE_KEY}={given}: give the pipeline once")
    return {**(cfg_options or {}), PIPELINE_KEY: pipeline}


def _beyond_int64(value: Any) -> int | None:
    """The first integer in ``value`` (a number, or a list, tuple or dict of them) outside int64, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if not -INT64_MAX - 1 <= value <= INT64_MAX else None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((b for v in items if (b := _beyond_int64(v)) is not None), None)


def check_pipeline(specs: list[Any], cfg_options: dict[str, Any] | None) -> None:
    """``--pipeline`` only where every model is an ``hf:`` one (the others have one inference, their framework's);
    else refused in one line."""
    if PIPELINE_KEY in (cfg_options or {}):
        if others := [s.name for s in specs if s.framework != "transformers"]:
            raise PanbenchError(f"--pipeline applies to hf: models (transformers checkpoints), and {others[0]} runs "
                                "its own framework's inference; run it in a command without --pipeline")


def check_models(specs: list[Any], categories: Any, opts: EvalOptions) -> list[ModelHandle]:
    """Before any model runs: each model takes the options given (its handle's ``check_options``), so that
    ``--model all`` does not stop at the fifth model; returns each model's handle, for its run to load it by
    (:meth:`panbench.models.protocol.Family.open`: an mmdet config read once)."""
    check_pipeline(specs, opts.cfg_options)
    handles = [open_model(spec) for spec in specs]
    for handle in handles:
        handle.check_options(categories, opts.cfg_options, opts.postprocess.name)
    if opts.grid:
        kinds = {h.spec.name: h.grid_kind() for h in handles}
        check_grid(opts.grid, kinds, opts.cfg_options, opts.postprocess.name)
    return handles
