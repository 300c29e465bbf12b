"""The fields of a run's record, and the parts of its resume-cache key, from what the run loaded and measured; the
record is made by :func:`panbench.records.io.record_run` (``score --name``'s: :mod:`panbench.records.scored`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.analysis.ap import write_results
from panbench.data.catalog import DATASETS
from panbench.data.datasets import PanopticDataset
from panbench.evaluation.loading import LoadedModel
from panbench.evaluation.options import EvalOptions
from panbench.models.registry import ModelSpec
from panbench.pq.matching import METRIC_KEYS
from panbench.records.provenance import git_commit, versions
from panbench.records.rows import MIN_TIMED_IMAGES
from panbench.robustness.corruptions import implementation

if TYPE_CHECKING:
    from panbench.evaluation.storage import PredictionWriter
    from panbench.evaluators import Evaluators

OWN_WEIGHTS = "own checkpoint (--checkpoint): the published numbers are of other weights"


def own_weights(spec: ModelSpec, checkpoint: str | None, sha256: str | None) -> bool:
    """Whether ``--checkpoint`` gave other weights than the registry's (a copy of the zoo's file, whose sha256
    starts with the registry's prefix, is the zoo's)."""
    return bool(checkpoint) and not (spec.sha256_prefix and sha256 and sha256.startswith(spec.sha256_prefix))


def published_source(spec: ModelSpec) -> str | None:
    """Where ``spec.published`` comes from (None when nothing is published)."""
    return spec.published_source if any(v is not None for v in spec.published.values()) else None


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
                    "fingerprint": fingerprint, "image_ids": dataset.image_ids, **card_stamp(dataset.name)},
        "versions": versions(lm.packages),
        "git_commit": git_commit(),
        "seed": opts.seed,
        "command": opts.command,
        "cfg_options": opts.cfg_options,
        "category_names": {str(c): n for c, n in zip(dataset.categories.ids, dataset.categories.names)},
        **({"pipeline": lm.inference} if lm.inference is not None else {}),  # an hf: model's --pipeline
    }


def card_stamp(name: str) -> dict[str, Any]:
    """``{"card": {"version", "hash"}}`` of a dataset panbench knows (its protocol card), {} for a user's own."""
    return {"card": DATASETS[name].card.stamp()} if name in DATASETS else {}


def cache_key_parts(lm: LoadedModel, fingerprint: str, opts: EvalOptions, device: str) -> dict[str, Any]:
    """Everything that changes a per-image result, hashed into the cache's directory name (docs/eval.md, "The
    resume cache"); the batch size for the stored speed, not the process layout (docs/eval.md, "Batch size")."""
    v = versions(lm.packages)
    parts: dict[str, Any] = {
        "config": lm.cfg_hash, "checkpoint": lm.weights.sha256, "dataset": fingerprint,
        "postprocess": opts.postprocess.label(), "fusion": opts.fusion,
        "device_type": device.split(":")[0], "amp": opts.amp, "batch_size": opts.batch_size,
        "versions": {k: v[k] for k in ("panbench", *lm.packages, "mmcv_ops") if k in v},
        "boundary": opts.boundary,  # a cache made without boundary PQ lacks its per-image sums
        "ap": opts.ap,  # a cache made with --no-ap lacks the instance predictions
    }
    if lm.inference is not None:  # also in the config hash; named apart so that the key file shows it
        parts["pipeline"] = lm.inference
    if opts.strict:  # a cache that scored unlisted ground-truth ids must not serve a --strict run
        parts["strict"] = True
    if opts.corruption is not None:  # only then: a clean run keeps the key it had
        parts.update(corruption_fields(opts))
    if opts.cfg_options:  # also in the config hash; named apart so that the key file shows them
        parts["cfg_options"] = opts.cfg_options
    return parts


def dataset_label(name: str, opts: EvalOptions) -> str:
    """The record's dataset: ``coco``, or ``coco+fog-3`` for a corrupted run (never the clean run's row)."""
    return name if opts.corruption is None else f"{name}+{opts.corruption.label}"


def corruption_fields(opts: EvalOptions) -> dict[str, Any]:
    """The record's ``corruption`` (none for a clean run): name, severity, group and implementation."""
    if (c := opts.corruption) is None:
        return {}
    return {"corruption": {"name": c.name, "severity": c.severity, "group": c.group,
                           "implementation": implementation(c.name), "seed": "sha256(image_id|name|severity)[:4]"}}


def resumed_speed(now: dict[str, Any], stored: dict[str, Any] | None, device: str,
                  resumed: int) -> tuple[dict[str, Any], str]:
    """(the run's timings with ``images_per_s`` over every image whose speed was measured, the device they
    describe), as docs/eval.md, "The resume cache", says."""
    n, wall = int(now.get("timed_images", 0)), float(now.get("wall_s", 0.0))
    if n == 0 or wall <= 0:
        n, wall = 0, 0.0
    cached = None
    if stored is not None and resumed and (n == 0 or stored["device"] == device):
        cached = stored
        n, wall = n + stored["timed_images"], wall + stored["wall_s"]
        device = stored["device"]
    out = {**now, "images_per_s": n / wall if n >= MIN_TIMED_IMAGES and wall > 0 else None, "speed_images": n,
           "speed_wall_s": wall, "speed_from_cache": cached}
    return out, device


def delta(res: dict[str, Any] | None, published: dict[str, float | None],
          fields: dict[str, Any] | None = None) -> dict[str, float | None]:
    """Measured minus published, per metric (None where the zoo publishes nothing); none without measured numbers
    under the published ones' rules (``res`` None).  AP and mIoU where published and measured (``fields``' ``ap``,
    and ``miou`` of the model's semantic output only: the published mIoU is its semantic inference's, which an mIoU
    of the panoptic output is not; an hf: model's are transformers' instance and semantic post-processing)."""
    if res is None:
        return {}
    out = {k: (res[k] - published[k]) if published.get(k) is not None else None for k in METRIC_KEYS}
    f = fields or {}
    semantic = f.get("miou") if f.get("miou_source") == "semantic" else None
    measured = {"AP": (f.get("ap") or {}).get("AP"), "mIoU": semantic}
    for k, value in measured.items():
        if published.get(k) is not None:
            out[k] = None if value is None else value - published[k]
    return out


def under_rules(res: dict[str, Any], fields: dict[str, Any], rule: str | None) -> dict[str, Any] | None:
    """The metrics under ``rule`` (the published numbers'): ``res`` for panopticapi's, the run's ``rules`` entry for
    another; None where the rules are unknown or the run did not compute them (no difference across rules)."""
    return res if rule == "panopticapi" else (fields.get("rules") or {}).get(rule or "")


def save_instances(writer: PredictionWriter | None, evaluators: Evaluators) -> Path | None:
    """The run's instance predictions as COCO instance results (``loadRes``), with ``--save-predictions`` and AP."""
    if writer is None or (results := evaluators.instance_results()) is None:
        return None
    return write_results(writer.root / f"{writer.name}_instances.json", results)
