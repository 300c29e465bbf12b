"""On the CPU: inference in processes forked after the model is loaded (no second import or
model load; weights shared copy-on-write), each with ``cores / procs`` torch threads and its own
data loading.  The per-category sums are integers, so the metrics equal a single-process run
exactly.  Every process returns what its :class:`~panbench.evaluation.evaluators.RunEvaluators` hold (one
:class:`~panbench.evaluation.evaluators.RunPart`) with its timings, which the parent's evaluators and
:meth:`Timings.merge` add up; each reports its images to the parent's progress bar."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from dataclasses import replace
from typing import Any

from panbench.data.datasets import PanopticDataset
from panbench.evaluation.evaluators import RunEvaluators, RunPart
from panbench.evaluation.inference.loop import Shard, run_inference
from panbench.evaluation.loading import LoadedModel
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.progress import Progress
from panbench.evaluation.timings import Timings


def cpu_procs_for(opts: EvalOptions, device: str, world: int, n_images: int) -> int:
    """How many CPU processes :func:`run_inference_cpu` uses: ``opts.cpu_procs`` or one per core;
    1 on a GPU, under torchrun (ranks already split the work) or off Linux."""
    if device != "cpu" or world > 1 or not sys.platform.startswith("linux"):  # fork after torch: Linux only
        return 1
    n = opts.cpu_procs if opts.cpu_procs > 0 else (os.cpu_count() or 1)
    return max(1, min(n, n_images // 2 or 1))


_FORKED: dict[str, Any] = {}


def _die_with_parent() -> None:
    """Pool initializer: on Linux a forked process is killed when its parent dies (a SIGKILLed
    eval leaves no orphans that keep computing)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _forked_shard(k: int) -> tuple[RunPart, Timings]:
    """Body of a forked process: score shard ``k`` with the model inherited from the parent into evaluators
    of its own (this process's images only); returns what they hold and the timings."""
    import torch

    a = _FORKED
    torch.set_num_threads(a["threads"])
    evaluators = a["evaluators"].empty()
    t = run_inference(a["lm"], a["dataset"], evaluators, a["shards"][k], a["progress"])
    return evaluators.part(), t


def run_inference_cpu(lm: LoadedModel, dataset: PanopticDataset, evaluators: RunEvaluators, shard: Shard,
                      procs: int, progress: Progress | None = None) -> Timings:
    """:func:`run_inference` on the CPU in ``procs`` processes forked after the model is loaded,
    each with ``cores / procs`` torch threads and loading its own data.  On small inputs this
    beats one process with ``cores`` threads, whose intra-op parallelism has little to split."""
    import torch

    todo = shard.todo()
    if procs <= 1 or len(todo) < 2:
        return run_inference(lm, dataset, evaluators, replace(shard, device="cpu"), progress)
    threads_before = torch.get_num_threads()
    threads = max(1, threads_before // procs)
    sub = replace(shard.opts, workers=0)
    shards = [replace(shard, indices=todo[k::procs], device="cpu", opts=sub) for k in range(procs)]
    _FORKED.update(lm=lm, dataset=dataset, evaluators=evaluators, shards=shards, threads=threads, progress=progress)
    t0 = time.perf_counter()
    try:
        with mp.get_context("fork").Pool(procs - 1, initializer=_die_with_parent) as pool:
            pending = [pool.apply_async(_forked_shard, (k,)) for k in range(1, procs)]
            torch.set_num_threads(threads)
            own = run_inference(lm, dataset, evaluators, shards[0], progress)
            parts = [_wait(p, progress) for p in pending]
    finally:
        torch.set_num_threads(threads_before)
        _FORKED.clear()
    total = Timings(**{**own.__dict__, "batches": dict(own.batches),
                       "extra": {**own.extra, "cpu_procs": procs, "threads_per_proc": threads}})
    evaluators.reduce(part for part, _ in parts)
    for _, t in parts:
        total.merge(t)
    total.extra["parallel_wall_s"] = time.perf_counter() - t0
    return total


def _wait(result: Any, progress: Progress | None) -> Any:
    """A forked process's result, the progress bar redrawn meanwhile with the images of every process."""
    while not result.ready():
        result.wait(0.2)
        if progress is not None:
            progress.refresh()
    return result.get()
