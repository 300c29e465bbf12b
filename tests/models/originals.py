"""The original repositories' own test-time code, run from their sources in ../shared/vendor (unpacked once per
process into a temporary folder, never copied here): plain functions, torch tensors in, the originals' outputs out.
A test's oracle, not panbench's code.

- detectron2 (02b5c4e): ``DatasetMapper`` + ``ResizeShortestEdge`` (:func:`d2_input`), ``ImageList``,
  ``sem_seg_postprocess``.
- Mask2Former (9b0651c), imported from its source: ``MaskFormer.forward`` (:func:`d2_batch`,
  :func:`mask2former_forward`) and ``MaskFormer.panoptic_inference`` (:func:`mask2former_panoptic`).
- MaskFormer (da3e60d) and OneFormer (4962ef6): their ``panoptic_inference`` taken from the source with ``ast``
  (their packages cannot be imported beside Mask2Former's: both register ``MaskFormer``, ``D2SwinTransformer``...
  in detectron2's registries, which refuse a name twice; OneFormer's also needs einops, ftfy, diffdist, wandb).
- Mask2Former's and OneFormer's config files as their train_net.py ``setup`` reads them (``get_cfg``,
  ``add_deeplab_config``, their own adders, ``merge_from_file``: :func:`d2_config`) and what their test time takes of
  them (:func:`d2_test_input`); OneFormer's ``oneformer/config.py`` run from its file alone.
- DETR (29901c5), imported from its source with its root on sys.path for the import only (its ``models``,
  ``util``, ``datasets`` are generic top-level names, EoMT has two of them): ``make_coco_transforms("val")``
  (:func:`detr_preprocess`), ``PostProcessPanoptic`` (:func:`detr_panoptic`).
- EoMT (7bd19dd): ``training/lightning_module.py``'s methods taken from the source with ``ast`` (the module imports
  wandb, absent here) and run on a stand-in ``self`` (:func:`eomt_resize_and_pad`, :func:`eomt_revert`,
  :func:`eomt_panoptic`, :func:`eomt_normalise`).

Stand-ins, for the import guards alone: a ``MultiScaleDeformableAttention`` module without the compiled op
(Mask2Former's deformable attention then takes its ``ms_deform_attn_core_pytorch`` path) and, while Mask2Former
imports, a ``detectron2._C`` module (``detectron2.evaluation.fast_eval_api`` imports it unguarded, through
Mask2Former's ``InstanceSegEvaluator``); both are removed from ``sys.modules`` after the import."""

from __future__ import annotations

import ast
import atexit
import builtins
import contextlib
import copy
import functools
import importlib
import importlib.abc
import importlib.util
import io
import shutil
import sys
import tarfile
import tempfile
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

VENDOR = Path(__file__).resolve().parents[2].parent / "shared" / "vendor"
TARBALLS = {"detectron2": "detectron2-02b5c4e.tar.gz", "projects": "detectron2-02b5c4e-projects.tar.gz",
            "mask2former": "Mask2Former-9b0651c.tar.gz", "maskformer": "MaskFormer-da3e60d.tar.gz",
            "oneformer": "OneFormer-4962ef6.tar.gz", "detr": "detr-29901c5.tar.gz", "eomt": "eomt-7bd19dd.tar.gz"}
#: detectron2's projects (detectron2/projects/__init__.py's ``_PROJECTS``): module name -> folder
D2_PROJECTS = {"point_rend": "PointRend", "deeplab": "DeepLab", "panoptic_deeplab": "Panoptic-DeepLab"}

_ROOTS: dict[str, Path] = {}
_TEMP: list[tempfile.TemporaryDirectory] = []


def missing_tarballs() -> list[str]:
    return [name for name in TARBALLS.values() if not (VENDOR / name).is_file()]


def sources(dst: Path | None = None) -> dict[str, Path]:
    """Each original's root folder (``TARBALLS``' keys), unpacked once per process into ``dst`` (a temporary folder
    when None); detectron2, its PointRend and DeepLab projects, Mask2Former, MaskFormer and OneFormer go on
    sys.path (DETR and EoMT do not: see the module's docstring)."""
    if _ROOTS:
        return _ROOTS
    if missing := missing_tarballs():
        raise FileNotFoundError(f"{', '.join(missing)} not in {VENDOR} (../shared/vendor)")
    if dst is None:
        _TEMP.append(tempfile.TemporaryDirectory(prefix="originals-"))
        atexit.register(_TEMP[-1].cleanup)
        dst = Path(_TEMP[-1].name)
    roots = {}
    for key, name in TARBALLS.items():
        with tarfile.open(VENDOR / name) as tar:
            tar.extractall(dst, filter="data")
        roots[key] = dst / name.removesuffix(".tar.gz")
    # beside the detectron2 package, where detectron2/projects/__init__.py looks for them (detectron2.projects.X)
    shutil.move(roots["projects"] / "projects", roots["detectron2"] / "projects")
    roots["projects"] = roots["detectron2"] / "projects"
    paths = [roots["detectron2"], *(roots["projects"] / d for d in ("PointRend", "DeepLab")),
             roots["mask2former"], roots["maskformer"], roots["oneformer"]]
    sys.path[:0] = [str(p) for p in paths if str(p) not in sys.path]
    _ROOTS.update(roots)
    _d2_projects_finder(roots["projects"])
    return _ROOTS


def _d2_projects_finder(projects: Path) -> None:
    """Where detectron2 was imported from another copy (another test's, the same commit) whose folder has no
    projects beside it, ``detectron2.projects.X`` from these, as detectron2's own finder gives them."""
    import detectron2.projects  # noqa: F401

    if importlib.util.find_spec("detectron2.projects.point_rend") is not None:
        return

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):  # type: ignore[override]
            head, _, project = name.rpartition(".")
            if head != "detectron2.projects" or project not in D2_PROJECTS:
                return None
            return importlib.util.spec_from_file_location(
                name, projects / D2_PROJECTS[project] / project / "__init__.py")

    sys.meta_path.append(Finder())


@contextlib.contextmanager
def _stand_in(name: str) -> Iterator[None]:
    """An empty module ``name`` in sys.modules while the block runs (an import guard's), unless it imports."""
    try:
        importlib.import_module(name)
        present = True
    except ImportError:
        present = False
    if present:
        yield
        return
    sys.modules[name] = types.ModuleType(name)
    try:
        yield
    finally:
        del sys.modules[name]
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
            delattr(sys.modules[parent], child)


# ---- methods taken from an original's source with ast ----

def _free_names(nodes: list[ast.AST]) -> set[str]:
    """The global names ``nodes`` (functions, with their decorators) read."""
    loads, bound = set(), set()
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                (loads if isinstance(n.ctx, ast.Load) else bound).add(n.id)
            elif isinstance(n, ast.arg):
                bound.add(n.arg)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n not in nodes:
                bound.add(n.name)
    return loads - bound - set(dir(builtins))


def _module_globals(tree: ast.Module, needed: set[str], path: Path) -> dict[str, Any]:
    """The module's own top-level imports and assignments that bind ``needed``, run as the module runs them."""
    namespace: dict[str, Any] = {"__name__": f"original:{path.name}"}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            binds = {(a.asname or a.name).split(".")[0] for a in stmt.names}
        elif isinstance(stmt, ast.Assign):
            binds = {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        else:
            continue
        if binds & needed:
            exec(compile(ast.Module(body=[stmt], type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    if unresolved := needed - set(namespace):
        raise NameError(f"{path}: {sorted(unresolved)} not bound by the module's top-level imports")
    return namespace


def source_class(path: Path, cls: str, methods: Sequence[str]) -> type:
    """A class (no bases, no decorators) holding ``methods`` of class ``cls`` as ``path`` defines them (their
    decorators too), compiled from the original's syntax tree (tracebacks show the original's lines), with the
    module's own imports for the names they read."""
    tree = ast.parse(path.read_text(), str(path))
    (node,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    defs = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
    if missing := [m for m in methods if m not in defs]:
        raise AttributeError(f"{path}: class {cls} has no {', '.join(missing)}")
    picked = [defs[m] for m in methods]
    namespace = _module_globals(tree, _free_names(picked), path)
    holder = copy.copy(node)
    holder.bases, holder.keywords, holder.decorator_list, holder.body = [], [], [], picked
    exec(compile(ast.Module(body=[holder], type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace[cls]


def _source_statements(path: Path, cls: str, method: str, targets: set[str], namespace: dict) -> dict:
    """The assignments to ``targets`` in ``cls.method`` of ``path``, run in ``namespace``; the values."""
    tree = ast.parse(path.read_text(), str(path))
    (node,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    (fn,) = (f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == method)
    stmts = [s for s in fn.body if isinstance(s, ast.Assign)
             and {t.id for t in s.targets if isinstance(t, ast.Name)} & targets]
    local: dict[str, Any] = {}
    exec(compile(ast.Module(body=stmts, type_ignores=[]), str(path), "exec"), namespace, local)  # noqa: S102
    return {k: local[k] for k in targets}


# ---- detectron2 and Mask2Former ----

@functools.cache
def _mask2former() -> types.ModuleType:
    """``mask2former.maskformer_model``, imported from the source."""
    sources()
    importlib.import_module("detectron2.layers")  # its guarded `from detectron2 import _C` takes its fallback
    importlib.import_module("detectron2.evaluation")  # so does coco_evaluation's
    with _stand_in("MultiScaleDeformableAttention"), _stand_in("detectron2._C"):
        return importlib.import_module("mask2former.maskformer_model")


def d2_input(image_path: str | Path, min_size: int = 800, max_size: int = 1333) -> dict:
    """detectron2's test-time input of an image: ``DatasetMapper(is_train=False, augmentations=
    [ResizeShortestEdge(min_size, max_size)], image_format="RGB")`` on its dataset dict; the mapper's dict
    ("image": uint8 CHW tensor of the resized image, "height"/"width": the original size, "file_name",
    "image_id" 0)."""
    sources()
    from detectron2.data import DatasetMapper
    from detectron2.data import detection_utils as utils
    from detectron2.data import transforms as T

    h, w = utils.read_image(str(image_path), format="RGB").shape[:2]
    mapper = DatasetMapper(is_train=False, augmentations=[T.ResizeShortestEdge(min_size, max_size)],
                           image_format="RGB")
    return mapper({"file_name": str(image_path), "image_id": 0, "height": h, "width": w})


class _Stop(Exception):
    pass


class _Capture:
    """A module slot that keeps its input and stops the forward there."""

    def __init__(self) -> None:
        self.seen: Any = None

    def __call__(self, x: Any) -> Any:
        self.seen = x
        raise _Stop


def _maskformer(backbone: Any, head: Any, *, num_queries: int, thing_ids: Sequence[int], pixel_mean: Sequence[float],
                pixel_std: Sequence[float], size_divisibility: int, object_mask_threshold: float = 0.8,
                overlap_threshold: float = 0.8) -> Any:
    """Mask2Former's ``MaskFormer`` (its __init__, as from_config gives it for COCO panoptic), eval mode; ``backbone``
    and ``head`` any callables (the forward calls them)."""
    return _mask2former().MaskFormer(
        backbone=backbone, sem_seg_head=head,
        criterion=None, num_queries=num_queries, object_mask_threshold=object_mask_threshold,
        overlap_threshold=overlap_threshold, metadata=_metadata(thing_ids), size_divisibility=size_divisibility,
        sem_seg_postprocess_before_inference=True, pixel_mean=list(pixel_mean), pixel_std=list(pixel_std),
        semantic_on=False, panoptic_on=True, instance_on=False, test_topk_per_image=100).eval()


def _metadata(thing_ids: Sequence[int] | set[int]) -> types.SimpleNamespace:
    """The metadata panoptic_inference reads: a thing is a class in ``thing_dataset_id_to_contiguous_id``'s values."""
    return types.SimpleNamespace(thing_dataset_id_to_contiguous_id={int(c): int(c) for c in sorted(thing_ids)})


def d2_batch(images: Sequence[Any], pixel_mean: Sequence[float], pixel_std: Sequence[float],
             size_divisibility: int) -> tuple[Any, list[tuple[int, int]]]:
    """Mask2Former's ``MaskFormer.forward`` up to its backbone: ``(x - pixel_mean) / pixel_std`` of each uint8 CHW
    image, then ``ImageList.from_tensors(images, size_divisibility)``.  (the padded float batch [B,3,Hp,Wp], padding
    0 after the normalisation; the images' (h, w), ``ImageList.image_sizes``)."""
    import torch

    capture = _Capture()
    model = _maskformer(capture, None, num_queries=1, thing_ids=(), pixel_mean=pixel_mean, pixel_std=pixel_std,
                        size_divisibility=size_divisibility)
    with torch.no_grad(), contextlib.suppress(_Stop):
        model([{"image": img} for img in images])
    return capture.seen, [(int(img.shape[-2]), int(img.shape[-1])) for img in images]


def _panoptic(inference: Any, mask_cls: Any, mask_pred: Any, padded_hw: Sequence[int], image_size: Sequence[int],
              height: int, width: int, thing_ids: Sequence[int] | set[int], object_mask_threshold: float,
              overlap_threshold: float, cls_to_masks: bool) -> tuple[Any, list[dict]]:
    """The forwards' test-time steps for one image: the masks upsampled to the padded input, detectron2's
    ``sem_seg_postprocess`` (crop to ``image_size``, resize to ``height`` x ``width``), ``inference`` on a
    stand-in self."""
    from detectron2.modeling.postprocessing import sem_seg_postprocess
    from torch.nn import functional as F

    sources()
    # forward(): `F.interpolate(mask_pred_results, size=(images.tensor.shape[-2], images.tensor.shape[-1]),
    # mode="bilinear", align_corners=False)` over the batch, then per image
    mask_pred = F.interpolate(mask_pred[None], size=tuple(padded_hw), mode="bilinear", align_corners=False)[0]
    mask_pred = sem_seg_postprocess(mask_pred, tuple(image_size), height, width)
    if cls_to_masks:  # Mask2Former's and OneFormer's forward: `mask_cls_result = mask_cls_result.to(mask_pred_result)`
        mask_cls = mask_cls.to(mask_pred)
    self = types.SimpleNamespace(sem_seg_head=types.SimpleNamespace(num_classes=mask_cls.shape[-1] - 1),
                                 metadata=_metadata(thing_ids), object_mask_threshold=object_mask_threshold,
                                 overlap_threshold=overlap_threshold)
    return inference(self, mask_cls, mask_pred)


def mask2former_panoptic(mask_cls: Any, mask_pred: Any, padded_hw: Sequence[int], image_size: Sequence[int],
                         height: int, width: int, thing_ids: Sequence[int] | set[int],
                         object_mask_threshold: float = 0.8, overlap_threshold: float = 0.8) -> tuple[Any, list[dict]]:
    """Mask2Former's test time for one image from the head's outputs: ``mask_cls`` [Q, K+1] logits (K: "no
    object"), ``mask_pred`` [Q, h, w] logits at the mask features' resolution of the padded batch ``padded_hw``,
    ``image_size`` the resized input's (h, w), ``height`` x ``width`` the output size.  ``panoptic_inference``'s
    (int32 [height, width] map: 0 no segment, segments 1..n; segments_info [{"id", "isthing", "category_id": the
    contiguous class}], a stuff class one segment)."""
    inference = _mask2former().MaskFormer.panoptic_inference
    return _panoptic(inference, mask_cls, mask_pred, padded_hw, image_size, height, width, thing_ids,
                     object_mask_threshold, overlap_threshold, cls_to_masks=True)


@functools.cache
def _source_inference(key: str) -> Any:
    path, cls = {"maskformer": ("mask_former/mask_former_model.py", "MaskFormer"),
                 "oneformer": ("oneformer/oneformer_model.py", "OneFormer")}[key]
    return source_class(sources()[key] / path, cls, ["panoptic_inference"]).panoptic_inference


def maskformer_panoptic(mask_cls: Any, mask_pred: Any, padded_hw: Sequence[int], image_size: Sequence[int],
                        height: int, width: int, thing_ids: Sequence[int] | set[int],
                        object_mask_threshold: float = 0.8, overlap_threshold: float = 0.8) -> tuple[Any, list[dict]]:
    """:func:`mask2former_panoptic` with MaskFormer's (da3e60d) forward and ``panoptic_inference``: the same
    upsampling and ``sem_seg_postprocess`` (no ``mask_cls.to(mask_pred)``), a segment is its argmax pixels
    (Mask2Former's: those with a probability >= 0.5 too).  Its COCO configs set SIZE_DIVISIBILITY 0 ("COCO model
    should not pad image"): ``padded_hw`` is the batch's largest image, ``image_size`` itself for one image."""
    return _panoptic(_source_inference("maskformer"), mask_cls, mask_pred, padded_hw, image_size, height, width,
                     thing_ids, object_mask_threshold, overlap_threshold, cls_to_masks=False)


def oneformer_panoptic(mask_cls: Any, mask_pred: Any, padded_hw: Sequence[int], image_size: Sequence[int],
                       height: int, width: int, thing_ids: Sequence[int] | set[int],
                       object_mask_threshold: float = 0.8, overlap_threshold: float = 0.8) -> tuple[Any, list[dict]]:
    """:func:`mask2former_panoptic` with OneFormer's (4962ef6) forward and ``panoptic_inference`` (the same steps
    as Mask2Former's, line for line)."""
    return _panoptic(_source_inference("oneformer"), mask_cls, mask_pred, padded_hw, image_size, height, width,
                     thing_ids, object_mask_threshold, overlap_threshold, cls_to_masks=True)


def mask2former_forward(network: Any, batched_inputs: list[dict], thing_ids: Sequence[int] | set[int],
                        num_classes: int, pixel_mean: Sequence[float], pixel_std: Sequence[float],
                        size_divisibility: int = 32, object_mask_threshold: float = 0.8,
                        overlap_threshold: float = 0.8) -> list[dict]:
    """Mask2Former's ``MaskFormer.forward`` (eval, no grad) on ``batched_inputs`` (:func:`d2_input`'s dicts) with
    a transformers ``Mask2FormerForUniversalSegmentation`` as its network: the backbone slot passes the normalised
    padded batch on, the head slot runs ``network`` on it (``class_queries_logits`` -> "pred_logits",
    ``masks_queries_logits`` -> "pred_masks").  The forward's results: [{"panoptic_seg": (int32 [height, width]
    map, segments_info)}] as :func:`mask2former_panoptic`'s."""
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network
            self.num_classes = num_classes

        def forward(self, features):
            out = self.network(pixel_values=features["x"])
            return {"pred_logits": out.class_queries_logits, "pred_masks": out.masks_queries_logits}

    model = _maskformer(lambda x: {"x": x}, Head(), num_queries=network.config.num_queries, thing_ids=thing_ids,
                        pixel_mean=pixel_mean, pixel_std=pixel_std, size_divisibility=size_divisibility,
                        object_mask_threshold=object_mask_threshold, overlap_threshold=overlap_threshold)
    model.to(next(network.parameters()).device)
    with torch.no_grad():
        return model(batched_inputs)


# ---- the originals' configs (Mask2Former, OneFormer) ----

@functools.cache
def _oneformer_config() -> types.ModuleType:
    """OneFormer's ``oneformer/config.py`` (its config adders), run from its file alone: the package's __init__
    imports its models (``MaskFormer``-like names in detectron2's registries, which Mask2Former's have taken; natten
    for DiNAT).  The file imports only detectron2's ``CfgNode``."""
    path = sources()["oneformer"] / "oneformer" / "config.py"
    spec = importlib.util.spec_from_file_location("original_oneformer_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def d2_config(key: str, config: str) -> Any:
    """The original's (``key``: "mask2former" or "oneformer") config file ``config`` (a path in its repository) as its
    train_net.py's ``setup`` reads it: detectron2's ``get_cfg``, DeepLab's ``add_deeplab_config``, the original's
    adders (Mask2Former: ``add_maskformer2_config``; OneFormer: ``add_common_config``, ``add_swin_config``,
    ``add_dinat_config``, ``add_convnext_config``, ``add_oneformer_config``, in its order), ``merge_from_file``
    (its ``_BASE_`` chain, the YAML's ``!!python/object/apply:eval`` too); frozen."""
    roots = sources()
    from detectron2.config import get_cfg
    from detectron2.projects.deeplab import add_deeplab_config

    if key == "mask2former":
        adders = [_mask2former_package().add_maskformer2_config]
    elif key == "oneformer":
        own = _oneformer_config()
        adders = [own.add_common_config, own.add_swin_config, own.add_dinat_config, own.add_convnext_config,
                  own.add_oneformer_config]
    else:
        raise KeyError(f"{key}: no detectron2 config code (mask2former, oneformer)")
    cfg = get_cfg()
    add_deeplab_config(cfg)
    for add in adders:
        add(cfg)
    cfg.merge_from_file(str(roots[key] / config))
    cfg.freeze()
    return cfg


def _mask2former_package() -> types.ModuleType:
    _mask2former()  # imported with its import guards' stand-ins
    return importlib.import_module("mask2former")


def d2_test_input(key: str, config: str) -> dict[str, Any]:
    """What the original's test time takes from ``config`` (:func:`d2_config`): the test mapper's resize (detectron2's
    ``build_augmentation(cfg, is_train=False)``, which both test mappers, detectron2's ``DatasetMapper`` for
    Mask2Former and OneFormer's own, build: ``ResizeShortestEdge(INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST)``), and
    what the model's ``from_config`` reads: the size divisibility (Mask2Former: ``MODEL.MASK_FORMER.SIZE_DIVISIBILITY``;
    OneFormer: ``MODEL.ONE_FORMER.SIZE_DIVISIBILITY``), the panoptic thresholds (``MODEL.MASK_FORMER.TEST.*``;
    OneFormer: ``MODEL.TEST.*``), ``PIXEL_MEAN`` and ``PIXEL_STD``.  ("min_size", "max_size", "size_divisibility",
    "object_mask_threshold", "overlap_threshold", "pixel_mean", "pixel_std")"""
    from detectron2.data import detection_utils as utils
    from detectron2.data import transforms as T

    cfg = d2_config(key, config)
    (resize,) = utils.build_augmentation(cfg, False)
    assert isinstance(resize, T.ResizeShortestEdge) and resize.sample_style == "choice"
    (short,) = set(resize.short_edge_length)  # an int in the config: (n, n), the one choice
    head, test = (cfg.MODEL.MASK_FORMER, cfg.MODEL.MASK_FORMER.TEST) if key == "mask2former" else \
        (cfg.MODEL.ONE_FORMER, cfg.MODEL.TEST)
    return {"min_size": short, "max_size": resize.max_size, "size_divisibility": head.SIZE_DIVISIBILITY,
            "object_mask_threshold": test.OBJECT_MASK_THRESHOLD, "overlap_threshold": test.OVERLAP_THRESHOLD,
            "pixel_mean": tuple(cfg.MODEL.PIXEL_MEAN), "pixel_std": tuple(cfg.MODEL.PIXEL_STD)}


# ---- DETR ----

@functools.cache
def _detr() -> tuple[types.ModuleType, types.ModuleType]:
    """DETR's ``models.segmentation`` and ``datasets.coco``, imported with its root first on sys.path; its
    top-level packages are then taken out of sys.modules again (the modules keep what they imported)."""
    root = str(sources()["detr"])
    tops = {"models", "util", "datasets"}

    def ours() -> dict[str, types.ModuleType]:
        return {k: m for k, m in sys.modules.items() if k.split(".")[0] in tops}

    before = ours()
    for k in before:
        del sys.modules[k]
    sys.path.insert(0, root)
    try:
        return importlib.import_module("models.segmentation"), importlib.import_module("datasets.coco")
    finally:
        sys.path.remove(root)
        for k in ours():
            del sys.modules[k]
        sys.modules.update(before)


def detr_preprocess(pil_image: Any) -> Any:
    """DETR's evaluation transform, ``datasets/coco.py`` ``make_coco_transforms("val")``:
    ``RandomResize([800], max_size=1333)``, ``ToTensor``, ``Normalize`` (ImageNet mean/std); the float CHW tensor."""
    img, _ = _detr()[1].make_coco_transforms("val")(pil_image, None)
    return img


def detr_panoptic(pred_logits: Any, pred_masks: Any, processed_size: Sequence[int], target_size: Sequence[int],
                  is_thing_map: dict[int, bool], threshold: float = 0.85,
                  pred_boxes: Any = None) -> tuple[Any, list[dict]]:
    """DETR's ``PostProcessPanoptic(is_thing_map, threshold)`` for one image: ``pred_logits`` [Q, K+1], ``pred_masks``
    [Q, h, w] logits, ``processed_size`` the input's (h, w) before batching, ``target_size`` the output's;
    ``pred_boxes`` [Q, 4] (cxcywh; only converted, zeros when None).  (its PNG decoded with panopticapi's rgb2id: an
    int [H, W] map whose ids START AT 0, the first segment's; segments_info [{"id", "isthing", "category_id": the
    label index, "area"}]; no query kept: a map of zeros and no segment)."""
    import numpy as np
    import torch
    from panopticapi.utils import rgb2id
    from PIL import Image

    if pred_boxes is None:
        pred_boxes = torch.zeros(pred_logits.shape[0], 4, dtype=pred_logits.dtype)
    post = _detr()[0].PostProcessPanoptic(is_thing_map, threshold=threshold)
    (pred,) = post({"pred_logits": pred_logits[None], "pred_masks": pred_masks[None], "pred_boxes": pred_boxes[None]},
                   [tuple(processed_size)], [tuple(target_size)])
    ids = rgb2id(np.asarray(Image.open(io.BytesIO(pred["png_string"])).convert("RGB"), dtype=np.uint8))
    return torch.from_numpy(ids.astype(np.int64)), pred["segments_info"]


# ---- EoMT ----

EOMT_METHODS = ("forward", "scale_img_size_instance_panoptic", "resize_and_pad_imgs_instance_panoptic",
                "revert_resize_and_pad_logits_instance_panoptic", "to_per_pixel_preds_panoptic")


@functools.cache
def _eomt() -> type:
    return source_class(sources()["eomt"] / "training" / "lightning_module.py", "LightningModule", EOMT_METHODS)


def _eomt_self(**attrs: Any) -> Any:
    self = _eomt()()
    self.__dict__.update(attrs)
    return self


def eomt_resize_and_pad(images: Sequence[Any], img_size: Sequence[int]) -> Any:
    """EoMT's ``resize_and_pad_imgs_instance_panoptic``: each uint8 CHW image resized (PIL bilinear) to fit
    ``img_size`` (h, w), padded at the bottom and right with 0; the uint8 batch [B, 3, *img_size]."""
    return _eomt_self(img_size=tuple(img_size)).resize_and_pad_imgs_instance_panoptic(images)


def eomt_revert(mask_logits: Any, img_sizes: Sequence[Sequence[int]], img_size: Sequence[int]) -> list[Any]:
    """EoMT's eval_step from the network's ``mask_logits`` [B, Q, h, w]: ``F.interpolate(mask_logits,
    self.img_size, mode="bilinear")`` (training/mask_classification_panoptic.py), then
    ``revert_resize_and_pad_logits_instance_panoptic`` (crop the padding, resize to each image's (H, W)); a
    [Q, H, W] tensor per image."""
    from torch.nn import functional as F

    mask_logits = F.interpolate(mask_logits, tuple(img_size), mode="bilinear")
    return _eomt_self(img_size=tuple(img_size)).revert_resize_and_pad_logits_instance_panoptic(
        mask_logits, [tuple(s) for s in img_sizes])


def eomt_panoptic(mask_logits_list: Sequence[Any], class_logits: Any, stuff_classes: Sequence[int], num_classes: int,
                  mask_thresh: float = 0.8, overlap_thresh: float = 0.8) -> list[Any]:
    """EoMT's ``to_per_pixel_preds_panoptic``: ``mask_logits_list`` [Q, H, W] per image, ``class_logits`` [B, Q, K+1];
    per image a long [H, W, 2] tensor, (class, segment) per pixel: a segment's class and its id (0, 1, ... in
    the order of the kept queries; a stuff class one segment), no segment (num_classes, -1)."""
    self = _eomt_self(num_classes=num_classes)
    return self.to_per_pixel_preds_panoptic(list(mask_logits_list), class_logits, list(stuff_classes), mask_thresh,
                                            overlap_thresh)


@functools.cache
def _eomt_network() -> tuple[type, dict]:
    root = sources()["eomt"]
    cls = source_class(root / "models" / "eomt.py", "EoMT", ["forward"])
    import torch

    buffers = _source_statements(root / "models" / "vit.py", "ViT", "__init__", {"pixel_mean", "pixel_std"},
                                 {"torch": torch})
    return cls, buffers


def eomt_normalise(images: Any) -> Any:
    """What EoMT's network computes from a uint8 batch [B, 3, H, W] before its patch embedding: the Lightning
    module's ``forward`` (``imgs / 255.0``), then ``EoMT.forward``'s ``(x - self.encoder.pixel_mean) /
    self.encoder.pixel_std`` with ``ViT``'s buffers (ImageNet mean and std); the float batch."""
    cls, buffers = _eomt_network()
    capture = _Capture()
    net = cls()
    net.encoder = types.SimpleNamespace(backbone=types.SimpleNamespace(patch_embed=capture), **buffers)
    lightning = _eomt_self(network=lambda x: cls.forward(net, x))
    with contextlib.suppress(_Stop):
        lightning.forward(images)
    return capture.seen
