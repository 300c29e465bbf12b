"""The options of one ``panbench eval`` run, built once from the command line
(as lm-evaluation-harness's ``EvaluatorConfig.from_cli``) and passed whole to the run."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from panbench.models.postprocess import PostProcess


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
    boundary: bool = False  # also boundary PQ per image (opt-in, docs/analysis.md); part of the cache key

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> EvalOptions:
        """The options of ``panbench eval``'s parsed arguments."""
        return cls(
            device=args.device, batch_size=args.batch_size, workers=args.workers, warmup=args.warmup,
            seed=args.seed, progress=not args.no_progress, resume=not args.no_resume,
            cache_root=Path(args.results) / "cache", flush_every=args.cache_every, amp=args.amp,
            cpu_procs=args.cpu_procs, checkpoint=args.checkpoint, trust_checkpoint=args.trust_checkpoint,
            results_dir=Path(args.results), command=" ".join(sys.argv),
            postprocess=PostProcess(args.postprocess, args.pp_alpha, args.pp_beta, args.pp_conf, args.pp_keep),
            boundary=getattr(args, "boundary", False),
        )
