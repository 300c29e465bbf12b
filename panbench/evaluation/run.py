"""``panbench eval``: one model on one dataset, from config to result record.

The pipeline of one run: load the model (:mod:`~panbench.evaluation.loading`), pick the device
and the ranks (:mod:`~panbench.evaluation.distributed`), resume from the cache
(:mod:`~panbench.evaluation.cache`), run inference in one process
(:mod:`~panbench.evaluation.loop`) or in forked CPU processes
(:mod:`~panbench.evaluation.cpu_procs`), reduce over the ranks, write the record
(:mod:`panbench.reporting.records`).
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Any

from panbench.analysis.scoring import RunAnalysis, run_fields
from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation.cache import StatsCache, cache_key, read_timing, write_timing
from panbench.evaluation.cache import clear as clear_cache
from panbench.evaluation.context import load_average, marker, speed_context
from panbench.evaluation.cpu_procs import cpu_procs_for, run_inference_cpu
from panbench.evaluation.device import device_name, pick_device, seed_everything
from panbench.evaluation.distributed import (
    all_reduce_stats,
    barrier,
    dist_any,
    dist_gather,
    dist_info,
    dist_sum,
    local_rank,
    reduce_timings,
    use_device,
)
from panbench.evaluation.loading import LoadedModel, load_model
from panbench.evaluation.loop import Shard, run_inference
from panbench.evaluation.memory import peak_memory
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.predictions import PredictionWriter
from panbench.evaluation.progress import Progress
from panbench.evaluation.timings import Timings, precision_info
from panbench.models import mm
from panbench.models.fast_fusion import install_fusion
from panbench.models.fusion import install_postprocess
from panbench.models.registry import ModelSpec
from panbench.pq.evaluator import PanopticEvaluator
from panbench.pq.matching import METRIC_KEYS
from panbench.records.build import make_record
from panbench.records.io import write_record
from panbench.records.provenance import git_commit, now_iso, versions
from panbench.records.schema import RunRecord


def published_source(spec: ModelSpec) -> str | None:
    """Where ``spec.published`` comes from (None when nothing is published)."""
    return spec.published_source if any(v is not None for v in spec.published.values()) else None


def evaluate_model(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions) -> RunRecord:
    """Evaluate ``spec`` on ``dataset``; returns the result record (written by rank 0)."""
    device = pick_device(opts.device)
    rank, world, device = dist_info(device)  # backend from the device; rank k on cuda:LOCAL_RANK
    use_device(device)  # current CUDA device and a fresh peak-memory counter for this model
    seed_everything(opts.seed)
    lm = load_model(spec, dataset.categories, opts.checkpoint, opts.trust_checkpoint, device, opts.cfg_options)
    install_postprocess(lm.model, opts.postprocess, str(spec.config))
    fusion = fusion_label(spec, opts, install_fusion(lm.model, opts.fusion))
    fingerprint = dataset.fingerprint()  # hashes the annotation file: once per run
    key_parts = cache_key_parts(lm, fingerprint, opts, device, world, len(dataset.samples))
    key = cache_key(key_parts)
    run_dir = opts.cache_root / f"{spec.name}-{dataset.name}-{key}"
    writer = prediction_writer(spec, dataset, opts, key)
    if not opts.resume and local_rank() == 0:  # start afresh, keep caching; once per node (each has its cache)
        clear_cache(run_dir)
    barrier()
    shard = Shard(list(range(rank, len(dataset.samples), world)), device, opts,
                  StatsCache(run_dir, opts.flush_every, tag=f"r{rank}", key_parts=key_parts), predictions=writer,
                  analysis=RunAnalysis(opts.boundary, opts.strict))
    evaluator = PanopticEvaluator(dataset.categories)
    resumed = _resume(spec, evaluator, shard, rank)
    t0 = time.perf_counter()
    procs = cpu_procs_for(opts, device, world, len(shard.todo()))
    run_marker, wall0, load0 = marker(), time.time(), load_average()  # the speed's context: who ran beside it
    beside = run_marker.overlapping(wall0, wall0)
    try:
        timings = _infer(spec, lm, dataset, evaluator, shard, procs, rank, world)
        all_reduce_stats(evaluator, device, shard.analysis)  # and the per-image analysis records; waits for every rank
    finally:
        if shard.progress is not None:
            shard.progress.close()
    wall1 = time.time()
    beside += [o for o in run_marker.overlapping(wall0, wall1) if o not in beside]
    shared = dist_any(bool(beside))  # another run beside any rank shared that rank's machine
    timings, memory = reduce_timings(timings, peak_memory(device))  # whole job under torchrun
    flops = None
    if opts.flops_images and rank == 0:  # a pass of its own, after the timed inference
        from panbench.evaluation.flops import dataset_gflops

        flops = dataset_gflops(lm, dataset, opts.flops_images, device)
    res = evaluator.evaluate()
    if res["n_images"] != len(dataset.samples):
        raise PanbenchError(f"internal: scored {res['n_images']} images of {len(dataset.samples)}; please report")
    saved, unsaved = None, None
    if writer is not None and rank == 0:
        try:
            saved = writer.finish(_info(spec, opts, key))
        except (PanbenchError, OSError) as e:  # the scores are not lost with the JSON: the record is written first
            unsaved = e
    cats = dataset.categories
    aset = shard.analysis.analysis_set(cats, dataset.image_ids)
    analyses = run_fields(aset, cats, shard.analysis.boundary_stats(len(cats), len(dataset.samples)))
    t_all = time.perf_counter() - t0
    label = device_name(device, procs) + (f" x {world} ranks" if world > 1 else "")  # speed is the whole job's
    timing_dict, label = resumed_speed(timings.as_dict(), read_timing(run_dir, f"r{rank}"), label, resumed)
    shared = shared or bool((timing_dict["speed_from_cache"] or {}).get("overlapped"))
    if timings.timed_images:  # what this run measured, with what the cache held, for the next resume
        write_timing(run_dir, f"r{rank}", {"device": label, "timed_images": timing_dict["speed_images"],
                                           "wall_s": timing_dict["speed_wall_s"], "overlapped": shared})
    coco = dataset.name == "coco" and opts.corruption is None  # the zoo publishes clean COCO numbers
    record = make_record(
        res, model=spec.name, framework=spec.framework, architecture=spec.architecture, backbone=spec.backbone,
        dataset=dataset_label(dataset.name, opts),
        postprocess=opts.postprocess.label(), fusion=fusion,
        published=spec.published if coco else {},
        delta_to_published=delta(res, spec.published) if coco else {},
        published_source=published_source(spec) if coco else None,
        params=mm.count_parameters(lm.model), flops=flops, device=label, world_size=world, batch_size=opts.batch_size,
        amp=opts.amp or "fp32", precision=precision_info(device, opts.amp),
        timings={**timing_dict, "total_s": t_all, "resumed_images": resumed}, memory=memory,
        speed_context=speed_context(device, procs, world, load0, beside, shared),
        provenance={**provenance(spec, lm, dataset, fingerprint, opts),
                    "predictions": {"json": str(saved), "dir": str(writer.png_dir)} if saved else None},
        selection={"limit": opts.limit, "subset": opts.subset, "images": len(dataset.samples)},
        **corruption_fields(opts), **analyses,
    )
    if rank == 0:
        record = write_record(opts.results_dir, record, analysis=aset)
        if unsaved is not None:
            raise _unsaved_error(writer, unsaved, opts.results_dir / str(record.record))
    return record


def _unsaved_error(writer: PredictionWriter, e: Exception, record: Path) -> PanbenchError:
    """The one-line error of a predictions JSON that could not be written, after the record was."""
    what = str(e) if isinstance(e, PanbenchError) else (f"{writer.json_path}: could not be written "
                                                       f"({e.strerror or e}); free space or choose another "
                                                       "--save-predictions folder, and rerun")
    return PanbenchError(f"{what} (the scores are in {record}; a rerun takes the cached images)")


def predict_images(spec: ModelSpec, images: PanopticDataset, opts: EvalOptions) -> Path:
    """``eval --images``: run ``spec`` on images without ground truth and save its predictions
    (``opts.save_predictions``); nothing is scored and no record is written.  Returns the JSON's path
    (on rank 0; on the other ranks the path rank 0 writes)."""
    device = pick_device(opts.device)
    rank, world, device = dist_info(device)
    use_device(device)
    seed_everything(opts.seed)
    lm = load_model(spec, images.categories, opts.checkpoint, opts.trust_checkpoint, device, opts.cfg_options)
    install_postprocess(lm.model, opts.postprocess, str(spec.config))
    install_fusion(lm.model, opts.fusion)
    key = cache_key(cache_key_parts(lm, images.fingerprint(), opts, device, world, len(images.samples)))
    writer = prediction_writer(spec, images, opts, key)
    shard = Shard(list(range(rank, len(images.samples), world)), device, opts, predictions=writer, scored=False)
    done = len(shard.indices) - len(shard.todo())
    if done and rank == 0:
        print(f"resuming {spec.name}: {done} of {len(shard.indices)} predictions already saved in "
              f"{writer.png_dir}; --no-resume starts afresh", file=sys.stderr)
    procs = cpu_procs_for(opts, device, world, len(shard.todo()))
    try:
        _infer(spec, lm, images, PanopticEvaluator(images.categories), shard, procs, rank, world)
        barrier()  # every rank's predictions are on disk
    finally:
        if shard.progress is not None:
            shard.progress.close()
    if rank == 0:
        writer.finish(_info(spec, opts, key))
    return writer.json_path


def prediction_writer(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions,
                      key: str) -> PredictionWriter | None:
    """The writer of ``--save-predictions`` (None without it), its folders made and checked once per node;
    its ``saved`` set holds the images whose prediction an earlier run of the same key saved."""
    if opts.save_predictions is None:
        return None
    prefix = getattr(dataset, "prefix", None) or dataset.ann_file.stem  # panoptic_val2017, panoptic_test-dev2017
    cats = [{"id": c, "name": n, "isthing": int(t)}
            for c, n, t in zip(dataset.categories.ids, dataset.categories.names, dataset.categories.isthing)]
    writer = PredictionWriter(opts.save_predictions, prefix, spec.name, key, dataset.samples, cats)
    if local_rank() == 0:
        writer.prepare(fresh=not opts.resume)
    barrier()
    _check_shared(writer)
    writer.load_saved()
    return writer


def _check_shared(writer: PredictionWriter) -> None:
    """Under torchrun, before any image runs: every rank sees the folder of ``--save-predictions`` that
    rank 0 sees (rank 0 assembles the JSON from every rank's files); else each rank stops in one line."""
    if dist_info()[1] == 1:
        return
    import uuid

    mark = writer.mark(uuid.uuid4().hex)  # a fresh name: no stale mark of another job, no cached lookup
    blind = not writer.sees(dist_gather(mark.name[len("seen-"):]))  # the gather: every mark is written
    stop = dist_any(blind)  # and the barrier before the marks go
    mark.unlink(missing_ok=True)
    if stop:
        raise PanbenchError(f"{writer.root}: --save-predictions under torchrun on several machines needs a folder "
                            "that every rank sees (a shared file system), and this one is not shared; choose a "
                            "shared folder (nothing was run)")


def _info(spec: ModelSpec, opts: EvalOptions, key: str) -> dict[str, Any]:
    """The ``info`` block of a saved prediction JSON: what made it."""
    return {"description": f"{spec.name} predictions ({opts.postprocess.label()}) written by panbench",
            "model": spec.name, "postprocess": opts.postprocess.label(), "cfg_options": opts.cfg_options,
            "run_key": key, "date": now_iso(), "command": opts.command}


def _resume(spec: ModelSpec, evaluator: PanopticEvaluator, shard: Shard, rank: int) -> int:
    """Add the images the cache holds, and that need not run again, to ``evaluator``; returns how many."""
    resumed = 0
    if shard.cache is not None:
        todo = set(shard.todo())  # a cached image whose prediction is to be saved and is not runs again
        for i in shard.indices:
            if i in shard.cache.done and i not in todo:
                evaluator.add(shard.cache.done[i])
                shard.analysis.add(i, shard.cache.records[i])
                resumed += 1
        if resumed and rank == 0:
            print(f"resuming {spec.name}: {resumed} of {len(shard.indices)} images already scored "
                  f"({shard.cache.dir}); --no-resume starts afresh", file=sys.stderr)
    return resumed


def _infer(spec: ModelSpec, lm: LoadedModel, dataset: PanopticDataset, evaluator: PanopticEvaluator, shard: Shard,
           procs: int, rank: int, world: int) -> Timings:
    """Inference over the shard's images still to run, in one process or ``procs`` forked ones, with a
    progress bar (``shard.progress``, closed by the caller once every rank is done) that names the model
    and its post-processing and counts every image of the job, whichever process or rank ran it."""
    desc = (f"{'eval' if shard.scored else 'predict'} {spec.name} [{shard.opts.postprocess.label()}] on "
            f"{dataset_label(dataset.name, shard.opts)}")
    total = dist_sum(len(shard.todo()))  # every rank's share
    shard.progress = Progress(total, desc, enabled=shard.opts.progress and rank == 0,  # one bar per job
                              store_key=f"panbench-progress-{next(_RUNS)}" if world > 1 and shard.opts.progress
                              else None)  # --no-progress: no round trip to the store per batch
    if procs > 1:
        return run_inference_cpu(lm, dataset, evaluator, shard, procs)
    return run_inference(lm, dataset, evaluator, shard)


_RUNS = itertools.count()  # the same sequence on every rank: one progress key per model run


def provenance(spec: ModelSpec, lm: LoadedModel, dataset: PanopticDataset, fingerprint: str,
               opts: EvalOptions) -> dict[str, Any]:
    """Where a record's numbers come from: config, weights, dataset, code versions, the command."""
    w = lm.weights
    return {
        "config_path": str(spec.config),
        "config_sha256_16": lm.cfg_hash,
        "config": lm.cfg_text,
        "checkpoint": {"path": str(w.path), "url": w.url, "sha256": w.sha256},
        "dataset": {"name": dataset.name, "root": str(dataset.root), "ann_file": str(dataset.ann_file),
                    "fingerprint": fingerprint, "image_ids": dataset.image_ids},
        "versions": versions(),
        "git_commit": git_commit(),
        "seed": opts.seed,
        "command": opts.command,
        "cfg_options": opts.cfg_options,
        "category_names": {str(c): n for c, n in zip(dataset.categories.ids, dataset.categories.names)},
    }


def cache_key_parts(lm: LoadedModel, fingerprint: str, opts: EvalOptions, device: str, world: int,
                    n_images: int) -> dict[str, Any]:
    """Everything that changes a per-image result, hashed into the cache's directory name: config, weights,
    dataset and subset, post-processing, device type, AMP, batch size (with batches above 1, images are
    padded to the largest of their batch, so the process layout that forms the batches counts too) and the
    versions of the code that computes the numbers."""
    v = versions()
    parts: dict[str, Any] = {
        "config": lm.cfg_hash, "checkpoint": lm.weights.sha256, "dataset": fingerprint,
        "postprocess": opts.postprocess.label(), "fusion": opts.fusion,
        "device_type": device.split(":")[0], "amp": opts.amp, "batch_size": opts.batch_size,
        "versions": {k: v.get(k) for k in ("panbench", "mmdet", "mmcv", "torch", "mmcv_ops")},
        "boundary": opts.boundary,  # a cache made without boundary PQ lacks its per-image sums
    }
    if opts.strict:  # a cache that scored unlisted ground-truth ids must not serve a --strict run
        parts["strict"] = True
    if opts.corruption is not None:  # only then: a clean run keeps the key it had
        parts.update(corruption_fields(opts))
    if opts.cfg_options:  # also in the config hash; named apart so that the key file shows them
        parts["cfg_options"] = opts.cfg_options
    if opts.batch_size > 1:
        parts["layout"] = {"world_size": world, "cpu_procs": cpu_procs_for(opts, device, world, n_images)}
    return parts


def dataset_label(name: str, opts: EvalOptions) -> str:
    """The record's dataset: ``coco``, or ``coco+fog-3`` for a corrupted run (never the clean run's row)."""
    return name if opts.corruption is None else f"{name}+{opts.corruption.label}"


def corruption_fields(opts: EvalOptions) -> dict[str, Any]:
    """The record's ``corruption`` (none for a clean run): name, severity, group and implementation."""
    c = opts.corruption
    if c is None:
        return {}
    from panbench.robustness.corruptions import implementation

    return {"corruption": {"name": c.name, "severity": c.severity, "group": c.group,
                           "implementation": implementation(c.name), "seed": "sha256(image_id|name|severity)[:4]"}}


def resumed_speed(now: dict[str, Any], stored: dict[str, Any] | None, device: str,
                  resumed: int) -> tuple[dict[str, Any], str]:
    """The run's timings with ``images_per_s`` over every image whose speed was measured: this run's timed
    images, plus those stored with the cache when they were measured on the same device and layout.
    ``None`` when nothing was measured (a run served entirely from a cache without a stored speed, or no
    image past the warm-up): a speed is never made up.  Returns the timings and the device they describe."""
    n, wall = int(now.get("timed_images", 0)), float(now.get("wall_s", 0.0))
    if n == 0 or wall <= 0:
        n, wall = 0, 0.0
    cached = None
    if stored is not None and resumed and (n == 0 or stored["device"] == device):
        cached = stored
        n, wall = n + stored["timed_images"], wall + stored["wall_s"]
        device = stored["device"]
    out = {**now, "images_per_s": n / wall if n and wall > 0 else None, "speed_images": n, "speed_wall_s": wall,
           "speed_from_cache": cached}
    return out, device


def fusion_label(spec: ModelSpec, opts: EvalOptions, replaced: str | None) -> str | None:
    """What ran the model's own panoptic fusion: ``panbench`` (its vectorized implementation), ``mmdet`` (mmdet's
    loop); None when the model's own fusion did not run (``--postprocess maskwise|argmax``, a transformers model)."""
    if replaced:
        return "panbench"
    return "mmdet" if not spec.hf and opts.postprocess.name == "default" else None


def delta(res: dict[str, Any], published: dict[str, float | None]) -> dict[str, float | None]:
    """Measured minus published, per metric (None where the zoo publishes nothing)."""
    return {k: (res[k] - published[k]) if published.get(k) is not None else None for k in METRIC_KEYS}
