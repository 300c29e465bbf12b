"""The images of a run through the model into its evaluators, as detectron2's ``inference_on_dataset(model,
data_loader, evaluator)``: the forward on the main thread, the post-processing and scoring on a thread beside it,
forked processes on the CPU (docs/eval.md: "What one run does", "Post-processing beside the forward", "Forked CPU
processes (`--cpu-procs`)", "Timings")."""

from __future__ import annotations

import ctypes
import functools
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, replace
from typing import Any

from panbench.data.datasets import PanopticDataset
from panbench.errors import InputError, PanbenchError
from panbench.evaluation.loading import LoadedModel
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.progress import Progress
from panbench.evaluation.runtime import forward_resilient
from panbench.evaluation.storage import PredictionWriter
from panbench.evaluation.timings import Timings
from panbench.evaluators import Evaluators
from panbench.interrupts import sigint_held
from panbench.models.grid import Setting
from panbench.pq.png import read_ids
from panbench.pq.threads import ALIVE_CHECK_S, STOP_S, join_while_alive
from panbench.robustness.pipeline import CorruptedPipeline


@dataclass(frozen=True)
class Outlet:
    """Where one post-processing setting's outputs go (a run has one; a grid, one per setting, docs/eval.md,
    "Grids"): the images it holds already and its predictions writer; its evaluators are passed beside it."""

    done: frozenset[int] = frozenset()  # scored already (resumed from the cache): not scored again
    predictions: PredictionWriter | None = None  # --save-predictions: saves each image's prediction
    setting: Setting | None = None  # None: the run's own post-processing

    def wants(self, i: int, scored: bool) -> bool:
        """Whether image ``i`` is to be scored or its prediction saved here."""
        return (self.predictions is not None and i not in self.predictions.saved) or (scored and i not in self.done)


@dataclass(frozen=True)
class Shard:
    """The images one process runs and how (dataset indices, device, options, each setting's outlet)."""

    indices: list[int]
    device: str
    opts: EvalOptions
    outlets: tuple[Outlet, ...] = (Outlet(),)
    scored: bool = True  # False for images without ground truth (--images): predictions only

    def todo(self) -> list[int]:
        """The indices to run: not in some setting's cache yet, or whose prediction is to be saved and is not."""
        return [i for i in self.indices if any(o.wants(i, self.scored) for o in self.outlets)]

    @property
    def settings(self) -> list[Setting] | None:
        """The grid's settings (None: one run, its own post-processing)."""
        return self.settings_of(self.outlets)

    @staticmethod
    def settings_of(outlets: Sequence[Outlet]) -> list[Setting] | None:
        return [o.setting for o in outlets if o.setting] or None


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
            gt_ids = None
            if s.gt_png is not None:  # None: --images, no ground truth
                if not s.gt_png.is_file():
                    raise InputError(f"{s.gt_png}: ground truth of image {s.image_id} not found; re-download the "
                                     "dataset")
                gt_ids = read_ids(s.gt_png, f"image {s.image_id} (ground truth)")
                if gt_ids.shape != (s.height, s.width):
                    raise InputError(f"{s.gt_png}: ground truth is {gt_ids.shape[1]}x{gt_ids.shape[0]}, the "
                                     f"annotation says {s.width}x{s.height}; re-download the annotations")
            return {"index": i, "data": data, "gt_ids": gt_ids, "error": None, "corrupt_s": corrupt_s}
        except InputError as e:  # travels back as data: worker exceptions would lose the one-line message
            return {"index": i, "data": None, "gt_ids": None, "error": str(e)}


def same_shape_batches(items: Iterable[list[dict[str, Any]]], size: int, key: Callable[[Any], Hashable],
                       hold: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """Loaded items in batches of up to ``size`` images of one ``key`` (docs/eval.md, "Batch size"); ``hold``: 8
    batches, at most 32 images, never fewer than one batch.  An item that failed to load runs alone at once."""
    if size <= 1:
        yield from ([it] for group in items for it in group)
        return
    hold = max(size, min(8 * size, 32)) if hold is None else hold
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


class _PostProcessor(threading.Thread):
    """The post-processing thread (docs/eval.md, "Post-processing beside the forward"): each batch's outputs (each
    setting's, in a grid) converted and scored into that setting's evaluators; its seconds go to ``timings`` (timed
    batches only; a grid's own seconds per setting in ``timings.settings``) and its images to ``progress``."""

    def __init__(self, family: Any, evaluators: Sequence[Evaluators], dataset: PanopticDataset, timings: Timings,
                 sync: Any, outlets: Sequence[Outlet] = (Outlet(),), progress: Progress | None = None) -> None:
        super().__init__(daemon=True)
        self.q: queue.Queue = queue.Queue(maxsize=1)  # one batch waits while one is processed: bounded memory
        self.family, self.evaluators, self.dataset, self.timings, self.sync = family, evaluators, dataset, timings, sync
        self.outlets, self.progress = list(outlets), progress
        self.settings = Shard.settings_of(self.outlets)
        self.finish = family.finish
        self.error: BaseException | None = None
        self.dropped = False  # set by abandon: the batches still queued are not processed
        self.ended = False  # set when the thread takes the end (None) off the queue
        self.owner = threading.current_thread()  # the thread handing over the batches: once it is gone, none comes

    def abandon(self, timeout: float) -> None:
        """After an interrupt or an error in the main thread: drop the batch waiting, let the one being processed
        finish, and wait ``timeout`` seconds at most for the thread to end (a daemon: it never holds the exit)."""
        self.dropped = True
        with suppress(queue.Empty):
            self.q.get_nowait()
        with suppress(queue.Full):
            self.q.put_nowait(None)
        self.join(timeout)

    def run(self) -> None:
        import torch

        # keeps the forward's torch thread count (docs/eval.md, "Post-processing beside the forward")
        with torch.inference_mode():  # grad mode is per thread
            while True:
                try:
                    job = self.q.get(timeout=ALIVE_CHECK_S)
                except queue.Empty:
                    if not self.owner.is_alive():
                        return
                    continue
                if job is None:
                    self.ended = True
                    return
                if self.error is None and not self.dropped:
                    try:
                        self._batch(*job)
                    except BaseException as e:  # re-raised in the main thread
                        self.error = e

    def _batch(self, batch: list[dict[str, Any]], outputs: list[Any], timed: bool) -> None:
        family, sync, timings, grid = self.family, self.sync, self.timings, self.settings is not None
        t0 = time.perf_counter()
        if grid:  # each setting's outputs, one after another (the shared work done once)
            each: Any = family.finish_grid(outputs, self.settings)
        else:
            outputs = self.finish(outputs)
            sync()
            each = iter([outputs])
        own = timings.settings if grid and timed else None
        if own is not None and not own:
            own.extend(dict.fromkeys(("postprocess_s", "fusion_s", "scoring_s"), 0.0) for _ in self.outlets)
        for k, (outlet, evaluators) in enumerate(zip(self.outlets, self.evaluators)):
            t1 = time.perf_counter()
            outs = next(each)
            if grid:
                sync()
            t2 = time.perf_counter()
            ap, sem = "instances" in evaluators.needs, "semantic" in evaluators.needs
            # a setting whose resume cache holds an image and its prediction takes nothing of it again
            mine = [(it, out) for it, out in zip(batch, outs) if outlet.wants(it["index"], True)]
            converted = [(family.to_segments(out), family.to_instances(out) if ap else None,
                          family.to_semantic(out) if sem else None)
                         for _, out in mine]
            t3 = time.perf_counter()
            scoring = 0.0
            for (it, _), ((pred_ids, segs), instances, semantic) in zip(mine, converted):
                i, s = it["index"], self.dataset.samples[it["index"]]
                if outlet.predictions is not None:
                    outlet.predictions.write(s, pred_ids, segs)
                t4 = time.perf_counter()
                if it["gt_ids"] is not None and i not in outlet.done:
                    evaluators.score(i, it["gt_ids"], s.gt_ann["segments_info"], pred_ids, segs,
                                     f"image {s.image_id}", s.image_id, instances, semantic)
                scoring += time.perf_counter() - t4
            if timed:
                fusion = t2 - (t0 if k == 0 else t1)  # the shared work of a grid: the first setting's
                timings.fusion_s += fusion
                timings.postprocess_s += fusion + t3 - t2
                timings.scoring_s += scoring
                if own is not None:
                    for key, v in (("fusion_s", fusion), ("postprocess_s", fusion + t3 - t2), ("scoring_s", scoring)):
                        own[k][key] += v
        if self.progress is not None:
            self.progress.add(len(batch))


def defers_fusion(device: str) -> bool:
    """Whether the forward leaves the model's fusion to the post-processing thread: on a GPU only (docs/eval.md,
    "Post-processing beside the forward")."""
    return device.startswith("cuda")


def run_inference(lm: LoadedModel, dataset: PanopticDataset, evaluators: Sequence[Evaluators], shard: Shard,
                  progress: Progress | None = None) -> Timings:
    """The model over the images of ``shard`` still to run, into ``evaluators`` (one per outlet of the shard),
    counted on ``progress``."""
    import torch

    device, opts = shard.device, shard.opts
    sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
    timings = Timings()
    if not (todo := shard.todo()):
        return timings
    # a map-style dataset (__len__, __getitem__); --corruption corrupts in the workers, after the image is loaded
    pipeline = lm.pipeline if opts.corruption is None else CorruptedPipeline(lm.family, opts.corruption)
    items: Any = Items(dataset, todo, pipeline)
    # images load one by one and meet in batches of one padded shape (same_shape_batches)
    loader: Any = torch.utils.data.DataLoader(items, batch_size=1, shuffle=False, num_workers=opts.workers,
                                              collate_fn=list, persistent_workers=False,
                                              worker_init_fn=_worker_start() if opts.workers > 0 else None,
                                              prefetch_factor=4 * opts.batch_size if opts.workers > 0 else None)
    with sigint_held():  # the workers start here: none meets a Ctrl-C before it ignores SIGINT
        loaded = iter(loader)
    family = lm.family
    post = _PostProcessor(family, evaluators, dataset, timings, sync, shard.outlets, progress)
    post.start()
    one = _Pass(shard, post)
    # a grid's settings all come from the outputs the forward leaves unfused
    defer = defers_fusion(device) or shard.settings is not None
    deferred = family.deferred() if defer else nullcontext()
    try:
        with torch.inference_mode(), deferred, family.timed_fusion(one.fusion_times, sync):
            t_start = one.batches(same_shape_batches(loaded, opts.batch_size, family.batch_key))
    except BaseException:  # Ctrl-C or an error: the batch waiting is dropped, the one in hand finishes (briefly)
        post.abandon(STOP_S)
        raise
    else:
        while post.is_alive():  # the end, once the thread has room for it (a thread that died takes none)
            with suppress(queue.Full):
                post.q.put(None, timeout=ALIVE_CHECK_S)
                break
        join_while_alive(post)
        if post.error is None and not post.ended:
            raise RuntimeError("the post-processing thread ended before the last batch; rerun to resume")
    finally:
        for observer in [ev.observer for ev in evaluators if ev.observer is not None]:
            observer.flush()  # the images scored so far, to resume from
    if post.error is not None:
        raise post.error
    timings.wall_s = time.perf_counter() - t_start if timings.timed_images else 0.0
    return timings


class _Pass:
    """One process's pass over its batches: its shard and the post-processing thread, whose state it shares."""

    def __init__(self, shard: Shard, post: _PostProcessor) -> None:
        self.shard, self.post = shard, post
        self.fusion_times: list[float] = []  # each call of the model's own fusion inside the forward (timed_fusion)

    def batches(self, loader: Iterable[list[dict[str, Any]]]) -> float:
        """The loop over batches; returns when the timed part's wall clock started (after the warm-up batches)."""
        post, fusion_times = self.post, self.fusion_times
        family, timings, sync = post.family, post.timings, post.sync
        n_batches = 0
        t_start = t_data = time.perf_counter()
        for batch in loader:
            self._check(batch)
            data_dt = time.perf_counter() - t_data
            sync()
            t0 = time.perf_counter()
            n_fusion = len(fusion_times)
            outputs = forward_resilient(family, batch, self.shard.device, self.shard.opts.amp, timings, post.dataset)
            sync()
            t1 = time.perf_counter()
            n_batches += 1
            timed = n_batches > self.shard.opts.warmup
            self._hand_over(batch, outputs, timed)
            timings.batches[len(batch)] = timings.batches.get(len(batch), 0) + 1
            fusion = sum(fusion_times[n_fusion:])  # a fusion that ran inside the forward (not deferred)
            if timed:
                timings.data_s += data_dt
                timings.forward_s += (t1 - t0) - fusion
                timings.postprocess_s += fusion
                timings.fusion_s += fusion
                timings.timed_images += len(batch)
            else:
                timings.warmup_images += len(batch)
                t_start = time.perf_counter()  # wall clock of the timed part starts after warm-up
            t_data = time.perf_counter()
        return t_start

    def _check(self, batch: list[dict[str, Any]]) -> None:
        """A batch's input errors raised; its corruption seconds (``--corruption``) added to the timings."""
        for item in batch:
            if item["error"]:
                raise InputError(item["error"])
            if item.get("corrupt_s") is not None:
                self.post.timings.corrupt_s += item["corrupt_s"]
                self.post.timings.corrupt_images += 1

    def _hand_over(self, batch: list[dict[str, Any]], outputs: list[Any], timed: bool) -> None:
        """The batch to the post-processing thread (waits while one batch is already waiting there); raises the
        thread's error, or a one-line error if it ended without one."""
        post = self.post
        while True:
            if post.error is not None:
                raise post.error
            if not post.is_alive():
                raise RuntimeError("the post-processing thread ended before the last batch; rerun to resume")
            with suppress(queue.Full):
                post.q.put((batch, outputs, timed), timeout=0.1)
                return


def cpu_procs_for(opts: EvalOptions, device: str, world: int, n_images: int) -> int:
    """How many CPU processes :func:`run_inference_cpu` uses: 1 on a GPU, under torchrun or off Linux."""
    if device != "cpu" or world > 1 or not sys.platform.startswith("linux"):  # fork after torch: Linux only
        return 1
    return max(1, min(opts.cpu_procs if opts.cpu_procs > 0 else (os.cpu_count() or 1), n_images // 2 or 1))


_FORKED: dict[str, Any] = {}


def _ignore_sigint(*_: object) -> None:
    """In a process forked under :func:`sigint_held` (a forked CPU process, a DataLoader worker): Ctrl-C ignored,
    the parent alone answers it (docs/cli.md, "Ctrl-C")."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _worker_start() -> Callable[[int], None]:
    """The DataLoader workers' start (:func:`_data_worker`), with this process as their parent where they are forked
    (elsewhere a worker's parent is a server process)."""
    forked = mp.get_start_method(allow_none=True) in (None, "fork")
    return functools.partial(_data_worker, os.getpid() if forked else None)


def _data_worker(parent: int | None, worker_id: int) -> None:
    """A DataLoader worker's start: Ctrl-C left to the parent, and gone when the parent is (a SIGKILLed eval, an
    evaluator's ``os._exit``), so that no worker holds the output's pipe."""
    _ignore_sigint()
    _die_with_parent(parent)


def _die_with_parent(parent: int | None = None) -> None:
    """In a forked process: killed when its parent dies (Linux); gone at once where ``parent`` died before."""
    if sys.platform.startswith("linux"):
        with suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _forked_shard(k: int) -> tuple[list[list[Any]], Timings]:
    """Body of a forked process: shard ``k`` into evaluators of its own; returns what they hold and the timings."""
    import torch

    a = _FORKED
    torch.set_num_threads(a["threads"])
    if a["progress"] is not None:
        a["progress"].use_slot(k)
    evaluators = [e.empty() for e in a["evaluators"]]
    t = run_inference(a["lm"], a["dataset"], evaluators, a["shards"][k], a["progress"])
    return [e.part() for e in evaluators], t


def _forked_main(k: int, conn: Any, parent: int) -> None:
    """A forked process (SIGINT ignored, :func:`_ignore_sigint`): shard ``k``'s result, or the exception it raised,
    sent to the parent through ``conn``."""
    _ignore_sigint()
    _die_with_parent(parent)
    try:
        out: tuple[str, Any] = ("ok", _forked_shard(k))
    except BaseException as e:  # noqa: BLE001 - re-raised in the parent
        out = ("error", e)
    try:
        conn.send(out)
    except Exception as e:  # noqa: BLE001 - an exception that does not pickle: its words
        conn.send(("error", PanbenchError(f"internal: forked inference process {k} failed: "
                                          f"{type(out[1]).__name__}: {out[1]}; please report ({e})")))
    conn.close()


def run_inference_cpu(lm: LoadedModel, dataset: PanopticDataset, evaluators: Sequence[Evaluators], shard: Shard,
                      procs: int, progress: Progress | None = None) -> Timings:
    """:func:`run_inference` on the CPU in ``procs`` forked processes (docs/eval.md, "Forked CPU processes"); on
    Ctrl-C (or any error) the parent kills them and goes on at once (:func:`_end_children`)."""
    import torch

    todo = shard.todo()
    if procs <= 1 or len(todo) < 2:
        return run_inference(lm, dataset, evaluators, replace(shard, device="cpu"), progress)
    threads_before = torch.get_num_threads()
    threads = max(1, threads_before // procs)
    sub = replace(shard.opts, workers=0)
    shards = [replace(shard, indices=todo[k::procs], device="cpu", opts=sub) for k in range(procs)]
    if progress is not None:
        progress.fork_slots(procs)
    _FORKED.update(lm=lm, dataset=dataset, evaluators=evaluators, shards=shards, threads=threads, progress=progress)
    t0 = time.perf_counter()
    children: list[tuple[Any, Any]] = []
    try:
        children = _fork_children(procs)
        torch.set_num_threads(threads)
        own = run_inference(lm, dataset, evaluators, shards[0], progress)
        parts = _gather(children, progress)
    except BaseException:  # Ctrl-C or an error: the forked processes killed at once
        _end_children(children, at_once=True)
        raise
    else:
        _end_children(children)
    finally:
        torch.set_num_threads(threads_before)
        _FORKED.clear()
    total = Timings(**{**own.__dict__, "batches": dict(own.batches), "settings": [dict(d) for d in own.settings],
                       "extra": {**own.extra, "cpu_procs": procs, "threads_per_proc": threads}})
    for k, ev in enumerate(evaluators):
        ev.reduce(part[k] for part, _ in parts)
    for _, t in parts:
        total.merge(t)
    total.extra["parallel_wall_s"] = time.perf_counter() - t0
    return total


def _fork_children(procs: int) -> list[tuple[Any, Any]]:
    """Processes 1 .. ``procs - 1`` forked (:func:`_forked_main`) under :func:`sigint_held`, with their pipes."""
    ctx = mp.get_context("fork")
    children: list[tuple[Any, Any]] = []
    try:
        with sigint_held():
            for k in range(1, procs):
                reader, writer = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_forked_main, args=(k, writer, os.getpid()), name=f"panbench-cpu-{k}",
                                daemon=True)
                try:
                    p.start()
                finally:
                    writer.close()
                children.append((p, reader))
    except BaseException:
        _end_children(children, at_once=True)
        raise
    return children


def _gather(children: list[tuple[Any, Any]], progress: Progress | None) -> list[Any]:
    """Each forked process's result, in order, the progress bar redrawn meanwhile; a process that dies without a
    result (killed, out of memory) is an error, never a wait."""
    from multiprocessing.connection import wait

    results: dict[int, Any] = {}
    while len(results) < len(children):
        waiting = {k: c for k, c in enumerate(children) if k not in results}
        ready = wait([r for _, r in waiting.values()] + [p.sentinel for p, _ in waiting.values()], timeout=0.2)
        for k, (p, reader) in waiting.items():
            if reader in ready or p.sentinel in ready:
                try:
                    results[k] = reader.recv()  # ready: the whole message comes, or EOF where the process died
                except (EOFError, OSError):
                    p.join(STOP_S)
                    how = (f"killed by signal {-p.exitcode}: out of memory?" if (p.exitcode or 0) < 0 else
                           f"exit code {p.exitcode}")
                    raise PanbenchError(f"forked inference process {k + 1} ended without its result ({how}); run "
                                        "again with --cpu-procs 1") from None
        if progress is not None:
            progress.refresh()
    out = []
    for k in range(len(children)):
        status, value = results[k]
        if status == "error":
            raise value
        out.append(value)
    return out


def _end_children(children: list[tuple[Any, Any]], at_once: bool = False) -> None:
    """The forked processes gone and reaped, their pipes closed: given :data:`STOP_S` seconds to exit, then
    killed (with ``at_once``, an interrupt or error in the parent, killed first), as much again to be reaped."""
    deadline = time.monotonic() + STOP_S
    for _ in range(2):
        for p, _ in children:
            if at_once and p.exitcode is None:
                with suppress(OSError):
                    p.kill()
        for p, _ in children:
            p.join(max(0.0, deadline - time.monotonic()))
        at_once, deadline = True, time.monotonic() + STOP_S
    for _, reader in children:
        reader.close()
