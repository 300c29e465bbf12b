"""What the evaluation needs from a model family (as detectron2's models hand ``panoptic_seg`` to its
evaluator): :class:`PanopticModel`.

The eval loop (:mod:`panbench.evaluation.loop`), the out-of-memory retry (:mod:`panbench.evaluation.memory`)
and the FLOPs counter drive a model through these members only; ``panbench viz`` also reads the query masks
of mmdet's MaskFormer heads, and the corruption wrapper (:mod:`panbench.robustness.pipeline`) puts its step
after an mmdet pipeline's image loading.
Implementations: :class:`panbench.models.mmdet.family.MMDetModel` (MMDetection configs) and
:class:`panbench.models.hf.model.HFPanoptic` (Hugging Face ``transformers``).

Adding a family (detectron2, a plain torch model) is one module under ``panbench/models/``: a class with
the members below and a function that builds it (weights checked, labels mapped to the dataset's category
ids), called by :func:`panbench.evaluation.loading.load_model` for that family's ``--model`` entries and
returned as ``LoadedModel.family``.  ``to_segments`` is the only reader of what ``forward`` returns, so a
family keeps its own output format (docs/models.md, "Model families").
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from panbench.analysis.ap import Instances


@runtime_checkable
class PanopticModel(Protocol):
    """A panoptic model of one family, on one device, with its labels mapped to the dataset's categories."""

    names: list[str]  # the model's label names, in label order
    label2cat: list[int]  # model label -> dataset category id
    instance_source: str | None  # what gives ``to_instances`` (one of ``panbench.analysis.ap.AP_SOURCES``); None: no AP

    @property
    def module(self) -> Any:
        """The torch module: its parameters and state_dict are the model's (what ``--postprocess`` patches)."""

    def pipeline(self, item: dict[str, Any]) -> Any:
        """``{"img_path", "img_id"}`` (or a decoded RGB ``img``) -> one model input (runs in DataLoader workers)."""

    def forward(self, batch: list[Any], device: str, amp: str | None) -> list[Any]:
        """Model inputs -> one output per image, under ``torch.autocast`` when ``amp`` is ``bf16``/``fp16``."""

    def to_segments(self, output: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One image's output -> (uint32 id map, 0 = VOID; COCO-panoptic ``segments_info`` in dataset ids)."""

    def to_instances(self, output: Any) -> Instances | None:
        """One image's instance predictions with scores (masks at the image's full size, dataset category ids),
        what COCO mask AP reads; None when the model gives none."""

    def to_semantic(self, output: Any) -> np.ndarray | None:
        """One image's semantic output, (H, W) int64 dataset category ids (-1: VOID); None: the record's mIoU is
        the panoptic output's."""

    def timed_fusion(self, sink: list[float], sync: Callable[[], None]) -> AbstractContextManager[None]:
        """While entered, the seconds of each call of the model's own panoptic fusion go to ``sink``."""

    def to(self, device: str) -> Any:
        """Move the model to ``device`` (the out-of-memory fallback runs one image on the CPU)."""
