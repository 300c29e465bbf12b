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


def is_oom(e: BaseException) -> bool:
    """Out of memory on a GPU (or a failed CPU allocation)."""
    import torch

    if isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    msg = str(e)
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def forward(model: Any, items: list[dict[str, Any]], device: str, amp: str | None) -> list[Any]:
    """One forward pass of mmdet's ``test_step`` (data preprocessing, model, panoptic fusion)."""
    import torch
    from mmengine.dataset import pseudo_collate

    data = pseudo_collate([it["data"] for it in items])
    if amp is None:
        return model.test_step(data)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    try:
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
            return model.test_step(data)
    except RuntimeError as e:
        if "expected scalar type" in str(e) or "not implemented for" in str(e):
            raise PanbenchError(f"--amp {amp}: an op of this model does not run in reduced precision on {device} "
                                f"({str(e).splitlines()[0][:100]}); run without --amp") from e
        raise


def forward_resilient(model: Any, items: list[dict[str, Any]], device: str, amp: str | None,
                      timings: Timings, dataset: PanopticDataset) -> list[Any]:
    """``forward`` that survives running out of memory: the batch is split in halves, and a single
    image that still does not fit runs on the CPU; both are recorded in ``timings``."""
    import torch

    try:
        return forward(model, items, device, amp)
    except Exception as e:
        if not is_oom(e):
            raise
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        if len(items) > 1:
            timings.oom_splits += 1
            half = len(items) // 2
            return (forward_resilient(model, items[:half], device, amp, timings, dataset)
                    + forward_resilient(model, items[half:], device, amp, timings, dataset))
        image_id = dataset.samples[items[0]["index"]].image_id
        if device == "cpu":
            raise PanbenchError(f"image {image_id}: out of memory on the CPU even alone ({str(e)[:120]}); "
                                "free memory or use a smaller model") from e
        timings.cpu_fallback_images.append(image_id)
        model.to("cpu")
        try:
            return forward(model, items, "cpu", amp)
        finally:
            model.to(device)


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

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
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
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def dist_info() -> tuple[int, int]:
    """(rank, world size); initializes torch.distributed when started by torchrun."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_stats(evaluator: PanopticEvaluator, device: str) -> None:
    """Sum the per-category statistics of every rank into every rank's evaluator (exact integers)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    from panbench.pq.matching import PQStats

    dev = device if dist.get_backend() == "nccl" else "cpu"
    t = torch.from_numpy(evaluator.stats.to_array()).to(dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    evaluator.stats = PQStats.from_array(t.cpu().numpy())


__all__ = ["EvalOptions", "ImageStats", "Timings", "run_inference", "panoptic_to_segments"]
