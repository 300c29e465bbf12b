"""``panbench eval``: one model on one dataset, from config to result record.

The pipeline of one run: load the model (:mod:`~panbench.evaluation.loading`), pick the device
and the ranks (:mod:`~panbench.evaluation.distributed`), resume from the cache
(:mod:`~panbench.evaluation.cache`), run inference in one process
(:mod:`~panbench.evaluation.loop`) or in forked CPU processes
(:mod:`~panbench.evaluation.cpu_procs`), reduce over the ranks, write the record
(:mod:`panbench.reporting.records`).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from panbench.analysis.scoring import RunAnalysis, run_fields
from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation.cache import StatsCache, cache_key, read_timing, write_timing
from panbench.evaluation.cache import clear as clear_cache
from panbench.evaluation.cpu_procs import cpu_procs_for, run_inference_cpu
from panbench.evaluation.device import device_name, pick_device, seed_everything
from panbench.evaluation.distributed import all_reduce_stats, barrier, dist_info, local_rank, reduce_timings, use_device
from panbench.evaluation.loading import LoadedModel, load_model
from panbench.evaluation.loop import Shard, run_inference
from panbench.evaluation.memory import peak_memory
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.progress import Progress
from panbench.evaluation.timings import Timings, precision_info
from panbench.models import mm
from panbench.models.fusion import install_postprocess
from panbench.models.registry import ModelSpec
from panbench.pq.evaluator import PanopticEvaluator
from panbench.pq.matching import METRIC_KEYS
from panbench.reporting.records import RunRecord, git_commit, make_record, versions, write_record


def evaluate_model(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions) -> RunRecord:
    """Evaluate ``spec`` on ``dataset``; returns the result record (written by rank 0)."""
    device = pick_device(opts.device)
    rank, world, device = dist_info(device)  # backend from the device; rank k on cuda:LOCAL_RANK
    use_device(device)  # current CUDA device and a fresh peak-memory counter for this model
    seed_everything(opts.seed)
    lm = load_model(spec, dataset.categories, opts.checkpoint, opts.trust_checkpoint, device)
    install_postprocess(lm.model, opts.postprocess, str(spec.config))
    fingerprint = dataset.fingerprint()  # hashes the annotation file: once per run
    key_parts = cache_key_parts(lm, fingerprint, opts, device, world, len(dataset.samples))
    run_dir = opts.cache_root / f"{spec.name}-{dataset.name}-{cache_key(key_parts)}"
    if not opts.resume and local_rank() == 0:  # start afresh, keep caching; once per node (each has its cache)
        clear_cache(run_dir)
    barrier()
    shard = Shard(list(range(rank, len(dataset.samples), world)), device, opts,
                  StatsCache(run_dir, opts.flush_every, tag=f"r{rank}", key_parts=key_parts),
                  analysis=RunAnalysis(opts.boundary))
    evaluator = PanopticEvaluator(dataset.categories)
    resumed = _resume(spec, evaluator, shard, rank)
    t0 = time.perf_counter()
    procs = cpu_procs_for(opts, device, world, len(shard.indices) - resumed)
    timings = _infer(spec, lm, dataset, evaluator, shard, procs, rank)
    all_reduce_stats(evaluator, device, shard.analysis)  # and every rank's per-image analysis records
    timings, memory = reduce_timings(timings, peak_memory(device))  # whole job under torchrun
    res = evaluator.evaluate()
    if res["n_images"] != len(dataset.samples):
        raise PanbenchError(f"internal: scored {res['n_images']} images of {len(dataset.samples)}; please report")
    cats = dataset.categories
    aset = shard.analysis.analysis_set(cats, dataset.image_ids)
    analyses = run_fields(aset, cats, shard.analysis.boundary_stats(len(cats), len(dataset.samples)))
    t_all = time.perf_counter() - t0
    label = device_name(device, procs) + (f" x {world} ranks" if world > 1 else "")  # speed is the whole job's
    timing_dict, label = resumed_speed(timings.as_dict(), read_timing(run_dir, f"r{rank}"), label, resumed)
    if timings.timed_images:  # what this run measured, with what the cache held, for the next resume
        write_timing(run_dir, f"r{rank}", {"device": label, "timed_images": timing_dict["speed_images"],
                                           "wall_s": timing_dict["speed_wall_s"]})
    record = make_record(
        res, model=spec.name, architecture=spec.architecture, backbone=spec.backbone, dataset=dataset.name,
        postprocess=opts.postprocess.label(),
        published=spec.published if dataset.name == "coco" else {},
        delta_to_published=delta(res, spec.published) if dataset.name == "coco" else {},
        params=mm.count_parameters(lm.model), device=label, world_size=world, batch_size=opts.batch_size,
        amp=opts.amp or "fp32", precision=precision_info(device, opts.amp),
        timings={**timing_dict, "total_s": t_all, "resumed_images": resumed}, memory=memory,
        provenance=provenance(spec, lm, dataset, fingerprint, opts), **analyses,
    )
    if rank == 0:
        write_record(opts.results_dir, record, analysis=aset)
    return record


def _resume(spec: ModelSpec, evaluator: PanopticEvaluator, shard: Shard, rank: int) -> int:
    """Add the images the cache holds to ``evaluator``; returns how many."""
    resumed = 0
    if shard.cache is not None:
        for i in shard.indices:
            if i in shard.cache.done:
                evaluator.add(shard.cache.done[i])
                shard.analysis.add(i, shard.cache.records[i])
                resumed += 1
        if resumed and rank == 0:
            print(f"resuming {spec.name}: {resumed} of {len(shard.indices)} images already scored "
                  f"({shard.cache.dir}); --no-resume starts afresh", file=sys.stderr)
    return resumed


def _infer(spec: ModelSpec, lm: LoadedModel, dataset: PanopticDataset, evaluator: PanopticEvaluator, shard: Shard,
           procs: int, rank: int) -> Timings:
    """Inference over the shard's images not cached yet, in one process or ``procs`` forked ones, with a
    progress bar that names the model and its post-processing and counts every image of this rank."""
    desc = f"eval {spec.name} [{shard.opts.postprocess.label()}] on {dataset.name}"
    shard.progress = Progress(len(shard.todo()), desc, enabled=shard.opts.progress and rank == 0)  # one bar per job
    try:
        if procs > 1:
            return run_inference_cpu(lm, dataset, evaluator, shard, procs)
        return run_inference(lm, dataset, evaluator, shard)
    finally:
        shard.progress.close()


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
        "postprocess": opts.postprocess.label(),
        "device_type": device.split(":")[0], "amp": opts.amp, "batch_size": opts.batch_size,
        "versions": {k: v.get(k) for k in ("panbench", "mmdet", "mmcv", "torch")},
        "boundary": opts.boundary,  # a cache made without boundary PQ lacks its per-image sums
    }
    if opts.batch_size > 1:
        parts["layout"] = {"world_size": world, "cpu_procs": cpu_procs_for(opts, device, world, n_images)}
    return parts


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


def delta(res: dict[str, Any], published: dict[str, float | None]) -> dict[str, float | None]:
    """Measured minus published, per metric (None where the zoo publishes nothing)."""
    return {k: (res[k] - published[k]) if published.get(k) is not None else None for k in METRIC_KEYS}
