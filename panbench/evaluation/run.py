"""``panbench eval``: one model on one dataset, from config to result record."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench import REPO_ROOT
from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation.cache import StatsCache, cache_key, read_timing, write_timing
from panbench.evaluation.cache import clear as clear_cache
from panbench.evaluation.loop import (  # noqa: E402
    EvalOptions,
    all_reduce_stats,
    barrier,
    cpu_procs_for,
    dist_info,
    local_rank,
    peak_memory,
    pick_device,
    precision_info,
    reduce_timings,
    run_inference,
    run_inference_cpu,
    seed_everything,
    use_device,
)
from panbench.models import checkpoints, mm
from panbench.models.postprocess import PostProcess
from panbench.models.postprocess import install as install_postprocess
from panbench.models.registry import ModelSpec
from panbench.pq.evaluator import PanopticEvaluator
from panbench.pq.matching import METRIC_KEYS
from panbench.reporting.records import git_commit, now_iso, versions, write_record


@dataclass
class Weights:
    path: Path | None
    sha256: str | None
    url: str | None


def resolve_weights(spec: ModelSpec, checkpoint: str | None) -> Weights:
    """The user's ``--checkpoint`` (verified if its name carries a zoo digest or a MANIFEST.json lists it),
    else the zoo download, else the committed demo weights (verified against their MANIFEST.json)."""
    if checkpoint:
        p = Path(checkpoint)
        if not p.is_file():
            raise PanbenchError(f"{p}: checkpoint not found; check --checkpoint")
        return Weights(p, checkpoints.verify(p, checkpoints.expected_digest(p)), None)
    if spec.checkpoint:
        path, digest = checkpoints.fetch(spec.checkpoint, spec.sha256_prefix)
        return Weights(path, digest, spec.checkpoint)
    committed = sorted((REPO_ROOT / "checkpoints" / spec.dataset).glob(f"{spec.name}-*.pth"))
    if committed:  # the demo models' weights live in the repository
        p = committed[-1]
        return Weights(p, checkpoints.verify(p, checkpoints.expected_digest(p)), None)
    raise PanbenchError(f"{spec.config}: no checkpoint URL in the config's panbench block and none under "
                        f"checkpoints/{spec.dataset}/; pass --checkpoint PATH")


@dataclass
class LoadedModel:
    model: Any
    names: list[str]
    label2cat: list[int]
    weights: Weights
    pipeline: Any
    cfg_text: str
    cfg_hash: str


def load_model(spec: ModelSpec, categories: Any, checkpoint: str | None, trust: bool, device: str) -> LoadedModel:
    """Config -> model with checked weights on ``device``, its class mapping and test pipeline."""
    cfg = mm.load_config(spec.config)
    mm.panoptic_only(cfg)
    cfg_text, cfg_hash = mm.config_text_and_hash(cfg)
    names = mm.class_names(cfg)
    label2cat = mm.label_to_category(names, categories, str(spec.config))
    model = mm.build_model(cfg, spec.config)
    mm.check_thing_split(model, names, categories, str(spec.config))
    weights = resolve_weights(spec, checkpoint)
    state, meta = checkpoints.load_checkpoint(weights.path, trust=trust)
    mm.load_weights(model, state, weights.path, names, meta)
    del state
    model.to(device)
    return LoadedModel(model, names, label2cat, weights, mm.test_pipeline(cfg), cfg_text, cfg_hash)


def evaluate_model(
    spec: ModelSpec,
    dataset: PanopticDataset,
    opts: EvalOptions,
    checkpoint: str | None = None,
    trust_checkpoint: bool = False,
    results_dir: Path = Path("results"),
    command: str | None = None,
    postprocess: PostProcess | None = None,
) -> dict[str, Any]:
    """Evaluate ``spec`` on ``dataset``; returns the result record (written by rank 0)."""
    device = pick_device(opts.device)
    rank, world, device = dist_info(device)  # backend from the device; rank k on cuda:LOCAL_RANK
    use_device(device)  # current CUDA device and a fresh peak-memory counter for this model
    seed_everything(opts.seed)
    lm = load_model(spec, dataset.categories, checkpoint, trust_checkpoint, device)
    model, names, label2cat, weights, pipeline = lm.model, lm.names, lm.label2cat, lm.weights, lm.pipeline
    cfg_text, cfg_hash = lm.cfg_text, lm.cfg_hash
    pp = postprocess or PostProcess()
    install_postprocess(model, pp, str(spec.config))
    postprocess = pp.label()

    fingerprint = dataset.fingerprint()  # hashes the annotation file: once per run
    key_parts = cache_key_parts(cfg_hash, weights.sha256, fingerprint, postprocess, opts, device, world,
                                len(dataset.samples))
    run_dir = opts.cache_root / f"{spec.name}-{dataset.name}-{cache_key(key_parts)}"
    if not opts.resume and local_rank() == 0:  # start afresh, keep caching; once per node (each has its cache)
        clear_cache(run_dir)
    barrier()
    cache = StatsCache(run_dir, opts.flush_every, tag=f"r{rank}", key_parts=key_parts)
    indices = list(range(rank, len(dataset.samples), world))
    evaluator = PanopticEvaluator(dataset.categories)
    resumed = 0
    if cache is not None:
        for i in indices:
            if i in cache.done:
                evaluator.stats.add_image(cache.done[i])
                resumed += 1
        if resumed and rank == 0:
            print(f"resuming {spec.name}: {resumed} of {len(indices)} images already scored "
                  f"({cache.dir}); --no-resume starts afresh", file=sys.stderr)
    t0 = time.perf_counter()
    procs = cpu_procs_for(opts, device, world, len(indices) - resumed)
    if procs > 1:
        timings = run_inference_cpu(model, pipeline, dataset, label2cat, len(names), opts, evaluator, cache, indices,
                                    procs)
    else:
        timings = run_inference(model, pipeline, dataset, label2cat, len(names), opts, evaluator, cache, indices,
                                device)
    all_reduce_stats(evaluator, device)
    timings, memory = reduce_timings(timings, peak_memory(device))  # whole job under torchrun
    res = evaluator.evaluate()
    if res["n_images"] != len(dataset.samples):
        raise PanbenchError(f"internal: scored {res['n_images']} images of {len(dataset.samples)}; please report")
    t_all = time.perf_counter() - t0
    label = device_name(device, procs)
    timing_dict, label = resumed_speed(timings.as_dict(), read_timing(run_dir, f"r{rank}"), label, resumed)
    if timings.timed_images:  # what this run measured, with what the cache held, for the next resume
        write_timing(run_dir, f"r{rank}", {"device": label, "timed_images": timing_dict["speed_images"],
                                           "wall_s": timing_dict["speed_wall_s"]})
    record = {
        "schema": 1,
        "model": spec.name,
        "architecture": spec.architecture,
        "backbone": spec.backbone,
        "dataset": dataset.name,
        "postprocess": postprocess,
        "date": now_iso(),
        "n_images": res["n_images"],
        "metrics": {k: res[k] for k in METRIC_KEYS},
        "semantic": {k: res[k] for k in ("pixel_acc", "mIoU", "mDice")},
        "n_categories": res["n_categories"],
        "per_class": res["per_class"],
        "published": spec.published if dataset.name == "coco" else {},
        "delta_to_published": delta(res, spec.published) if dataset.name == "coco" else {},
        "params": mm.count_parameters(model),
        "device": label,
        "world_size": world,
        "batch_size": opts.batch_size,
        "amp": opts.amp or "fp32",
        "precision": precision_info(device, opts.amp),
        "timings": {**timing_dict, "total_s": t_all, "resumed_images": resumed},
        "memory": memory,
        "provenance": {
            "config_path": str(spec.config),
            "config_sha256_16": cfg_hash,
            "config": cfg_text,
            "checkpoint": {"path": str(weights.path), "url": weights.url, "sha256": weights.sha256},
            "dataset": {"name": dataset.name, "root": str(dataset.root), "ann_file": str(dataset.ann_file),
                        "fingerprint": fingerprint, "image_ids": dataset.image_ids},
            "versions": versions(),
            "git_commit": git_commit(),
            "seed": opts.seed,
            "command": command,
            "category_names": {str(c): n for c, n in zip(dataset.categories.ids, dataset.categories.names)},
        },
    }
    if rank == 0:
        write_record(results_dir, record)
    return record


def cache_key_parts(cfg_hash: str, checkpoint_sha256: str | None, fingerprint: str, postprocess: str,
                    opts: EvalOptions, device: str, world: int, n_images: int) -> dict[str, Any]:
    """Everything that changes a per-image result, hashed into the cache's directory name: config, weights,
    dataset and subset, post-processing, device type, AMP, batch size (with batches above 1, images are
    padded to the largest of their batch, so the process layout that forms the batches counts too) and the
    versions of the code that computes the numbers."""
    v = versions()
    parts: dict[str, Any] = {
        "config": cfg_hash, "checkpoint": checkpoint_sha256, "dataset": fingerprint, "postprocess": postprocess,
        "device_type": device.split(":")[0], "amp": opts.amp, "batch_size": opts.batch_size,
        "versions": {k: v.get(k) for k in ("panbench", "mmdet", "mmcv", "torch")},
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


def device_name(device: str, procs: int = 1) -> str:
    """The GPU's name, or the CPU with its torch threads (and forked processes)."""
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    def threads(n: int) -> str:
        return f"{n} thread{'s' if n != 1 else ''}"

    if procs > 1:
        return f"cpu ({cpu}, {procs} processes x {threads(max(1, torch.get_num_threads() // procs))})"
    return f"cpu ({cpu}, {threads(torch.get_num_threads())})"
