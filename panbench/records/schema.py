"""The result record of one run (``results/runs/*.json``): :class:`RunRecord`, a frozen dataclass whose fields are
declared in the order they are written, and the typed blocks it holds.  It also reads as a read-only mapping of the
fields its JSON holds (``rec["metrics"]``, ``rec.get("ci")``, ``"ci" in rec``), for scripts and notebooks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from panbench.analyses import ANALYSES

SCHEMA_VERSION = 2  # the "schema" field of every record; raise it when a field changes meaning
# 2: the analysis fields (those of panbench.analyses.ANALYSES, and analysis_file); schema-1 records lack them
# and load through io.load_record
ANALYSIS_FIELDS = (*(f for a in ANALYSES for f in a.fields), "analysis_file")


class Selection(TypedDict, total=False):
    """Which images of the dataset ran."""

    limit: int | str | None  # --limit, or None
    subset: str | None  # the --subset file, or None
    images: int  # how many images ran


class CorruptionBlock(TypedDict, total=False):
    """The corruption of a --corruption run."""

    name: str  # one of the 15 COCO-C corruptions
    severity: int  # 1 to 5
    group: str  # noise, blur, weather, digital
    implementation: str  # what computed it (imagecorruptions and its version, or panbench's)


class UnlistedGT(TypedDict):
    """Ground-truth pixels whose PNG id segments_info does not list."""

    pixels: int  # how many pixels
    images: int  # in how many images


class SizeBlock(TypedDict, total=False):
    """PQ of one size class of thing segments."""

    PQ: float  # 0-100
    SQ: float  # 0-100
    RQ: float  # 0-100
    n: int  # categories with a segment of this size
    segments: int  # segments of this size


class ErrorBlock(TypedDict, total=False):
    """One error type of the oracle breakdown."""

    count: int  # segments of this type
    fp: int  # false positives it explains
    fn: int  # false negatives it explains
    delta_PQ: float  # PQ gained when an oracle fixes them, PQ points


@dataclass(frozen=True, kw_only=True)
class RunRecord(Mapping[str, Any]):
    """One result record, its fields in the order they are written.  ``panbench eval`` writes every field
    but the optional ones; ``panbench score --name`` (an external system) leaves out ``amp``, ``precision``,
    ``speed_context``, ``selection`` and ``corruption``."""

    schema: int = SCHEMA_VERSION  # SCHEMA_VERSION of the writer; 1 for records before the analyses
    model: str  # registry name, or the --name of an external system
    framework: str = "mmdet"  # what ran the model: "mmdet", "transformers" (hf: models), "external" (score --name)
    architecture: str | None = None  # PanopticFPN, MaskFormer, Mask2Former; "external"
    backbone: str | None = None  # e.g. R-50, Swin-L; "?" for an external system
    dataset: str = ""  # coco, demo; "coco+fog-3" for a corrupted run
    postprocess: str = "default"  # PostProcess.label(): default, argmax, maskwise(...); "external"
    fusion: str | None = None  # what ran the panoptic fusion: "panbench" or "mmdet"; None when none ran
    date: str = ""  # UTC, ISO 8601, seconds
    n_images: int = 0  # images scored
    metrics: dict[str, float]  # PQ, SQ, RQ and their _th / _st variants (METRIC_KEYS), 0-100
    semantic: dict[str, float] = field(default_factory=dict)  # pixel_acc, mIoU, mDice, 0-100
    n_categories: dict[str, int] = field(default_factory=dict)  # categories of the dataset: All, Things, Stuff
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)  # per category id: PQ, SQ, RQ, TP, FP, FN
    unlisted_gt: UnlistedGT | None = None  # ground-truth pixels with an unlisted PNG id, scored as panopticapi
    published: dict[str, float | None] = field(default_factory=dict)  # the published metrics (COCO only)
    delta_to_published: dict[str, float | None] = field(default_factory=dict)  # measured minus published
    published_source: str | None = None  # where ``published`` comes from; None when nothing is published
    params: int | None = None  # model parameters
    flops: dict[str, Any] | None = None  # GFLOPs per image (evaluation.flops); None with --flops-images 0
    device: str = ""  # GPU name, or "cpu (<cpu>, N threads)"; "external"
    world_size: int = 1  # torchrun ranks
    batch_size: int | None = None  # images per forward pass, as asked (--batch-size: a setting of the table's rows)
    largest_batch: int | None = None  # the most images a forward pass held (fewer: not enough images of one shape)
    amp: str | None = None  # fp32, bf16, fp16; None for an external system
    precision: dict[str, Any] | None = None  # autocast mode and whether TF32 was allowed
    timings: dict[str, Any] = field(default_factory=dict)  # per-stage seconds, images_per_s (None: not measured)
    speed_context: dict[str, Any] | None = None  # what the speed was measured on and beside (evaluation.context)
    memory: dict[str, float] = field(default_factory=dict)  # peak CPU / GPU memory in MiB
    provenance: dict[str, Any] = field(default_factory=dict)  # config, checkpoint, dataset, versions, command
    selection: Selection | None = None  # which images ran; None for an external system
    ci: dict[str, list[float]] | None = None  # PQ, SQ, RQ, PQ_th, PQ_st -> [low, high], 95% image bootstrap
    by_size: dict[str, SizeBlock] | None = None  # small/medium/large thing segments
    pq_dagger: float | None = None  # PQ-dagger (Porzi et al. 2019), 0-100
    errors: dict[str, ErrorBlock] | None = None  # error type -> count, fp, fn, delta_PQ
    mask_quality: dict[str, float] | None = None  # TPs: loss (summed 1 - IoU), mean_loss, delta_PQ
    boundary: dict[str, float] | None = None  # boundary PQ: the nine METRIC_KEYS, 0-100; only with --boundary
    # PQ against the segment score threshold (panbench.analysis.scores): thresholds, the curves PQ, PQ_th, PQ_st, SQ,
    # RQ (0-100), best, own, gain, segments, unscored; None: no predicted segment has a score
    score_threshold: dict[str, Any] | None = None
    # the calibration of the segment scores: ece, ece_th, ece_st, ece_mass(_th, _st) (0-1), low/high (95% image
    # bootstrap), bins, bins_th, bins_st, n_bins, segments; None: no predicted segment has a score
    calibration: dict[str, Any] | None = None
    corruption: CorruptionBlock | None = None  # a --corruption run's corruption; None for a clean run
    # COCO mask AP of the thing classes (panbench.analysis.ap): AP, AP50, AP75, APs, APm, APl, 0-100 (-1: no
    # ground truth of that size); None: not computed
    ap: dict[str, float] | None = None
    ap_source: str | None = None  # what gave the scored instances (AP_SOURCES in panbench.analysis.ap)
    miou: float | None = None  # mIoU 0-100 of miou_source's output (panbench.analysis.semantic); None: not computed
    miou_source: str | None = None  # "semantic": the model's semantic output; "panoptic": its panoptic output
    # the format mistakes behind a low PQ (panbench.pq.diagnosis): [{"kind", "message", "pq_if_fixed"}], written
    # only when one is found
    diagnosis: list[dict[str, Any]] | None = None
    # the user's evaluators' fields (--evaluator, panbench.evaluators) by evaluator name; None: none ran
    evaluators: dict[str, dict[str, Any]] | None = None
    # PQ under other implementations' rules (--rules, panbench.pq.rules) by rule: PQ/SQ/RQ (0-100) for All, Things
    # and Stuff and per class; None: none asked for
    rules: dict[str, dict[str, Any]] | None = None
    # each rule's difference from panopticapi's PQ, split by quirk (panbench.pq.quirks): [{quirk, PQ, PQ_th, PQ_st}]
    rules_attribution: dict[str, list[dict[str, Any]]] | None = None
    # the rules of ``published`` (a key of ``rules``, "panopticapi": the metrics'); None: unknown or nothing published
    published_rules: str | None = None
    # the inference pipeline of ``published`` (an hf: model's: "original"); a run under another has no delta
    published_pipeline: str | None = None
    analysis_file: str | None = None  # the per-image AnalysisSet (.npz) below the results folder (io.write_record)
    record: str | None = None  # path of the JSON below the results folder (set by io.write_record)
    # the fields the JSON holds (the others were absent); empty: every field that is not None
    written: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RunRecord:
        """The record of a JSON object in today's schema (:func:`panbench.records.io.load_record` migrates older
        ones first); keys that are not fields (a fixture's note) are left out."""
        known = {k: v for k, v in obj.items() if k in RECORD_FIELDS}
        return cls(**known, written=frozenset(known))

    def is_written(self, name: str) -> bool:
        """Whether the JSON holds field ``name``."""
        return name in self.written if self.written else name in RECORD_FIELDS and getattr(self, name) is not None

    def keys_written(self) -> list[str]:
        """The JSON's fields, in the order they are written."""
        return [n for n in RECORD_FIELDS if self.is_written(n)]

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.keys_written()}

    def with_fields(self, **fields: Any) -> RunRecord:
        """A copy with ``fields`` set and written."""
        return dataclasses.replace(self, written=frozenset(self.keys_written()) | set(fields), **fields)

    def __getitem__(self, key: str) -> Any:
        if not self.is_written(key):
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_written())

    def __len__(self) -> int:
        return len(self.keys_written())


RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord) if f.name != "written")
