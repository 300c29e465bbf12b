"""What the evaluation needs from a model family (docs/models.md, "Model families"): :class:`PanopticModel` (with
the optional :class:`Corruptible`), the defaults of the abilities a family may lack (:class:`Abilities`, the one
place they are written), the family itself, :class:`Family`, and a model it opens for a run, :class:`ModelHandle`.
``to_segments`` is the only reader of what ``forward`` returns.  No numpy or torch: the families' modules, which
``panbench --help`` reads, derive from it."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from panbench.errors import PanbenchError

if TYPE_CHECKING:
    import numpy as np

    from panbench.analysis.ap import Instances
    from panbench.models.grid import Setting
    from panbench.models.postprocess import PostProcess
    from panbench.models.spec import ModelSpec


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
        """One model input -> the (height, width) of the network's input after the pipeline's resize (FLOPs, speed)."""

    def batch_key(self, item: Any) -> tuple[int, ...]:
        """One model input -> its network input's shape alone (the loop batches equal keys only)."""

    def forward(self, batch: list[Any], device: str, amp: str | None) -> list[Any]:
        """Model inputs -> one output per image, under ``torch.autocast`` when ``amp`` is ``bf16``/``fp16``."""

    def to_segments(self, output: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One image's output -> (uint32 id map, 0 = VOID; COCO-panoptic ``segments_info`` in dataset ids)."""

    def to_instances(self, output: Any) -> Instances | None:
        """One image's scored instances at full size in dataset ids (COCO mask AP); None when the model gives none."""

    def to_semantic(self, output: Any) -> np.ndarray | None:
        """One image's semantic output, (H, W) int64 dataset ids (-1: VOID); None: mIoU is the panoptic output's."""

    def timed_fusion(self, seconds: list[float], sync: Callable[[], None]) -> AbstractContextManager[None]:
        """While entered, the seconds of each call of the model's own panoptic fusion go to ``seconds``."""

    def configure(self, postprocess: PostProcess, fusion: str) -> str | None:
        """Apply ``--postprocess`` and ``--fusion``; returns the record's ``fusion`` (None: not run, or one kind)."""

    def query_masks(self, item: Any, device: str, top: int) -> tuple[Any, list[tuple[int, float, np.ndarray]]]:
        """One model input -> (its output, its ``top`` best queries' (label, score, mask probabilities))."""

    def compile_targets(self) -> list[tuple[str, Any]]:
        """(name, module) of what ``panbench speed --compile`` compiles: the network, not the post-processing."""

    def to(self, device: str) -> Any:
        """Move the model to ``device`` (the out-of-memory fallback runs one image on the CPU)."""

    # the abilities a family may lack: :class:`Abilities` has their defaults
    def deferred(self) -> AbstractContextManager[None]:
        """While entered, ``forward`` returns outputs whose fusion is left to :meth:`finish` (a GPU run's, a grid's:
        the fusion then runs on the eval loop's post-processing thread)."""

    def finish(self, outputs: list[Any]) -> list[Any]:
        """One forward's outputs with their deferred fusion run (others as they are)."""

    def grid_kind(self) -> str | None:
        """The fusion whose keys ``eval --grid`` may vary (:data:`panbench.models.grid.GRID_KEYS`); None: none."""

    def grid_ready(self) -> bool:
        """Whether the fusion a grid's settings share runs (``configure`` installed panbench's)."""

    def grid_own(self, key: str) -> Any:
        """The model's own value of config key ``key`` (a grid's default setting has it); None where not set."""

    def finish_grid(self, outputs: list[Any], settings: list[Setting]) -> Iterator[list[Any]]:
        """A deferred forward's outputs under each of ``settings`` in turn, the work they share done once."""

    def forward_values(self, values: dict[str, Any]) -> AbstractContextManager[None]:
        """While entered, the forward reads these values of a grid's keys that the forward itself reads."""

    def score_cutoff(self, cfg_options: dict[str, Any] | None, postprocess: PostProcess) -> float | None:
        """The score below which the fusion drops a segment under these options (the analyses' own threshold);
        None: not known."""


def check_model(model: Any, family: str) -> None:
    """Refuse, in one line, a family's model that lacks a member of :class:`PanopticModel` (a family written before
    the abilities were declared: its class derives from :class:`Abilities` to get their defaults)."""
    members = {*PanopticModel.__annotations__, *(m for m in vars(PanopticModel) if not m.startswith("_"))}
    if lacking := sorted(m for m in members if not hasattr(model, m)):
        raise PanbenchError(f"model family {family}: its model ({type(model).__name__}) lacks {', '.join(lacking)}; "
                            "derive its class from panbench.models.protocol.Abilities (docs/models.md, \"Model "
                            "families\") and define the rest")


class Abilities:
    """The defaults of :class:`PanopticModel`'s abilities a family may lack, written once: no deferred fusion (it
    runs in the forward), no grid, no score cutoff.  A family's model class derives from it and overrides what it
    can do."""

    def deferred(self) -> AbstractContextManager[None]:
        return nullcontext()

    def finish(self, outputs: list[Any]) -> list[Any]:
        return outputs

    def grid_kind(self) -> str | None:
        return None

    def grid_ready(self) -> bool:
        return True  # nothing to share: a family without grids is refused ``--grid`` by its kind, before

    def grid_own(self, key: str) -> Any:
        return None

    def finish_grid(self, outputs: list[Any], settings: list[Setting]) -> Iterator[list[Any]]:
        raise PanbenchError("internal: a grid of a family without grids; please report")

    def forward_values(self, values: dict[str, Any]) -> AbstractContextManager[None]:
        return nullcontext()

    def score_cutoff(self, cfg_options: dict[str, Any] | None, postprocess: PostProcess) -> float | None:
        return None


@runtime_checkable
class Corruptible(Protocol):
    """Where ``--corruption`` corrupts the image (a family without it is refused ``--corruption``)."""

    def pipeline_with(self, item: dict[str, Any], image_step: Callable[[np.ndarray], np.ndarray]) -> Any:
        """``pipeline(item)`` with ``image_step`` on the decoded RGB uint8 image (where ``Corrupt`` goes)."""


@dataclass(frozen=True)
class Weights:
    """Where a model's weights came from: file or directory, sha256, download URL."""

    path: Path | None
    sha256: str | None
    url: str | None


@dataclass(frozen=True)
class ForDataset:
    """The dataset a model is loaded for: its name (a key of :data:`panbench.data.catalog.DATASETS`, or a user's own:
    the original's test input there) and the names checkpoints give its classes where no rule of the label mapping
    finds them (its card's ``label_aliases``: label -> category name)."""

    name: str = "coco"
    aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Built:
    """What a family's ``load_model`` gives: the model and what the run records about it (its provenance)."""

    model: PanopticModel
    weights: Weights
    cfg_text: str  # the resolved configuration, as recorded
    cfg_hash: str  # its sha256, first 16 hex digits
    named: tuple[str, str] | None = None  # (architecture, backbone) read from an unregistered model's own config
    # beyond ``Family.packages`` (timm for a DETR with a timm backbone): versions in the record and cache key
    packages: tuple[str, ...] = ()
    # the inference pipeline of an ``hf:`` model (``original`` or ``transformers``, ``--pipeline``); None: the
    # family has one (mmdet's own)
    pipeline: str | None = None


class ModelHandle(ABC):
    """One model of a family, opened once for a run (:meth:`Family.open`): what checks its options, names the kind of
    grid it takes, gives the config text a setting records and loads it, all reading one copy of its configuration
    (an mmdet config file is read once however many settings a grid has)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @abstractmethod
    def check_options(self, categories: Any, cfg_options: dict[str, Any] | None, postprocess: str) -> None:
        """Before any model runs: the model takes these options (refused in one line otherwise)."""

    @abstractmethod
    def config_text(self, cfg_options: dict[str, Any] | None, ap: bool) -> tuple[str, str]:
        """The config text and hash :meth:`load_model` records with ``cfg_options``, a grid setting's (docs/eval.md,
        "Grids")."""

    @abstractmethod
    def load_model(self, categories: Any, checkpoint: str | None, trust: bool, device: str,
                   cfg_options: dict[str, Any] | None, ap: bool, any_rank: Callable[[bool], bool] | None,
                   dataset: ForDataset) -> Built:
        """The model on ``device``, weights checked, labels mapped, instance output on with ``ap``, its test-time
        inference that of ``dataset`` (refused in one line where the family knows none there)."""

    @abstractmethod
    def random_model(self, device: str) -> PanopticModel | None:
        """The model with random weights and no dataset (parameters, FLOPs); None when that needs a download."""

    def grid_kind(self) -> str | None:
        """The fusion whose keys ``eval --grid`` may vary (:data:`panbench.models.grid.GRID_KEYS`), read before the
        model loads; None (this default): no grids."""
        return None


class Family(ABC):
    """A model family (docs/models.md, "Model families"): how ``--model`` names its models, the packages they run on,
    and what opens one of them (:meth:`open`).  Each family is one subclass, registered by its :attr:`name` in
    :data:`panbench.models.families.FAMILIES`; its module stays light (torch and its framework are imported inside
    the methods that run a model)."""

    name: ClassVar[str]  # the registry's ``ModelSpec.framework``, the record's ``framework``
    prefix: ClassVar[str | None] = None  # ``--model PREFIX:<ref>`` (``ModelSpec.ref``); None: configs, config paths
    in_all: ClassVar[bool] = False  # ``--model all`` runs its registered models (False: downloads chosen by name)
    packages: ClassVar[tuple[str, ...]] = ("torch",)  # what its models run on: their versions are in the provenance
    # (package, version) the tests ran on and scripts/setup.sh pins; ``panbench doctor`` notes another.  Not torch:
    # the set-up keeps the torch an environment has (Colab, a CUDA image)
    tested: ClassVar[tuple[tuple[str, str], ...]] = ()
    # (import name, extra of pyproject.toml that installs it): the fix a missing package's error names
    extras: ClassVar[tuple[tuple[str, str], ...]] = ()
    ref_help: ClassVar[str] = "<ref>"  # what follows ``PREFIX:`` in ``--model``'s help

    @abstractmethod
    def open(self, spec: ModelSpec) -> ModelHandle:
        """``spec``'s model, opened for a run: the handle every later step of the run asks."""

    @abstractmethod
    def weights_state(self, spec: ModelSpec) -> str:
        """``cached``, ``download``, ``committed`` or ``none`` (what ``panbench ls`` shows)."""

    @abstractmethod
    def doctor_checks(self, probes: Any) -> list[Any]:
        """Its lines of ``panbench doctor``, run with the doctor's ``probes`` (:class:`panbench.cli.doctor.Probes`)."""

    def registered_models(self) -> list[ModelSpec]:
        """The models it lists beside the config files of ``configs/`` (this default: none)."""
        return []

    def unavailable(self, spec: ModelSpec) -> str | None:
        """Why a registered model cannot run here (a package its backbone needs is missing), in one line; None (this
        default): it can.  ``--model all`` leaves such a model out, saying why; named, it is refused."""
        return None

    def config_files(self, spec: ModelSpec) -> list[Path] | None:
        """The files that fix :meth:`ModelHandle.random_model`'s model (its counts' cache key); None (this default):
        not known, counted every time."""
        return None


def count_parameters(module: Any) -> int:
    """The number of parameters of a torch module (the record's ``params``)."""
    return int(sum(p.numel() for p in module.parameters()))


@contextmanager
def wrapped_method(obj: Any, name: str, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """While entered, ``obj.<name>`` is ``wrap(<the method>)`` on this instance only (its own method put back)."""
    orig, own = getattr(obj, name), name in vars(obj)
    setattr(obj, name, wrap(orig))
    try:
        yield
    finally:
        setattr(obj, name, orig) if own else delattr(obj, name)


@contextmanager
def timed_calls(obj: Any, name: str, seconds: list[float], sync: Callable[[], None]) -> Iterator[None]:
    """While entered, each call of ``obj.<name>`` is timed into ``seconds``, ``sync`` before each clock read."""
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
