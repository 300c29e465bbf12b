"""GFLOPs per image, as the papers report them (PyTorch's ``FlopCounterMode``, halved to fvcore's 1 FLOP per
multiply-add), counted in a pass of their own after the timed inference, and the model facts cache that keeps them
(docs/models.md, "GFLOPs" and "The model facts cache")."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench import package
from panbench.downloads import sha256_file
from panbench.errors import InputError
from panbench.models.families import family
from panbench.models.protocol import PanopticModel, count_parameters
from panbench.records.io import atomic_write_text
from panbench.records.provenance import now_iso
from panbench.resources import user_cache_dir

if TYPE_CHECKING:
    from panbench.models.registry import ModelSpec

COUNTER = "torch.utils.flop_counter.FlopCounterMode"
CONVENTION = "1 multiply-add = 1 FLOP (FlopCounterMode's count halved, as fvcore counts)"
FACTS_FORMAT = 1  # part of every key: facts counted another way are never read
NO_FACTS_CACHE = "PANBENCH_NO_FACTS_CACHE"  # "1": count everything again, keep nothing
_WARNED: list[str] = []  # the cache folders already said to be unwritable (once per process)


def facts_dir() -> Path:
    return user_cache_dir() / "model-facts"


def facts_cache_on() -> bool:
    """Whether the cache is read and written (``PANBENCH_NO_FACTS_CACHE=1``: not)."""
    return os.environ.get(NO_FACTS_CACHE, "").strip() not in ("1", "true", "yes")


def _canonical(parts: dict[str, Any]) -> str:
    return json.dumps({**parts, "facts_format": FACTS_FORMAT}, sort_keys=True, default=str)


def facts_path(parts: dict[str, Any]) -> Path:
    return facts_dir() / f"{hashlib.sha256(_canonical(parts).encode()).hexdigest()[:32]}.json"


def read_facts(parts: dict[str, Any]) -> dict[str, Any] | None:
    """The facts stored under ``parts`` with the time they were counted (``counted``, ISO 8601); None when the
    cache is off, holds none, or its entry does not read back as an entry of these very parts."""
    if not facts_cache_on():
        return None
    try:
        entry = json.loads(facts_path(parts).read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(entry, dict) or not isinstance(entry.get("facts"), dict)
            or json.dumps(entry.get("key_parts"), sort_keys=True) != _canonical(parts)):
        return None
    return {**entry["facts"], "counted": entry.get("counted")}


def write_facts(parts: dict[str, Any], facts: dict[str, Any]) -> None:
    """Store ``facts`` under ``parts``; a cache folder that cannot be written is said once on stderr, then skipped."""
    if not facts_cache_on():
        return
    path = facts_path(parts)
    entry = {"key_parts": json.loads(_canonical(parts)), "facts": facts, "counted": now_iso()}
    try:
        atomic_write_text(path, json.dumps(entry, indent=1, sort_keys=True, default=str))
    except OSError as e:
        if str(path.parent) not in _WARNED:
            _WARNED.append(str(path.parent))
            print(f"note: {path.parent}: cannot keep model facts there ({e.strerror or e}); they are counted again "
                  "next time (set PANBENCH_CACHE to a writable folder)", file=sys.stderr)


def package_versions(packages: Sequence[str]) -> dict[str, str | None]:
    """The installed versions of panbench, torch and ``packages`` from their metadata: part of every key."""
    out: dict[str, str | None] = {"panbench": package.__version__}
    for name in sorted({"torch", *packages}):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    if "mmcv" in packages and out["mmcv"] is None:  # the pure-Python wheel (panbench.ops serves its ops)
        with suppress(metadata.PackageNotFoundError):
            out["mmcv-lite"] = metadata.version("mmcv-lite")
    return out


class _TotalOnly(nullcontext[None]):
    """Stands in for FlopCounterMode's module tracker, whose hooks need a gradient function on every module input
    that OneFormer's task embeddings lack under ``inference_mode``: only the total ("Global") is read."""

    parents = {"Global"}


def _no_flops(*args: Any, **kwargs: Any) -> int:
    return 0


_no_flops._get_raw = True  # type: ignore[attr-defined]  # called with the op's own arguments


def _uncounted_ops(torch: Any) -> list[Any]:
    """Ops whose decompositions hold no op the counter counts (indexing and pointwise arithmetic only), each packet
    and its overloads (the counter decomposes an overload it has no formula of): counted as 0 where they run, not
    decomposed into Python-level ops that count 0 in many times the time."""
    aten = torch.ops.aten
    packets = (aten.upsample_bilinear2d, aten.upsample_nearest2d, aten.upsample_bicubic2d, aten.grid_sampler_2d)
    return [*packets, *(getattr(p, o) for p in packets for o in p.overloads())]


def _onednn_conv_flops(x_shape: Any, w_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """``aten.mkldnn_convolution``'s FLOPs (the CPU forward's convolutions, :mod:`panbench.models.numerics`): those
    of the convolution it computes, as the counter counts ``aten.convolution``."""
    from torch.utils.flop_counter import conv_flop_count

    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def count_step(model: PanopticModel, data: dict[str, Any], device: str) -> int:
    """Multiply-adds of one ``forward`` on one pipeline output ``data``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {**dict.fromkeys(_uncounted_ops(torch), _no_flops), torch.ops.aten.mkldnn_convolution: _onednn_conv_flops}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    counter.mod_tracker = _TotalOnly()  # type: ignore[assignment]  # the total only: no per-module hooks
    with torch.inference_mode(), counter:
        model.forward([data], device, None)
    return counter.get_total_flops() // 2


def model_gflops(model: PanopticModel, datas: list[dict[str, Any]], device: str) -> dict[str, Any] | None:
    """The record's ``flops`` (docs/models.md, "GFLOPs") over ``datas`` (pipeline outputs); None without any."""
    if not datas:
        return None
    t = time.perf_counter()
    per = [count_step(model, d, device) for d in datas]
    shapes = [list(model.input_hw(d)) for d in datas]
    return {"gflops": statistics.fmean(per) / 1e9, "images": len(per), "per_image_gflops": [p / 1e9 for p in per],
            "input_hw": shapes, "counter": COUNTER, "convention": CONVENTION, "seconds": time.perf_counter() - t}


def dataset_gflops(lm: Any, dataset: Any, n: int, device: str) -> dict[str, Any] | None:
    """``eval --flops-images N``: :func:`model_gflops` on the first ``n`` images of ``dataset``."""
    from panbench.evaluation.inference import Items

    items = Items(dataset, list(range(min(n, len(dataset.samples)))), lm.pipeline)
    loaded = [items[k] for k in range(len(items))]
    if errors := [it["error"] for it in loaded if it["error"]]:
        raise InputError(errors[0])
    return model_gflops(lm.family, [it["data"] for it in loaded], device)


def random_gflops(model: Any, image_hw: tuple[int, int] = (480, 640), device: str = "cpu") -> dict[str, Any]:
    """GFLOPs of a model with random weights on one synthetic ``image_hw`` image (``panbench ls --params``)."""
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        img = Path(d) / "image.jpg"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (*image_hw, 3), dtype=np.uint8)).save(img)
        data = model.pipeline({"img_path": str(img), "img_id": 0})
    return model_gflops(model, [data], device) or {}


def run_gflops(lm: Any, dataset: Any, n: int, device: str, settings: dict[str, Any],
               packages: tuple[str, ...]) -> dict[str, Any] | None:
    """Eval's FLOPs pass (:func:`dataset_gflops`), served from the model facts cache under the key docs/models.md,
    "The model facts cache", names (``settings``: post-processing, fusion, AP output, corruption)."""
    try:
        images = [[s.image_id, sha256_file(s.image_path)] for s in dataset.samples[:n]]
    except OSError:
        images = []  # an image that does not read: the pass names it
    parts = None
    if images and lm.weights.sha256:
        parts = {"fact": "eval gflops", "config": lm.cfg_hash, "checkpoint": lm.weights.sha256, "images": images,
                 "device_type": device.split(":")[0], "settings": settings, "versions": package_versions(packages)}
        hit = read_facts(parts)
        if hit is not None and _counted(hit.get("flops")):
            return {**hit["flops"], "from_cache": hit["counted"]}
    flops = dataset_gflops(lm, dataset, n, device)
    if flops is not None and parts is not None:
        write_facts(parts, {"flops": flops})
    return None if flops is None else {**flops, "from_cache": None}


def random_facts(spec: ModelSpec, gflops: bool, image_hw: tuple[int, int] = (480, 640),
                 on_count: Callable[[], None] | None = None) -> dict[str, Any] | None:
    """``panbench ls``: the parameters and, with ``gflops``, :func:`random_gflops` of ``spec``'s model (None when its
    family cannot build it without a download); ``on_count`` is called before a model not cached is built."""
    fam = family(spec.framework)
    files: list[Path] | None = fam.config_files(spec)  # None: counted every time
    parts, cached = None, {}
    if files is not None:
        parts = {"fact": "random model", "framework": spec.framework, "config_files": [sha256_file(f) for f in files],
                 "image_hw": list(image_hw), "device": "cpu", "versions": package_versions(fam.packages)}
        cached = {k: v for k, v in (read_facts(parts) or {}).items() if k != "counted"}
        if isinstance(cached.get("params"), int) and (not gflops or _counted(cached.get("flops"))):
            return {**cached, "from_cache": True}
        if on_count is not None:
            on_count()
    t = time.perf_counter()
    if (model := fam.open(spec).random_model("cpu")) is None:
        return None
    facts = {**cached, "params": count_parameters(model.module)}
    if gflops:
        facts["flops"] = random_gflops(model, image_hw)
    facts["seconds"] = time.perf_counter() - t
    if parts is not None:
        write_facts(parts, facts)
    return {**facts, "from_cache": False}


def _counted(flops: Any) -> bool:
    """Whether a cached ``flops`` reads as a count (an entry edited by hand does not)."""
    return isinstance(flops, dict) and isinstance(flops.get("gflops"), (int, float))
