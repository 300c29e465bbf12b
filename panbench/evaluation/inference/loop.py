"""The inference loop of one process: mmdet inference feeding the streaming PQ evaluator
(as detectron2's ``inference_on_dataset(model, data_loader, evaluator)``).

* Data loading (image decode, resize, ground-truth PNG decode) runs in DataLoader workers.
* The main thread runs the model; a scoring thread matches segments while the next batch runs.
* Timings exclude warm-up batches, synchronize CUDA before reading clocks, and report data,
  forward, post-processing and scoring time apart (:mod:`panbench.evaluation.timings`).
* Each scored image goes to the run's :class:`~panbench.evaluation.sink.ImageSink` (PQ sums,
  match, resume-cache write-through) as it is made.
* Out of memory is survived by :func:`panbench.evaluation.runtime.memory.forward_resilient`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from panbench.data.datasets import PanopticDataset
from panbench.errors import InputError
from panbench.evaluation.loading import LoadedModel
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.progress import Progress
from panbench.evaluation.runtime.memory import forward_resilient
from panbench.evaluation.sink import ImageSink
from panbench.evaluation.storage.predictions import PredictionWriter
from panbench.evaluation.timings import Timings
from panbench.pq.png import read_ids


@dataclass(frozen=True)
class Shard:
    """The images one process runs and how: dataset indices, device, options, the indices whose result
    the run already holds (resumed from the cache), where predictions are saved."""

    indices: list[int]
    device: str
    opts: EvalOptions
    done: frozenset[int] = frozenset()  # scored already (resumed from the cache): not run again
    predictions: PredictionWriter | None = None  # --save-predictions: saves each image's prediction
    scored: bool = True  # False for images without ground truth (--images): predictions only

    def todo(self) -> list[int]:
        """The indices to run: not in the cache yet, or whose prediction is to be saved and is not."""
        return [i for i in self.indices if self._needs(i)]

    def _needs(self, i: int) -> bool:
        if self.predictions is not None and i not in self.predictions.saved:
            return True
        return self.scored and i not in self.done


class Items:
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
            corrupt_s = data.pop("corrupt_s", None) if isinstance(data, dict) else None  # --corruption's cost
            if s.gt_png is None:  # --images: no ground truth
                return {"index": i, "data": data, "gt_ids": None, "error": None, "corrupt_s": corrupt_s}
            if not s.gt_png.is_file():
                raise InputError(f"{s.gt_png}: ground truth of image {s.image_id} not found; re-download the dataset")
            gt_ids = read_ids(s.gt_png, f"image {s.image_id} (ground truth)")
            if gt_ids.shape != (s.height, s.width):
                raise InputError(f"{s.gt_png}: ground truth is {gt_ids.shape[1]}x{gt_ids.shape[0]}, the annotation "
                                 f"says {s.width}x{s.height}; re-download the annotations")
            return {"index": i, "data": data, "gt_ids": gt_ids, "error": None, "corrupt_s": corrupt_s}
        except InputError as e:  # travels back as data: worker exceptions would lose the one-line message
            return {"index": i, "data": None, "gt_ids": None, "error": str(e)}


def _collate(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch


def waiting_images(size: int) -> int:
    """How many loaded images may wait for partners of their shape at batch size ``size``: 8 batches, at most 32
    images (at COCO's size about 12 MB each as float32, 3 MB as mmdet's uint8), never fewer than one batch."""
    return max(size, min(8 * size, 32))


def same_shape_batches(items: Iterable[list[dict[str, Any]]], size: int, key: Callable[[Any], Hashable],
                       hold: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """Loaded items regrouped into batches of up to ``size`` images of one ``key`` (the family's
    :meth:`~panbench.models.protocol.PanopticModel.batch_key`: the padded input shape), so that each image gets
    in its batch exactly the input it gets alone and ``--batch-size`` changes no prediction.

    A batch leaves as soon as it is full; at most ``hold`` loaded images wait for a partner (default
    :func:`waiting_images`), past that the oldest partial batch runs as it is; the rest run at the end, in the
    order their first image came.  An item that failed to load (``error``) runs alone at once (it raises)."""
    if size <= 1:
        yield from ([it] for group in items for it in group)
        return
    hold = waiting_images(size) if hold is None else hold
    waiting: dict[Hashable, list[dict[str, Any]]] = {}  # insertion order = order of each group's first image
    held = 0
    for group in items:
        for it in group:
            if it["error"]:
                yield [it]
                continue
            k = key(it["data"])
            bucket = waiting.setdefault(k, [])
            bucket.append(it)
            held += 1
            if len(bucket) == size:
                held -= len(waiting.pop(k))
                yield bucket
            elif held > hold:
                oldest = next(iter(waiting))
                held -= len(waiting[oldest])
                yield waiting.pop(oldest)
    yield from waiting.values()


class _Scorer(threading.Thread):
    """Scores images from a queue so that matching overlaps the next forward pass."""

    def __init__(self, sink: ImageSink, dataset: PanopticDataset, predictions: PredictionWriter | None = None) -> None:
        super().__init__(daemon=True)
        self.q: queue.Queue = queue.Queue(maxsize=64)
        self.sink, self.dataset = sink, dataset
        self.predictions = predictions
        self.busy_s = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            i, gt_ids, pred_ids, segs, instances, semantic = item
            s = self.dataset.samples[i]
            try:
                if self.predictions is not None:
                    self.predictions.write(s, pred_ids, segs)
                t = time.perf_counter()
                if gt_ids is not None:
                    self.sink.score(i, gt_ids, s.gt_ann["segments_info"], pred_ids, segs, f"image {s.image_id}",
                                    s.image_id, instances, semantic)
                self.busy_s += time.perf_counter() - t
            except BaseException as e:  # re-raised in the main thread
                self.error = e


def run_inference(lm: LoadedModel, dataset: PanopticDataset, sink: ImageSink, shard: Shard,
                  progress: Progress | None = None) -> Timings:
    """Run the model over the images of ``shard`` still to run, feeding ``sink``, counting them on
    ``progress``; returns timings."""
    import torch

    device, opts = shard.device, shard.opts
    sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
    timings = Timings()
    todo = shard.todo()
    if not todo:
        return timings
    pipeline = lm.pipeline
    if opts.corruption is not None:  # corrupted in the workers, after the image is loaded
        from panbench.robustness.pipeline import CorruptedPipeline

        pipeline = CorruptedPipeline(lm.family, opts.corruption)
    items: Any = Items(dataset, todo, pipeline)  # a map-style dataset (__len__, __getitem__)
    # images load one by one and meet in batches of one padded shape (same_shape_batches)
    loader: Any = torch.utils.data.DataLoader(
        items, batch_size=1, shuffle=False, num_workers=opts.workers,
        collate_fn=_collate, persistent_workers=False,
        prefetch_factor=4 * opts.batch_size if opts.workers > 0 else None,
    )
    scorer = _Scorer(sink, dataset, shard.predictions)
    scorer.start()
    one = _Pass(lm, dataset, shard, scorer, timings, sync, progress)
    try:
        with torch.inference_mode(), lm.family.timed_fusion(one.fusion_times, sync):
            t_start = one.batches(same_shape_batches(loader, opts.batch_size, lm.family.batch_key))
    finally:
        scorer.q.put(None)
        scorer.join()
        sink.flush()
    if scorer.error is not None:
        raise scorer.error
    timings.wall_s = time.perf_counter() - t_start if timings.timed_images else 0.0
    timings.scoring_s = scorer.busy_s
    return timings


class _Pass:
    """One process's pass over its batches: the model, the scoring thread, the clocks and the timings it adds to."""

    def __init__(self, lm: LoadedModel, dataset: PanopticDataset, shard: Shard, scorer: _Scorer, timings: Timings,
                 sync: Any, progress: Progress | None) -> None:
        self.lm, self.dataset, self.shard, self.scorer = lm, dataset, shard, scorer
        self.timings, self.sync, self.progress = timings, sync, progress
        self.fusion_times: list[float] = []  # each call of the model's own fusion (timed_fusion)

    def batches(self, loader: Iterable[list[dict[str, Any]]]) -> float:
        """The loop over batches: forward, panoptic map to segments, queue for scoring, timings.
        Returns when the timed part's wall clock started (after the warm-up batches)."""
        family, timings, sync, fusion_times = self.lm.family, self.timings, self.sync, self.fusion_times
        n_batches = 0
        t_start = t_data = time.perf_counter()
        for batch in loader:
            self._check(batch)
            data_dt = time.perf_counter() - t_data
            sync()
            t0 = time.perf_counter()
            n_fusion = len(fusion_times)
            outputs = forward_resilient(family, batch, self.shard.device, self.shard.opts.amp, timings, self.dataset)
            sync()
            t1 = time.perf_counter()
            converted = [family.to_segments(out) for out in outputs]
            t2 = time.perf_counter()
            self._queue(batch, outputs, converted)
            n_batches += 1
            timings.batches[len(batch)] = timings.batches.get(len(batch), 0) + 1
            fusion = sum(fusion_times[n_fusion:])
            if n_batches > self.shard.opts.warmup:
                timings.data_s += data_dt
                timings.forward_s += (t1 - t0) - fusion
                timings.postprocess_s += fusion + (t2 - t1)
                timings.fusion_s += fusion
                timings.timed_images += len(batch)
            else:
                timings.warmup_images += len(batch)
                t_start = time.perf_counter()  # wall clock of the timed part starts after warm-up
            if self.progress is not None:
                self.progress.add(len(batch))
            t_data = time.perf_counter()
        return t_start

    def _check(self, batch: list[dict[str, Any]]) -> None:
        """A batch's input errors raised; its corruption seconds (``--corruption``) added to the timings."""
        for item in batch:
            if item["error"]:
                raise InputError(item["error"])
            if item.get("corrupt_s") is not None:
                self.timings.corrupt_s += item["corrupt_s"]
                self.timings.corrupt_images += 1

    def _queue(self, batch: list[dict[str, Any]], outputs: list[Any], converted: list[Any]) -> None:
        """Each image of the batch to the scoring thread, with its instance (AP on) and semantic outputs."""
        scorer, family = self.scorer, self.lm.family
        if scorer.error is not None:
            raise scorer.error
        ap = scorer.sink.ap is not None  # the instance and semantic outputs, outside the timed part
        for it, out, (pred_ids, segs) in zip(batch, outputs, converted):
            scorer.q.put((it["index"], it["gt_ids"], pred_ids, segs, family.to_instances(out) if ap else None,
                          family.to_semantic(out)))
