"""Out of memory during inference: recognise it, free what the failed step held, and retry
(the batch split in halves; a single image that still does not fit runs on the CPU in fp32) through the
model family's ``forward`` (:class:`panbench.models.protocol.PanopticModel`).
Also the peak memory a run reports."""

from __future__ import annotations

import resource
from typing import Any

from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation.timings import Timings
from panbench.models.protocol import PanopticModel

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
    """Collect garbage (tracebacks of a failed step form reference cycles) and hand cached GPU
    blocks back, so that a retry finds the memory the failed attempt held."""
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def forward_resilient(model: PanopticModel, items: list[dict[str, Any]], device: str, amp: str | None,
                      timings: Timings, dataset: PanopticDataset) -> list[Any]:
    """``model.forward`` on the items' pipeline outputs (``item["data"]``), surviving out of memory: the batch
    is split in halves, and a single image that still does not fit runs on the CPU in fp32; both are
    recorded in ``timings``.

    The retry runs after the ``except`` block has been left: a live exception holds the failed
    step's frames, and with them its activations, so memory could not be freed inside it."""
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
    """Peak resident CPU memory of this process, of its largest finished child process (forked
    inference processes, data-loading workers; pages shared copy-on-write count in both), and
    peak GPU memory allocated, in MiB."""
    import torch

    out = {"cpu_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "cpu_children_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    return out
