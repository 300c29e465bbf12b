"""Where a run executes: the device (choice, seeding, its name in a record), the torchrun ranks (a no-op or the
single-process answer outside torchrun), and out of memory (recognised, the batch retried in halves, a single image
that still does not fit run on the CPU in fp32) with the peak memory.  Imports :mod:`panbench.evaluation.timings`
only of the evaluation."""

from __future__ import annotations

import gc
import itertools
import os
import platform
import random
import re
import resource
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np

from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation.timings import Timings
from panbench.models.protocol import PanopticModel

DEVICE_FORM = re.compile(r"auto|cpu|cuda(:\d+)?")


def pick_device(device: str) -> str:
    """``--device`` checked: ``auto`` (CUDA when visible), ``cpu``, ``cuda`` or ``cuda:k`` of a visible GPU."""
    import torch

    if not DEVICE_FORM.fullmatch(device):
        raise PanbenchError(f"--device {device}: not a device; use auto, cpu, cuda or cuda:K")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if note := unusable_gpu_note(gpu_present(), torch.__version__, torch.version.cuda):
            print(note, file=sys.stderr, flush=True)
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PanbenchError(f"--device {device}: no CUDA GPU is visible; use --device cpu or a CUDA torch")
    if ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise PanbenchError(f"--device {device}: this machine has {torch.cuda.device_count()} visible GPU(s), "
                            "numbered from 0; pick one of them")
    return device


def gpu_present() -> bool:
    """An NVIDIA GPU on this machine, whatever torch says: ``nvidia-smi`` on PATH or ``/dev/nvidia0``."""
    return shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0")


def unusable_gpu_note(present: bool, torch_version: str, torch_cuda: str | None) -> str | None:
    """The one line ``--device auto`` prints when a GPU is present but torch cannot use it (None otherwise)."""
    if not present:
        return None
    why = (f"torch {torch_version} is a CPU build" if not torch_cuda else
           f"torch {torch_version} is built for CUDA {torch_cuda}, which the NVIDIA driver may not support "
           "(nvidia-smi shows the newest CUDA it does)")
    return (f"panbench: an NVIDIA GPU is present but torch cannot use it ({why}): running on the CPU; install the "
            "torch build for your driver (docs/gpu.md), or pass --device cpu")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device_name(device: str, procs: int = 1) -> str:
    """The GPU's name, or the CPU with its torch threads (and forked processes)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    n = max(1, torch.get_num_threads() // max(1, procs))  # threads of each process
    each = f"{n} thread{'s' if n != 1 else ''}"
    return f"cpu ({cpu}, {procs} processes x {each})" if procs > 1 else f"cpu ({cpu}, {each})"


OOM_MARKERS = (
    "out of memory",  # CUDA caching allocator, HIP
    "can't allocate memory",  # DefaultCPUAllocator
    "CUBLAS_STATUS_ALLOC_FAILED",  # cuBLAS could not allocate its workspace
    "CUDNN_STATUS_ALLOC_FAILED",  # cuDNN, older releases
    "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",  # cuDNN could not get the workspace an algorithm needs
)


def is_oom(e: BaseException) -> bool:
    """Out of memory on a GPU, in cuBLAS/cuDNN's workspaces, or a failed CPU allocation."""
    import torch

    if isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    msg = str(e)
    return isinstance(e, RuntimeError) and any(m in msg for m in OOM_MARKERS)


def free_memory(device: str) -> None:
    """Collect garbage (a failed step's traceback forms cycles) and hand cached GPU blocks back, for a retry."""
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def forward_resilient(model: PanopticModel, items: list[dict[str, Any]], device: str, amp: str | None,
                      timings: Timings, dataset: PanopticDataset) -> list[Any]:
    """``model.forward`` on the items' pipeline outputs, surviving out of memory (docs/eval.md, "Out of memory").
    The retry runs after the ``except`` block is left: a live exception holds the failed step's frames."""
    try:
        return model.forward([it["data"] for it in items], device, amp)
    except Exception as e:
        if not is_oom(e):
            raise
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
    free_memory(device)  # the exception and its frames are gone here
    if len(items) > 1:
        timings.oom_splits += 1
        half = len(items) // 2
        return (forward_resilient(model, items[:half], device, amp, timings, dataset)
                + forward_resilient(model, items[half:], device, amp, timings, dataset))
    image_id = dataset.samples[items[0]["index"]].image_id
    if device == "cpu":
        raise PanbenchError(f"image {image_id}: out of memory on the CPU even alone ({reason}); "
                            "free memory or use a smaller model")
    timings.cpu_fallback_images.append(image_id)
    model.to("cpu")
    try:  # fp32: CPU kernels such as mmcv's nms_cpu take float32 only
        return model.forward([it["data"] for it in items], "cpu", None)
    finally:
        model.to(device)
        free_memory(device)


def peak_memory(device: str) -> dict[str, float]:
    """Peak resident CPU memory of this process, of its largest finished child process (forked inference processes,
    data-loading workers; pages shared copy-on-write count in both), and peak GPU memory allocated, in MiB."""
    import torch

    out = {"cpu_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "cpu_children_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    return out


def local_rank() -> int:
    """This process's rank on its node (torchrun's ``LOCAL_RANK``; 0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def backend_for(device: str) -> str:
    """The process-group backend for the ranks' device: NCCL for CUDA, gloo for the CPU (GPU visible or not)."""
    return "nccl" if device.startswith("cuda") else "gloo"


def rank_device(device: str) -> str:
    """The device of this rank under torchrun: ``cuda:LOCAL_RANK`` for CUDA (too few GPUs refused in one line)."""
    import torch

    if not device.startswith("cuda"):
        return device
    n_gpus = torch.cuda.device_count()
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", str(local_rank() + 1)))
    if ":" in device and per_node > 1:
        raise PanbenchError(f"--device {device} under torchrun: every rank would use the same GPU; pass --device cuda "
                            "(rank k uses GPU k of its node)")
    if per_node > n_gpus:
        raise PanbenchError(f"torchrun --nproc-per-node {per_node} with --device cuda, but this node has {n_gpus} "
                            f"GPU(s) visible; use --nproc-per-node {n_gpus} or fewer (or --device cpu)")
    return device if ":" in device else f"cuda:{local_rank()}"


def use_device(device: str) -> None:
    """Make ``device`` the current CUDA device (a no-op on the CPU), so that synchronization, peak-memory counters
    and mmcv's kernels act on the model's GPU; reset its peak memory counter: each record holds its model's peak."""
    import torch

    if device.startswith("cuda"):
        dev = torch.device(device)
        if dev.index is not None:  # a bare "cuda" (one process) means the current device already
            torch.cuda.set_device(dev)
        free_memory(device)
        torch.cuda.reset_peak_memory_stats(dev)


COLLECTIVE_TIMEOUT_MIN = 10  # a collective waits this long for a dead or stuck rank before failing
DOWNLOAD_TIMEOUT_MIN = 120  # the node's ranks wait this long for local rank 0's checkpoint or hub download


def dist_timeouts(env: Mapping[str, str]) -> tuple[timedelta, timedelta]:
    """(the collectives' timeout, short so that a dead rank stops the others; the wait for a download through the
    store), from ``PANBENCH_DIST_TIMEOUT_MIN`` and ``PANBENCH_DOWNLOAD_TIMEOUT_MIN`` (whole minutes)."""
    out = []
    for var, default in (("PANBENCH_DIST_TIMEOUT_MIN", COLLECTIVE_TIMEOUT_MIN),
                         ("PANBENCH_DOWNLOAD_TIMEOUT_MIN", DOWNLOAD_TIMEOUT_MIN)):
        raw = env.get(var, "").strip() or str(default)
        if not raw.isdigit() or int(raw) < 1:
            raise PanbenchError(f"{var}={raw!r}: not a number of minutes; set a whole number >= 1 or unset it")
        out.append(timedelta(minutes=int(raw)))
    return out[0], out[1]


def dist_info(device: str = "cpu") -> tuple[int, int, str]:
    """(rank, world size, this rank's device); initializes torch.distributed under torchrun (:func:`backend_for`)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = rank_device(device)
        if not dist.is_initialized():
            import torch

            timeout, _ = dist_timeouts(os.environ)
            if backend_for(device) == "nccl":
                # NCCL collectives are asynchronous: without blocking wait, a dead peer ends in the watchdog's C++ abort
                # after the timeout; with it, the waiting call raises, and collective() makes that one line
                os.environ.setdefault("TORCH_NCCL_BLOCKING_WAIT", "1")
                torch.cuda.set_device(torch.device(device))
                dist.init_process_group("nccl", device_id=torch.device(device), timeout=timeout)
            else:
                dist.init_process_group("gloo", timeout=timeout)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, device


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@contextmanager
def collective(what: str) -> Iterator[None]:
    """A collective call: when another rank has died, stop with one line instead of a backend traceback."""
    try:
        yield
    except (RuntimeError, OSError) as e:
        if is_oom(e):
            raise
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_initialized() else 0
        raise PanbenchError(f"rank {rank}: {what} failed because another rank stopped (its own one-line error "
                            f"is in its log: {str(e).splitlines()[0][:80] if str(e) else type(e).__name__}); "
                            "fix that error and rerun (cached images are kept)") from e


def _all_reduce(n: int, op: str) -> int:
    """``n`` reduced over the ranks by ``op`` (``MAX``, ``SUM``), on every rank (``n`` outside torchrun)."""
    if not _distributed():
        return n
    import torch
    import torch.distributed as dist

    # collective tensors live on the current GPU under NCCL, else on the CPU
    on = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([n], dtype=torch.int64, device=on)
    with collective("waiting for the other ranks"):
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
    return int(t.item())


def dist_any(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (also a barrier); ``flag`` alone outside torchrun."""
    return bool(_all_reduce(int(flag), "MAX"))


_download_calls = itertools.count()


def download_wait(failed: bool) -> bool:
    """For a download made by local rank 0 of each node: it posts whether it failed in the process group's store,
    where the node's other ranks wait for it (:func:`dist_timeouts`), then every rank meets in :func:`dist_any`.
    Returns whether a download failed; every rank calls it in the same order (the key counts the calls)."""
    if not _distributed():
        return failed
    import torch.distributed as dist
    from torch.distributed import distributed_c10d

    store = distributed_c10d._get_default_store()
    key = f"panbench/download/{dist.get_rank() - local_rank()}/{next(_download_calls)}"
    if local_rank() == 0:
        store.set(key, "1" if failed else "0")
        # then a short collective with the others, who arrive once they have read the post: rank 0, which
        # holds the store, must not stop (after a failed download) before they have read it
        return dist_any(failed)
    _, wait = dist_timeouts(os.environ)
    try:
        store.wait([key], wait)
    except (RuntimeError, OSError) as e:  # the store's timeout, or the store itself gone
        minutes = int(wait.total_seconds() // 60)
        raise PanbenchError(f"rank {dist.get_rank()}: local rank 0's download did not finish within {minutes} min "
                            f"({str(e).splitlines()[0][:80] if str(e) else type(e).__name__}); download it once "
                            "with a single process (panbench eval --model X --limit 1) or raise "
                            "PANBENCH_DOWNLOAD_TIMEOUT_MIN, and rerun") from e
    return dist_any(store.get(key) == b"1")


def dist_sum(n: int) -> int:
    """The sum of ``n`` over the ranks, on every rank (``n`` outside torchrun)."""
    return _all_reduce(n, "SUM")


def barrier() -> None:
    """``dist.barrier`` that fails in one line when another rank died (a no-op outside torchrun)."""
    if _distributed():
        dist_any(False)


def dist_others(obj: Any, what: str) -> list[Any]:
    """Every other rank's ``obj`` (picklable), in rank order, on every rank (``[]`` outside torchrun)."""
    if not _distributed():
        return []
    import torch.distributed as dist

    return [p for r, p in enumerate(dist_gather(obj, what)) if r != dist.get_rank()]


def dist_gather(obj: Any, what: str = "waiting for the other ranks") -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank (``[obj]`` outside torchrun)."""
    if not _distributed():
        return [obj]
    import torch.distributed as dist

    parts: list[Any] = [None] * dist.get_world_size()
    with collective(what):
        dist.all_gather_object(parts, obj)
    return parts


def reduce_timings(t: Timings, memory: dict[str, float]) -> tuple[Timings, dict[str, float]]:
    """Timings (:meth:`Timings.merge`) and peak memory (the maximum) of the whole torchrun job, with ``world_size``."""
    if not _distributed():
        return t, memory
    others = dist_others((t, memory), "collecting the timings of the ranks")
    out = replace(t, extra={**t.extra, "world_size": len(others) + 1})
    for other, _ in others:
        out.merge(other)
    return out, {k: float(max(m[k] for m in [memory, *(m for _, m in others)])) for k in sorted(memory)}


def abort_distributed() -> None:
    """After a rank's error: tear its process group down without waiting (the others' collective then fails)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    from torch.distributed import distributed_c10d as c10d

    abort = getattr(c10d, "_abort_process_group", None)
    with suppress(Exception):  # tearing down after an error: never mask the error itself
        abort() if abort is not None else dist.destroy_process_group()
