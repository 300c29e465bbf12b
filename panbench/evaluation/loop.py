"""The evaluation loop: mmdet inference feeding the streaming PQ evaluator.

* Data loading (image decode, resize, ground-truth PNG decode) runs in DataLoader workers.
* The main thread runs the model; a scoring thread matches segments while the next batch runs.
* Timings exclude warm-up batches, synchronize CUDA before reading clocks, and report data,
  forward, post-processing and scoring time apart (as detectron2's ``inference_on_dataset``).
* Per-image statistics go to a cache under the run directory as they are made, so an
  interrupted run resumes where it stopped; the cache key hashes config, checkpoint, dataset
  and post-processing, so a cache of another setting is never reused.
* Under ``torchrun`` the images are sharded across ranks and the per-category sums are
  all-reduced (exact: they are integers), rank 0 writing the record.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from panbench.data.datasets import PanopticDataset
from panbench.errors import InputError, PanbenchError
from panbench.evaluation.cache import StatsCache
from panbench.pq.coco_format import read_ids
from panbench.pq.evaluator import PanopticEvaluator, evaluate_image
from panbench.pq.matching import ImageStats, PQStats

INSTANCE_OFFSET = 1000  # mmdet's panoptic label encoding: label + instance * INSTANCE_OFFSET


@dataclass
class EvalOptions:
    device: str = "auto"
    batch_size: int = 1
    workers: int = 2
    warmup: int = 1
    seed: int = 0
    progress: bool = True
    resume: bool = True
    cache_root: Path = Path("results/cache")
    flush_every: int = 16
    amp: str | None = None  # None (fp32), "bf16" or "fp16"
    cpu_procs: int = 0  # CPU inference processes forked after the model is loaded (0: one per core)


@dataclass
class Timings:
    data_s: float = 0.0
    forward_s: float = 0.0
    postprocess_s: float = 0.0
    scoring_s: float = 0.0
    wall_s: float = 0.0
    timed_images: int = 0
    warmup_images: int = 0
    oom_splits: int = 0
    cpu_fallback_images: list = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        n = max(self.timed_images, 1)
        return {
            "data_s": self.data_s, "forward_s": self.forward_s, "postprocess_s": self.postprocess_s,
            "scoring_s": self.scoring_s, "wall_s": self.wall_s, "timed_images": self.timed_images,
            "warmup_images": self.warmup_images,
            "images_per_s": self.timed_images / self.wall_s if self.wall_s > 0 else 0.0,
            "ms_per_image": 1000 * self.wall_s / n, "oom_splits": self.oom_splits,
            "cpu_fallback_images": list(self.cpu_fallback_images), **self.extra,
        }


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PanbenchError(f"--device {device}: no CUDA GPU is visible; use --device cpu or a CUDA torch")
    return device


def panoptic_to_segments(pan: Any, num_classes: int, label2cat: list[int]) -> tuple[np.ndarray, list[dict]]:
    """mmdet's panoptic map (label + instance * 1000, VOID = num_classes) to an id map and
    segments_info with compact ids 1..n (0 = VOID)."""
    import torch

    if isinstance(pan, torch.Tensor):
        u, inv = torch.unique(pan, return_inverse=True)
        u, inv = u.cpu().numpy(), inv.cpu().numpy()
    else:
        u, inv = np.unique(pan, return_inverse=True)
        inv = inv.reshape(pan.shape)
    labels = u % INSTANCE_OFFSET
    keep = labels != num_classes
    new_id = np.zeros(len(u), np.uint32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    segs = [{"id": int(new_id[k]), "category_id": int(label2cat[int(labels[k])]), "iscrowd": 0}
            for k in np.nonzero(keep)[0]]
    return new_id[inv], segs


class _Items:
    """DataLoader dataset: the model's test pipeline on the image, and the decoded ground truth."""

    def __init__(self, dataset: PanopticDataset, indices: list[int], pipeline: Any) -> None:
        self.dataset, self.indices, self.pipeline = dataset, indices, pipeline

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, Any]:
        i = self.indices[k]
        s = self.dataset.samples[i]
        try:
            if not s.image_path.is_file():
                raise InputError(f"{s.image_path}: image {s.image_id} not found; re-download the dataset")
            try:
                data = self.pipeline({"img_path": str(s.image_path), "img_id": s.image_id})
            except Exception as e:
                raise InputError(f"{s.image_path}: image {s.image_id} cannot be decoded ({type(e).__name__}); "
                                 "the file is corrupt or truncated: re-download it") from e
            gt_ids = read_ids(s.gt_png, f"image {s.image_id} (ground truth)")
            if gt_ids.shape != (s.height, s.width):
                raise InputError(f"{s.gt_png}: ground truth is {gt_ids.shape[1]}x{gt_ids.shape[0]}, the annotation "
                                 f"says {s.width}x{s.height}; re-download the annotations")
            return {"index": i, "data": data, "gt_ids": gt_ids, "error": None}
        except InputError as e:  # travels back as data: worker exceptions would lose the one-line message
            return {"index": i, "data": None, "gt_ids": None, "error": str(e)}


def _collate(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch


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


def forward(model: Any, items: list[dict[str, Any]], device: str, amp: str | None) -> list[Any]:
    """One forward pass of mmdet's ``test_step`` (data preprocessing, model, panoptic fusion).
    Under ``amp`` the mmcv ops that have no reduced-precision kernel run in fp32 (panbench.models.amp)."""
    import torch
    from mmengine.dataset import pseudo_collate

    data = pseudo_collate([it["data"] for it in items])
    if amp is None:
        return model.test_step(data)
    if not getattr(model, "_panbench_fp32_ops", False):  # once per model
        from panbench.models.amp import keep_ops_fp32

        keep_ops_fp32(model)
        model._panbench_fp32_ops = True
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    try:
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
            return model.test_step(data)
    except RuntimeError as e:
        if "expected scalar type" in str(e) or "not implemented for" in str(e):
            raise PanbenchError(f"--amp {amp}: an op of this model does not run in reduced precision on {device} "
                                f"({str(e).splitlines()[0][:100]}); run without --amp (`panbench doctor` lists "
                                "the modes each architecture runs)") from e
        raise


def forward_resilient(model: Any, items: list[dict[str, Any]], device: str, amp: str | None,
                      timings: Timings, dataset: PanopticDataset) -> list[Any]:
    """``forward`` that survives running out of memory: the batch is split in halves, and a single
    image that still does not fit runs on the CPU in fp32; both are recorded in ``timings``.

    The retry runs after the ``except`` block has been left: a live exception holds the failed
    step's frames, and with them its activations, so memory could not be freed inside it."""
    try:
        return forward(model, items, device, amp)
    except Exception as e:
        if not is_oom(e):
            raise
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
    free_memory(device)  # the exception and its frames are gone now
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
        return forward(model, items, "cpu", None)
    finally:
        model.to(device)
        free_memory(device)


@contextmanager
def _timed_method(obj: Any, name: str, sink: list[float], sync: Any) -> Iterator[None]:
    """Time calls of ``obj.name`` (used for the panoptic fusion head: post-processing)."""
    if obj is None or not hasattr(obj, name):
        yield
        return
    orig = getattr(obj, name)

    def wrapper(*a: Any, **k: Any) -> Any:
        sync()
        t = time.perf_counter()
        out = orig(*a, **k)
        sync()
        sink.append(time.perf_counter() - t)
        return out

    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        delattr(obj, name) if name in vars(obj) else None


class _Scorer(threading.Thread):
    """Scores images from a queue so that matching overlaps the next forward pass."""

    def __init__(self, evaluator: PanopticEvaluator, dataset: PanopticDataset, cache: StatsCache | None) -> None:
        super().__init__(daemon=True)
        self.q: queue.Queue = queue.Queue(maxsize=64)
        self.evaluator, self.dataset, self.cache = evaluator, dataset, cache
        self.busy_s = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            i, gt_ids, pred_ids, segs = item
            t = time.perf_counter()
            try:
                s = self.dataset.samples[i]
                st = evaluate_image(self.evaluator.categories, gt_ids, s.gt_ann["segments_info"], pred_ids, segs,
                                    f"image {s.image_id}")
                self.evaluator.stats.add_image(st)
                if self.cache is not None:
                    self.cache.add(i, st)
            except BaseException as e:  # re-raised in the main thread
                self.error = e
            self.busy_s += time.perf_counter() - t


def run_inference(
    model: Any,
    pipeline: Any,
    dataset: PanopticDataset,
    label2cat: list[int],
    num_classes: int,
    opts: EvalOptions,
    evaluator: PanopticEvaluator,
    cache: StatsCache | None,
    indices: list[int],
    device: str,
) -> Timings:
    """Run the model over ``indices`` of the dataset, feeding ``evaluator``; returns timings."""
    import torch

    sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
    timings = Timings()
    todo = [i for i in indices if cache is None or i not in cache.done]
    if not todo:
        return timings
    loader = torch.utils.data.DataLoader(
        _Items(dataset, todo, pipeline), batch_size=opts.batch_size, shuffle=False, num_workers=opts.workers,
        collate_fn=_collate, persistent_workers=False, prefetch_factor=4 if opts.workers > 0 else None,
    )
    scorer = _Scorer(evaluator, dataset, cache)
    scorer.start()
    fusion_times: list[float] = []
    bar = _progress(len(todo), opts.progress, dataset.name)
    n_batches = 0
    t_start = time.perf_counter()
    try:
        with torch.inference_mode(), _timed_method(getattr(model, "panoptic_fusion_head", None), "predict",
                                                    fusion_times, sync):
            t_data = time.perf_counter()
            for batch in loader:
                for item in batch:
                    if item["error"]:
                        raise InputError(item["error"])
                data_dt = time.perf_counter() - t_data
                sync()
                t0 = time.perf_counter()
                n_fusion = len(fusion_times)
                outputs = forward_resilient(model, batch, device, opts.amp, timings, dataset)
                sync()
                t1 = time.perf_counter()
                converted = []
                for out in outputs:
                    pan = out.pred_panoptic_seg.sem_seg[0]
                    converted.append(panoptic_to_segments(pan, num_classes, label2cat))
                t2 = time.perf_counter()
                if scorer.error is not None:
                    raise scorer.error
                for it, (pred_ids, segs) in zip(batch, converted):
                    scorer.q.put((it["index"], it["gt_ids"], pred_ids, segs))
                n_batches += 1
                fusion = sum(fusion_times[n_fusion:])
                if n_batches > opts.warmup:
                    timings.data_s += data_dt
                    timings.forward_s += (t1 - t0) - fusion
                    timings.postprocess_s += fusion + (t2 - t1)
                    timings.timed_images += len(batch)
                else:
                    timings.warmup_images += len(batch)
                    t_start = time.perf_counter()  # wall clock of the timed part starts after warm-up
                bar(len(batch))
                t_data = time.perf_counter()
    finally:
        scorer.q.put(None)
        scorer.join()
        bar(0, close=True)
        if cache is not None:
            cache.flush()
    if scorer.error is not None:
        raise scorer.error
    timings.wall_s = time.perf_counter() - t_start if timings.timed_images else 0.0
    timings.scoring_s = scorer.busy_s
    return timings


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


def _forked_shard(k: int) -> tuple[np.ndarray, Timings]:
    """Body of a forked process: score shard ``k`` with the model inherited from the parent."""
    import torch

    a = _FORKED
    torch.set_num_threads(a["threads"])
    ev = PanopticEvaluator(a["evaluator"].categories)
    t = run_inference(a["model"], a["pipeline"], a["dataset"], a["label2cat"], a["num_classes"], a["opts"], ev,
                      a["cache"], a["shards"][k], "cpu")
    return ev.stats.to_array(), t


def run_inference_cpu(
    model: Any,
    pipeline: Any,
    dataset: PanopticDataset,
    label2cat: list[int],
    num_classes: int,
    opts: EvalOptions,
    evaluator: PanopticEvaluator,
    cache: StatsCache | None,
    indices: list[int],
    procs: int,
) -> Timings:
    """:func:`run_inference` on the CPU in ``procs`` processes forked after the model is loaded
    (no second import or model load; weights shared copy-on-write), each with ``cores / procs``
    torch threads and loading its own data.  On small inputs this beats one process with
    ``cores`` threads, whose intra-op parallelism has little to split.  The per-category sums
    are integers, so the metrics equal a single-process run exactly."""
    import torch

    todo = [i for i in indices if cache is None or i not in cache.done]
    if procs <= 1 or len(todo) < 2:
        return run_inference(model, pipeline, dataset, label2cat, num_classes, opts, evaluator, cache, indices, "cpu")
    threads_before = torch.get_num_threads()
    threads = max(1, threads_before // procs)
    shards = [todo[k::procs] for k in range(procs)]
    sub = replace(opts, workers=0)
    _FORKED.update(model=model, pipeline=pipeline, dataset=dataset, label2cat=label2cat, num_classes=num_classes,
                   opts=replace(sub, progress=False), evaluator=evaluator, cache=cache, shards=shards,
                   threads=threads)
    t0 = time.perf_counter()
    try:
        with mp.get_context("fork").Pool(procs - 1, initializer=_die_with_parent) as pool:
            pending = [pool.apply_async(_forked_shard, (k,)) for k in range(1, procs)]
            torch.set_num_threads(threads)
            own = run_inference(model, pipeline, dataset, label2cat, num_classes, sub, evaluator, cache, shards[0],
                                "cpu")
            parts = [p.get() for p in pending]
    finally:
        torch.set_num_threads(threads_before)
        _FORKED.clear()
    total = Timings(**{**own.__dict__, "extra": {**own.extra, "cpu_procs": procs, "threads_per_proc": threads}})
    for arr, t in parts:
        evaluator.merge(PQStats.from_array(arr))
        for f in ("data_s", "forward_s", "postprocess_s", "scoring_s", "timed_images", "warmup_images"):
            setattr(total, f, getattr(total, f) + getattr(t, f))
        total.wall_s = max(total.wall_s, t.wall_s)
    total.extra["parallel_wall_s"] = time.perf_counter() - t0
    return total


def _progress(total: int, enabled: bool, desc: str) -> Any:
    """A tqdm progress bar with ETA (a no-op when disabled)."""
    if not enabled:
        return lambda n, close=False: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=f"eval {desc}", unit="img", dynamic_ncols=True, leave=False)

    def update(n: int, close: bool = False) -> None:
        bar.update(n)
        if close:
            bar.close()

    return update


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


def precision_info(device: str, amp: str | None) -> dict[str, Any]:
    """The arithmetic the run used: the autocast mode, and for fp32 matmuls and convolutions on
    a GPU whether TF32 (10-bit mantissa) was allowed; PyTorch's defaults allow it for cuDNN
    convolutions on Ampere and newer GPUs, so "fp32" alone would overstate the precision."""
    import torch

    out: dict[str, Any] = {"autocast": amp or "off",
                           "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device.startswith("cuda"):
        out["cuda_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        out["cudnn_conv_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        major, _ = torch.cuda.get_device_capability(torch.device(device))
        tf32_hw = major >= 8  # TF32 tensor cores: Ampere (sm_80) and newer
        out["matmul"] = "tf32" if tf32_hw and out["cuda_matmul_allow_tf32"] else "fp32"
        out["conv"] = "tf32" if tf32_hw and out["cudnn_conv_allow_tf32"] else "fp32"
    else:
        out["matmul"] = out["conv"] = "fp32"
    if amp:
        out["matmul"] = out["conv"] = amp
    return out


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def local_rank() -> int:
    """This process's rank on its node (torchrun's ``LOCAL_RANK``; 0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def backend_for(device: str) -> str:
    """The process-group backend for the device the ranks compute on: NCCL for CUDA tensors,
    gloo for CPU tensors (whether or not a GPU is visible)."""
    return "nccl" if device.startswith("cuda") else "gloo"


def rank_device(device: str) -> str:
    """The device of this rank under torchrun: ``cuda:LOCAL_RANK`` for CUDA, refused in one line
    when the node runs more ranks than it has GPUs or names one GPU for every rank."""
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
    """Make ``device`` the current CUDA device (a no-op on the CPU), so that synchronization,
    peak-memory counters and mmcv's kernels all act on the GPU the model is on; reset its peak
    memory counter so that each model's record holds its own peak."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        free_memory(device)
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def dist_info(device: str = "cpu") -> tuple[int, int, str]:
    """(rank, world size, this rank's device); initializes torch.distributed when started by
    torchrun, with the backend that fits ``device`` (gloo for ``cpu``, NCCL bound to
    ``cuda:LOCAL_RANK`` for ``cuda``)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        device = rank_device(device)
        if not dist.is_initialized():
            import torch

            if device.startswith("cuda"):
                torch.cuda.set_device(torch.device(device))
                dist.init_process_group("nccl", device_id=torch.device(device))
            else:
                dist.init_process_group("gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, device


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _reduce_device() -> str:
    """Where collective tensors live: the current GPU under NCCL, else the CPU."""
    import torch
    import torch.distributed as dist

    return f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"


@contextmanager
def collective(what: str) -> Iterator[None]:
    """A collective call: when another rank has died (its socket closed, the group aborted),
    stop with one line instead of a backend traceback."""
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


def dist_any(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (also a barrier); ``flag`` alone
    outside torchrun."""
    if not _distributed():
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([int(flag)], dtype=torch.int64, device=_reduce_device())
    with collective("waiting for the other ranks"):
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    """``dist.barrier`` that fails in one line when another rank died (a no-op outside torchrun)."""
    if _distributed():
        dist_any(False)


def all_reduce_stats(evaluator: PanopticEvaluator, device: str) -> None:
    """Sum the per-category statistics of every rank into every rank's evaluator (exact integers)."""
    if not _distributed():
        return
    import torch
    import torch.distributed as dist

    from panbench.pq.matching import PQStats

    t = torch.from_numpy(evaluator.stats.to_array()).to(_reduce_device())
    with collective("summing the statistics of the ranks"):
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    evaluator.stats = PQStats.from_array(t.cpu().numpy())


SUMMED_TIMINGS = ("data_s", "forward_s", "postprocess_s", "scoring_s", "timed_images", "warmup_images", "oom_splits")


def reduce_timings(t: Timings, memory: dict[str, float]) -> tuple[Timings, dict[str, float]]:
    """Timings and peak memory of the whole torchrun job: timed images and per-stage seconds
    summed over the ranks (so per-image times stay per image), wall time and peak memory the
    maximum over the ranks, the CPU-fallback image ids of all ranks; ``world_size`` beside them.
    Unchanged outside torchrun."""
    if not _distributed():
        return t, memory
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    dev = _reduce_device()
    summed = torch.tensor([float(getattr(t, f)) for f in SUMMED_TIMINGS], dtype=torch.float64, device=dev)
    keys = sorted(memory)
    maxed = torch.tensor([t.wall_s] + [memory[k] for k in keys], dtype=torch.float64, device=dev)
    fallback: list[Any] = [None] * world
    with collective("collecting the timings of the ranks"):
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        dist.all_reduce(maxed, op=dist.ReduceOp.MAX)
        dist.all_gather_object(fallback, list(t.cpu_fallback_images))
    out = replace(t, cpu_fallback_images=sorted(i for part in fallback for i in part),
                  extra={**t.extra, "world_size": world})
    for f, v in zip(SUMMED_TIMINGS, summed.tolist()):
        setattr(out, f, int(v) if f in ("timed_images", "warmup_images", "oom_splits") else v)
    out.wall_s = maxed[0].item()
    return out, {k: v for k, v in zip(keys, maxed[1:].tolist())}


def abort_distributed() -> None:
    """After a rank's error: tear its process group down without waiting for the other ranks
    (a collective that they wait in then fails instead of hanging until the backend's timeout)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    from torch.distributed import distributed_c10d as c10d

    abort = getattr(c10d, "_abort_process_group", None)
    try:
        abort() if abort is not None else dist.destroy_process_group()
    except Exception:  # tearing down after an error: never mask the error itself
        pass


__all__ = ["EvalOptions", "ImageStats", "Timings", "run_inference", "panoptic_to_segments"]
