"""What the evaluation needs from a model family (as detectron2's models hand ``panoptic_seg`` to its evaluator):
:class:`PanopticModel` (with the optional :class:`Corruptible` and :class:`DeferredFusion`), and the functions of a
family's subpackage, :class:`FamilyEntry`.  The eval loop, the out-of-memory retry, the FLOPs counter,
``panbench speed``, ``--postprocess`` / ``--fusion``, ``panbench viz`` and ``--corruption`` drive a model through
these members only; a family without :meth:`Corruptible.pipeline_with` is refused ``--corruption``, never
scored on clean images in its place.  Implementations: :class:`panbench.models.mmdet.family.MMDetModel`
(MMDetection configs) and :class:`panbench.models.hf.model.HFPanoptic` (Hugging Face ``transformers``).

Adding a family (detectron2, a plain torch model) is one subpackage under ``panbench/models/`` whose ``__init__`` has
the functions of :class:`FamilyEntry`, one row in :data:`panbench.models.families.FAMILIES`, and its models' rows in
the registry.  ``to_segments`` is the only reader of what ``forward`` returns, so a family keeps its own output format
(docs/models.md, "Model families").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from panbench.analysis.ap import Instances
    from panbench.models.postprocess import PostProcess
    from panbench.models.registry import ModelSpec


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

    def input_hw(self, item: Any) -> tuple[int, int]:
        """One model input (a ``pipeline`` output) -> the (height, width) of the network's input image, after the
        pipeline's resize (what FLOPs and speed records name)."""

    def batch_key(self, item: Any) -> tuple[int, ...]:
        """One model input -> the shape the network's input gets when the image runs alone (after the padding a
        batch of one gets).  Images with equal keys form a batch in which each gets exactly the input it gets
        alone, so ``--batch-size`` never changes a prediction through padding (the loop batches by this key)."""

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

    def timed_fusion(self, seconds: list[float], sync: Callable[[], None]) -> AbstractContextManager[None]:
        """While entered, the seconds of each call of the model's own panoptic fusion go to ``seconds``."""

    def configure(self, postprocess: PostProcess, fusion: str) -> str | None:
        """``--postprocess`` and ``--fusion`` applied to this model; returns what runs the model's own panoptic
        fusion (the record's ``fusion``: ``panbench``, ``mmdet``), None when it does not run (another
        post-processing replaced it, or the family has one implementation only).  Refuses (``PanbenchError``) a
        post-processing the model cannot take."""

    def query_masks(self, item: Any, device: str, top: int) -> tuple[Any, list[tuple[int, float, np.ndarray]]]:
        """One model input -> (its output, the masks of its ``top`` best-scoring queries: (label, score, mask
        probabilities at the image's size)); no masks when the model has no queries (what ``panbench viz`` draws)."""

    def compile_targets(self) -> list[tuple[str, Any]]:
        """The torch modules ``panbench speed --compile`` compiles, with their names (the network, not the
        post-processing)."""

    def to(self, device: str) -> Any:
        """Move the model to ``device`` (the out-of-memory fallback runs one image on the CPU)."""


@runtime_checkable
class Corruptible(Protocol):
    """The optional member of a :class:`PanopticModel` that says where ``--corruption`` corrupts the image; a family
    without it is refused ``--corruption`` (:func:`panbench.robustness.pipeline.check_corruptible`)."""

    def pipeline_with(self, item: dict[str, Any], image_step: Callable[[np.ndarray], np.ndarray]) -> Any:
        """``pipeline(item)`` with ``image_step`` applied to the decoded image (RGB, uint8, H x W x 3) before the
        rest of the pipeline (MMDetection's ``Corrupt`` step, after ``LoadImageFromFile``)."""


@runtime_checkable
class DeferredFusion(Protocol):
    """Optional members of a :class:`PanopticModel` whose panoptic fusion can run after its forward: the eval loop
    forwards under :meth:`deferred` and runs :meth:`finish` on its post-processing thread while the next batch's
    forward runs.  A family without them fuses inside ``forward``."""

    def deferred(self) -> AbstractContextManager[None]:
        """While entered, ``forward`` returns outputs whose fusion is left to :meth:`finish`."""

    def finish(self, outputs: list[Any]) -> list[Any]:
        """One forward's outputs with their deferred fusion run (outputs made outside :meth:`deferred` as they
        are): what ``to_segments``, ``to_instances`` and ``to_semantic`` read."""


@dataclass(frozen=True)
class Weights:
    """Where a model's weights came from: the file (or directory), its sha256, the URL it was downloaded from."""

    path: Path | None
    sha256: str | None
    url: str | None


@dataclass(frozen=True)
class Built:
    """What a family's ``load_model`` gives: the model and what the run records about it (its provenance)."""

    model: PanopticModel
    weights: Weights
    cfg_text: str  # the resolved configuration, as recorded
    cfg_hash: str  # its sha256, first 16 hex digits
    named: tuple[str, str] | None = None  # (architecture, backbone) read from an unregistered model's own config
    # what the loaded model runs on beyond its family's ``Family.packages`` (a backbone's: timm for a transformers
    # DETR whose config builds a timm backbone); their versions are in the record and the resume cache's key
    packages: tuple[str, ...] = ()


class FamilyEntry(Protocol):
    """The functions of a family's subpackage (:data:`panbench.models.families.FAMILIES` names it)."""

    def load_model(self, spec: ModelSpec, categories: Any, checkpoint: str | None, trust: bool, device: str,
                   cfg_options: dict[str, Any] | None, ap: bool,
                   any_rank: Callable[[bool], bool] | None) -> Built:
        """The model of ``spec`` on ``device``, weights checked, labels mapped to ``categories``; ``ap``: its
        instance output on (when it has one); ``any_rank`` waits for a download on the other ranks."""

    def check_options(self, spec: ModelSpec, categories: Any, cfg_options: dict[str, Any] | None,
                      postprocess: str) -> None:
        """Before any model runs: ``spec`` takes these options (refused in one line otherwise)."""

    def weights_state(self, spec: ModelSpec) -> str:
        """``cached``, ``download``, ``committed`` or ``none`` (what ``panbench ls`` shows)."""

    def random_model(self, spec: ModelSpec, device: str) -> PanopticModel | None:
        """The model with random weights and no dataset (for counting parameters and FLOPs), None when it cannot
        be built without a download."""

    def config_files(self, spec: ModelSpec) -> list[Path] | None:
        """The files that, with the versions of the family's packages, fix the model :meth:`random_model`
        builds (the key of its cached parameter and FLOPs counts, ``panbench ls``); None: not known without
        building it (its counts are not cached).  Optional: a family without it is counted every time."""


def count_parameters(module: Any) -> int:
    """The number of parameters of a torch module (the record's ``params``)."""
    return int(sum(p.numel() for p in module.parameters()))


@contextmanager
def wrapped_method(obj: Any, name: str, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """While entered, ``obj.<name>`` is ``wrap(<the method>)`` on this instance only; afterwards an instance's own
    method (one set by ``configure``) is put back, a class's uncovered."""
    orig, own = getattr(obj, name), name in vars(obj)
    setattr(obj, name, wrap(orig))
    try:
        yield
    finally:
        setattr(obj, name, orig) if own else delattr(obj, name)


@contextmanager
def timed_calls(obj: Any, name: str, seconds: list[float], sync: Callable[[], None]) -> Iterator[None]:
    """While entered, the seconds of each call of ``obj.<name>`` go to ``seconds``, ``sync`` run before each clock
    read (CUDA kernels are asynchronous): what the families' fusion timers run."""
    if obj is None or not hasattr(obj, name):
        yield
        return

    def timed(orig: Callable) -> Callable:
        def wrapper(*a: Any, **k: Any) -> Any:
            sync()
            t = time.perf_counter()
            out = orig(*a, **k)
            sync()
            seconds.append(time.perf_counter() - t)
            return out

        return wrapper

    with wrapped_method(obj, name, timed):
        yield
