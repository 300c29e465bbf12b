"""``panbench eval``: one model on one dataset, from config to result record.

:func:`evaluate_model` reads as the run's four steps: load (the model, the device and the ranks
(:mod:`~panbench.evaluation.distributed`), the resume cache (:mod:`~panbench.evaluation.cache`)),
run (inference in one process (:mod:`~panbench.evaluation.loop`) or in forked CPU processes
(:mod:`~panbench.evaluation.cpu_procs`) into the run's :class:`~panbench.evaluation.sink.ImageSink`,
reduced over the ranks), summarize (metrics, analyses, speed) and record
(:mod:`panbench.records`, with the fields of :mod:`~panbench.evaluation.record_fields`).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.analysis.collect import AnalysisSet
from panbench.analysis.scoring import run_fields
from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation.cache import StatsCache, cache_key, older_format, read_timing, write_timing
from panbench.evaluation.cache import clear as clear_cache
from panbench.evaluation.context import cpu_clock, marker, speed_context
from panbench.evaluation.cpu_procs import cpu_procs_for, run_inference_cpu
from panbench.evaluation.device import device_name, pick_device, seed_everything
from panbench.evaluation.distributed import (
    barrier,
    dist_any,
    dist_info,
    dist_sum,
    local_rank,
    reduce_sink,
    reduce_timings,
    use_device,
)
from panbench.evaluation.loading import LoadedModel, load_model
from panbench.evaluation.loop import Shard, run_inference
from panbench.evaluation.memory import peak_memory
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.predictions import PredictionWriter
from panbench.evaluation.progress import Progress
from panbench.evaluation.record_fields import (
    OWN_WEIGHTS,
    ap_miou_fields,
    cache_key_parts,
    corruption_fields,
    dataset_label,
    delta,
    own_weights,
    provenance,
    published_source,
    resumed_speed,
    save_instances,
)
from panbench.evaluation.saving import prediction_writer, predictions_info, unsaved_error
from panbench.evaluation.sink import ImageSink
from panbench.evaluation.timings import Timings, precision_info
from panbench.models.protocol import count_parameters
from panbench.models.registry import ModelSpec
from panbench.records.build import make_record
from panbench.records.io import write_record
from panbench.records.schema import RunRecord


@dataclass(frozen=True)
class Loaded:
    """What loading gives a run: the model on its device, the ranks, the cache key and folder, the
    predictions writer."""

    spec: ModelSpec
    dataset: PanopticDataset
    opts: EvalOptions
    lm: LoadedModel
    device: str
    rank: int
    world: int
    fusion: str | None  # what ran the model's own panoptic fusion (PanopticModel.configure)
    fingerprint: str  # the dataset's, hashed once per run
    key_parts: dict[str, Any]
    key: str
    writer: PredictionWriter | None

    @property
    def run_dir(self) -> Path:
        """The resume cache's folder of this run."""
        return self.opts.cache_root / f"{self.spec.name}-{self.dataset.name}-{self.key}"


@dataclass(frozen=True)
class Ran:
    """What running gives: the sink holding every image of the job, the job's timings and peak memory,
    and the speed's context."""

    sink: ImageSink
    timings: Timings
    memory: dict[str, float]
    procs: int  # forked CPU processes
    resumed: int  # images taken from the resume cache
    t0: float  # perf_counter when the run started (after the resume)
    load0: Any  # cpu_clock() at the start: the load and the CPU use of other work
    beside: list  # the runs that overlapped this one on this machine
    shared: bool  # another run shared any rank's machine


@dataclass(frozen=True)
class Summary:
    """What summarizing gives: the metrics, the analyses, the speed, the saved predictions."""

    res: dict[str, Any]
    aset: AnalysisSet
    analyses: dict[str, Any]  # run_fields
    flops: Any
    timings: dict[str, Any]
    device: str  # the label the speed describes
    shared: bool
    saved: Path | None  # the predictions JSON
    unsaved: PanbenchError | OSError | None  # why the predictions JSON could not be written


def evaluate_model(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions) -> RunRecord:
    """Evaluate ``spec`` on ``dataset``: load, run, summarize, record; returns the result record
    (written by rank 0)."""
    run = load(spec, dataset, opts)
    ran = run_images(run)
    summary = summarize(run, ran)
    return record(run, ran, summary)


def _model(spec: ModelSpec, dataset: PanopticDataset,
           opts: EvalOptions) -> tuple[LoadedModel, str, int, int, str | None]:
    """The model loaded on this rank's device with its post-processing and fusion configured:
    (model, device, rank, world size, what runs the model's own fusion)."""
    device = pick_device(opts.device)
    rank, world, device = dist_info(device)  # backend from the device; rank k on cuda:LOCAL_RANK
    use_device(device)  # current CUDA device and a fresh peak-memory counter for this model
    seed_everything(opts.seed)
    lm = load_model(spec, dataset.categories, opts.checkpoint, opts.trust_checkpoint, device, opts.cfg_options,
                    ap=opts.ap)
    return lm, device, rank, world, lm.family.configure(opts.postprocess, opts.fusion)


def load(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions) -> Loaded:
    """The first step of a run: the model, the ranks, the cache key, the predictions writer."""
    lm, device, rank, world, fusion = _model(spec, dataset, opts)
    if lm.named:  # the registry's spec stays as it is: the run's copy names what the model's config says
        spec = dataclasses.replace(spec, architecture=lm.named[0], backbone=lm.named[1])
    fingerprint = dataset.fingerprint()  # hashes the annotation file: once per run
    key_parts = cache_key_parts(lm, fingerprint, opts, device, world, len(dataset.samples))
    key = cache_key(key_parts)
    return Loaded(spec, dataset, opts, lm, device, rank, world, fusion, fingerprint,
                  key_parts, key, prediction_writer(spec, dataset, opts, key))


def open_sink(run: Loaded) -> tuple[ImageSink, Shard]:
    """The run's sink, writing through to its resume cache (cleared first without ``--resume``; once per
    node, each has its cache) and holding the cached images that need not run again, and this rank's shard."""
    opts, rank = run.opts, run.rank
    if not opts.resume and local_rank() == 0:
        clear_cache(run.run_dir)
    barrier()
    cache = StatsCache(run.run_dir, opts.flush_every, tag=f"r{rank}", key_parts=run.key_parts)
    sink = ImageSink(run.dataset.categories, opts.boundary, opts.strict, cache,
                     ap=opts.ap and run.lm.family.instance_source is not None)
    indices = list(range(rank, len(run.dataset.samples), run.world))
    writer = run.writer  # a cached image whose prediction is to be saved and is not runs again
    done = sink.resume(indices, set() if writer is None else {i for i in indices if i not in writer.saved})
    if done and rank == 0:
        print(f"resuming {run.spec.name}: {len(done)} of {len(indices)} images already scored "
              f"({cache.dir}); --no-resume starts afresh", file=sys.stderr)
    elif opts.resume and rank == 0 and (old := older_format(run.run_dir, run.key_parts)) is not None:
        print(f"note: {old}: cached by an older panbench (another cache format), not read; {run.spec.name} "
              "runs every image again", file=sys.stderr)
    return sink, Shard(indices, run.device, opts, done=done, predictions=writer)


def run_images(run: Loaded) -> Ran:
    """The second step: the shard's images into the sink, reduced over the ranks, with the job's timings."""
    sink, shard = open_sink(run)
    t0 = time.perf_counter()
    procs = cpu_procs_for(run.opts, run.device, run.world, len(shard.todo()))
    run_marker, wall0, load0 = marker(), time.time(), cpu_clock()  # the speed's context: who ran beside it
    beside = run_marker.overlapping(wall0, wall0)
    progress = _progress(run.spec, run.dataset, shard, run.rank, run.world)
    try:
        timings = _infer(run.lm, run.dataset, sink, shard, procs, progress)
        reduce_sink(sink)  # the sums and the per-image matches of every rank; waits for every rank
    finally:
        progress.close()
    beside += [o for o in run_marker.overlapping(wall0, time.time()) if o not in beside]
    shared = dist_any(bool(beside))  # another run beside any rank shared that rank's machine
    timings, memory = reduce_timings(timings, peak_memory(run.device))  # whole job under torchrun
    return Ran(sink, timings, memory, procs, len(shard.done), t0, load0, beside, shared)


def summarize(run: Loaded, ran: Ran) -> Summary:
    """The third step: the metrics and analyses of the sink, the FLOPs, the saved predictions, the speed."""
    flops = None
    if run.opts.flops_images and run.rank == 0:  # a pass of its own, after the timed inference
        from panbench.evaluation.flops import dataset_gflops

        flops = dataset_gflops(run.lm, run.dataset, run.opts.flops_images, run.device)
    res = ran.sink.evaluate()
    n = len(run.dataset.samples)
    if res["n_images"] != n:
        raise PanbenchError(f"internal: scored {res['n_images']} images of {n}; please report")
    saved, unsaved = _finish_predictions(run)
    if saved is not None:
        save_instances(run.writer, ran.sink)
    cats = run.dataset.categories
    aset = ran.sink.analysis.analysis_set(cats, run.dataset.image_ids)
    analyses = run_fields(aset, cats, ran.sink.analysis.boundary_stats(len(cats), n))
    t_all = time.perf_counter() - ran.t0
    timings, device, shared = _speed(run, ran)
    return Summary(res, aset, analyses, flops, {**timings, "total_s": t_all, "resumed_images": ran.resumed},
                   device, shared, saved, unsaved)


def _finish_predictions(run: Loaded) -> tuple[Path | None, PanbenchError | OSError | None]:
    """On rank 0, the predictions JSON written: (its path, None), or (None, why it could not be)."""
    if run.writer is None or run.rank != 0:
        return None, None
    try:
        return run.writer.finish(predictions_info(run.spec, run.opts, run.key)), None
    except (PanbenchError, OSError) as e:  # the scores are not lost with the JSON: the record is written first
        return None, e


def _speed(run: Loaded, ran: Ran) -> tuple[dict[str, Any], str, bool]:
    """The timings with the speed over every measured image (this run's and the cache's), the device they
    describe, whether another run shared the machine; this run's measurement stored for the next resume."""
    tag = f"r{run.rank}"
    label = device_name(run.device, ran.procs) + (f" x {run.world} ranks" if run.world > 1 else "")
    timing_dict, label = resumed_speed(ran.timings.as_dict(), read_timing(run.run_dir, tag), label, ran.resumed)
    shared = ran.shared or bool((timing_dict["speed_from_cache"] or {}).get("overlapped"))
    if ran.timings.timed_images:  # what this run measured, with what the cache held, for the next resume
        write_timing(run.run_dir, tag, {"device": label, "timed_images": timing_dict["speed_images"],
                                        "wall_s": timing_dict["speed_wall_s"], "overlapped": shared})
    return timing_dict, label, shared


def record(run: Loaded, ran: Ran, summary: Summary) -> RunRecord:
    """The last step: the result record, written by rank 0."""
    spec, dataset, opts, res = run.spec, run.dataset, run.opts, summary.res
    # the zoo publishes clean COCO numbers of its own weights: none to compare a corrupted run or other weights with
    own = own_weights(spec, opts.checkpoint, run.lm.weights.sha256)
    coco = dataset.name == "coco" and opts.corruption is None and not own
    rec = make_record(
        res, model=spec.name, framework=spec.framework, architecture=spec.architecture, backbone=spec.backbone,
        dataset=dataset_label(dataset.name, opts),
        postprocess=opts.postprocess.label(), fusion=run.fusion,
        published=spec.published if coco else {},
        delta_to_published=delta(res, spec.published) if coco else {},
        published_source=published_source(spec) if coco else OWN_WEIGHTS if own else None,
        params=count_parameters(run.lm.model), flops=summary.flops, device=summary.device, world_size=run.world,
        batch_size=opts.batch_size, amp=opts.amp or "fp32", precision=precision_info(run.device, opts.amp),
        timings=summary.timings, memory=ran.memory,
        speed_context=speed_context(run.device, ran.procs, run.world, ran.load0, ran.beside, summary.shared),
        provenance={**provenance(spec, run.lm, dataset, run.fingerprint, opts),
                    "predictions": _saved_predictions(run, summary.saved)},
        selection={"limit": opts.limit, "subset": opts.subset, "images": len(dataset.samples)},
        **corruption_fields(opts), **summary.analyses, **ap_miou_fields(ran.sink, run.lm.family.instance_source, res),
    )
    if run.rank == 0:
        rec = write_record(opts.results_dir, rec, analysis=summary.aset)
        if summary.unsaved is not None and run.writer is not None:
            raise unsaved_error(run.writer, summary.unsaved, opts.results_dir / str(rec.record))
    return rec


def _saved_predictions(run: Loaded, saved: Path | None) -> dict[str, str] | None:
    """The record's ``provenance.predictions``: the JSON and the PNG folder written (None without them)."""
    if saved is None or run.writer is None:
        return None
    return {"json": str(saved), "dir": str(run.writer.png_dir)}


def predict_images(spec: ModelSpec, images: PanopticDataset, opts: EvalOptions) -> Path:
    """``eval --images``: run ``spec`` on images without ground truth and save its predictions
    (``opts.save_predictions``); nothing is scored and no record is written.  Returns the JSON's path
    (on rank 0; on the other ranks the path rank 0 writes)."""
    run = load(spec, images, opts)
    writer, rank, world = run.writer, run.rank, run.world
    if writer is None:
        raise PanbenchError("--images runs models without scoring them: pass --save-predictions DIR")
    shard = Shard(list(range(rank, len(images.samples), world)), run.device, opts, predictions=writer, scored=False)
    done = len(shard.indices) - len(shard.todo())
    if done and rank == 0:
        print(f"resuming {spec.name}: {done} of {len(shard.indices)} predictions already saved in "
              f"{writer.png_dir}; --no-resume starts afresh", file=sys.stderr)
    procs = cpu_procs_for(opts, run.device, world, len(shard.todo()))
    progress = _progress(spec, images, shard, rank, world)
    try:
        _infer(run.lm, images, ImageSink(images.categories), shard, procs, progress)
        barrier()  # every rank's predictions are on disk
    finally:
        progress.close()
    if rank == 0:
        writer.finish(predictions_info(spec, opts, run.key))
    return writer.json_path


def _progress(spec: ModelSpec, dataset: PanopticDataset, shard: Shard, rank: int, world: int) -> Progress:
    """The job's progress bar (closed by the caller once every rank is done): it names the model and its
    post-processing and counts every image of the job, whichever process or rank ran it."""
    opts = shard.opts
    desc = (f"{'eval' if shard.scored else 'predict'} {spec.name} [{opts.postprocess.label()}] on "
            f"{dataset_label(dataset.name, opts)}")
    total = dist_sum(len(shard.todo()))  # every rank's share
    return Progress(total, desc, enabled=opts.progress and rank == 0,  # one bar per job
                    store_key=f"panbench-progress-{next(_RUNS)}" if world > 1 and opts.progress
                    else None)  # --no-progress: no round trip to the store per batch


def _infer(lm: LoadedModel, dataset: PanopticDataset, sink: ImageSink, shard: Shard, procs: int,
           progress: Progress) -> Timings:
    """Inference over the shard's images still to run into ``sink``, in one process or ``procs`` forked ones."""
    if procs > 1:
        return run_inference_cpu(lm, dataset, sink, shard, procs, progress)
    return run_inference(lm, dataset, sink, shard, progress)


_RUNS = itertools.count()  # the same sequence on every rank: one progress key per model run


