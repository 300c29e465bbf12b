"""What the ``hf:`` family knows of each transformers panoptic model type (:data:`TYPES`, docs/huggingface.md
"Model types"), and its registered models (:func:`models`).  No torch: ``check_options`` reads it before torch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from panbench.errors import InputError, PanbenchError
from panbench.models.grid import GRID_KEYS, PIPELINES
from panbench.models.spec import ModelSpec

QUERY_MASK_MODES = ("default", "maskwise", "argmax")  # --postprocess of a mask-classification model


COCO_SIZED = ("coco", "demo", "coconut")  # datasets of COCO's images (the demo set is made at COCO's scale)


@dataclass(frozen=True)
class DatasetTest:
    """An original's test input on one dataset, from its config for that dataset: ``INPUT.MIN_SIZE_TEST`` and
    ``MAX_SIZE_TEST``, and ``TEST.OBJECT_MASK_THRESHOLD`` where it differs from the model type's own."""

    short: int
    long: int
    config: str  # the config file(s) it is read from
    threshold: float | None = None


@dataclass(frozen=True)
class Original:
    """The original repository's own test-time inference of a model type (``--pipeline original``, run by
    :mod:`.original`): ``resize`` (``shortest_edge``: detectron2's ``ResizeShortestEdge``;
    ``shortest_edge_floor``: DETR's ``RandomResize``; ``long_side``: EoMT's, to a ``long`` x ``long`` square from the
    checkpoint's processor),
    ``divisor`` (padding of the batch to a multiple; 0: none), ``scale`` (255.0: mean and std on the 0-255 scale;
    1.0: the image divided by 255 first), ``fusion`` (``own_mask``: a query keeps only its won pixels where its own
    mask is >= 0.5, Mask2Former's, OneFormer's, EoMT's; ``won``: every won pixel, MaskFormer's; ``mask_argmax``:
    DETR's ``PostProcessPanoptic``, the argmax of the mask logits alone); ``mean`` and ``std`` are the checkpoint
    processor's, filled in at load."""

    resize: str
    short: int
    long: int
    divisor: int
    scale: float
    fusion: str
    source: str  # the repository, commit and files it follows
    exif: bool = True  # detectron2's read_image turns an image by its EXIF orientation; DETR's and EoMT's do not
    # the test input and threshold of its configs on each dataset (``short``/``long`` above: COCO's, also the demo
    # set's and COCONut's, COCO's images relabeled); EoMT's square comes from the checkpoint's processor
    tests: dict[str, DatasetTest] = field(default_factory=dict)
    pixel_mask: bool = False  # the network is given the padded batch's pixel mask (DETR's NestedTensor)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    threshold: float | None = None  # the dataset's OBJECT_MASK_THRESHOLD where its config sets its own

    def on(self, dataset: str) -> Original | None:
        """This inference on ``dataset``: its configs' test size and threshold there; None where they are not
        known (a dataset the original publishes no model of)."""
        if self.resize == "long_side" or dataset in COCO_SIZED:
            return self
        if (t := self.tests.get(dataset)) is None:
            return None
        return replace(self, short=t.short, long=t.long, threshold=t.threshold,
                       source=f"{self.source.split(', configs/')[0]}, {t.config}")

    def describe(self) -> str:
        """One line: the input size and padding, the fusion and the source (the record's config text)."""
        size = {"shortest_edge": f"shortest edge {self.short}, longest at most {self.long}",
                "shortest_edge_floor": f"shortest edge {self.short}, longest at most {self.long} (DETR's rounding)",
                "long_side": f"long side {self.long}, zero-padded to {self.long}x{self.long}"}[self.resize]
        pad = f", padded to a multiple of {self.divisor}" if self.divisor > 1 else ""
        own = "" if self.threshold is None else f"; OBJECT_MASK_THRESHOLD {self.threshold}"
        return f"{size}{pad}; fusion {self.fusion}{own}; {self.source}"


_M2F_CFG = "configs/{}/panoptic-segmentation/Base-{}-PanopticSegmentation.yaml"
_D2_M2F = Original("shortest_edge", 800, 1333, 32, 255.0, "own_mask",
                   "facebookresearch/Mask2Former@9b0651c mask2former/maskformer_model.py (MaskFormer.forward), "
                   "configs/coco/panoptic-segmentation/*.yaml",
                   tests={"ade20k": DatasetTest(640, 2560, _M2F_CFG.format("ade20k", "ADE20K")),
                          "cityscapes": DatasetTest(1024, 2048, _M2F_CFG.format("cityscapes", "Cityscapes")),
                          # maskformer_R50_bs16_300k.yaml (the Swin-L config's base): OBJECT_MASK_THRESHOLD 0.0
                          "mapillary": DatasetTest(2048, 2048, _M2F_CFG.format("mapillary-vistas", "MapillaryVistas") +
                                                   ", maskformer_R50_bs16_300k.yaml", threshold=0.0)})
# OneFormer's Swin-L configs: ADE20K 640 (its 896 and 1280 models are not registered), OBJECT_MASK_THRESHOLD 0.5
_ONEFORMER_TESTS = {
    "ade20k": DatasetTest(640, 2560, "configs/ade20k/swin/oneformer_swin_large_bs16_160k.yaml, "
                          "oneformer_R50_bs16_160k.yaml", threshold=0.5),
    "cityscapes": DatasetTest(1024, 2048, "configs/cityscapes/Base-Cityscapes-UnifiedSegmentation.yaml"),
    "mapillary": DatasetTest(2048, 2048, "configs/mapillary_vistas/Base-Mapillary-UnifiedSegmentation.yaml")}


@dataclass(frozen=True)
class ModelType:
    """How panbench runs the models of one transformers model type."""

    architecture: str  # the record's architecture
    backbone: str  # the record's backbone when the model's config names none
    settings: dict[str, float]  # post_process_panoptic_segmentation's thresholds: the original release's
    settings_source: str  # where those settings come from (docs/huggingface.md prints it)
    # the post-processing's keyword for the stuff labels merged per class: a set, or EoMT's sorted stuff_classes
    stuff_keyword: str = "label_ids_to_fuse"
    pad_square: bool = False  # the processor is asked for do_pad=True: the post-processing reads a padded square
    pixel_mask: bool = True  # the network takes a pixel mask marking the image in a padded batch
    task_prompt: bool = False  # AutoProcessor with a text task ("panoptic" in task_inputs): OneFormer
    resize_shim: bool = False  # its PIL post-processing calls torchvision's resize (model.py's stand-in without it)
    # post_process_instance_segmentation's arguments for AP: every query kept, overlaps kept (return_binary_maps)
    instance_settings: dict[str, Any] = field(default_factory=lambda: {"threshold": 0.0})
    no_semantic: str | None = None  # why post_process_semantic_segmentation gives no mIoU (None: it does)
    postprocess_modes: tuple[str, ...] = ("default",)  # the --postprocess modes that apply
    postprocess_refusal: str = ""  # one line: why the other --postprocess modes do not apply
    original: Original | None = None  # the original repository's own inference (--pipeline original); None: unknown
    segments_from_logits: bool = False  # its processor's compute_segments takes mask logits (EoMT's), not probabilities

    @property
    def query_masks(self) -> bool:
        """Class and mask logits per query, which ``--postprocess maskwise|argmax`` merge."""
        return "maskwise" in self.postprocess_modes


# the originals' COCO panoptic inference: OBJECT_MASK_THRESHOLD 0.8, OVERLAP_THRESHOLD 0.8, one segment per stuff
# class; the mask threshold is transformers' 0.5 (the binarisation the originals use for a mask's area)
_MASKFORMER = ModelType(
    architecture="MaskFormer", backbone="?",
    settings={"threshold": 0.8, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
    settings_source=("the original configs: OBJECT_MASK_THRESHOLD 0.8, OVERLAP_THRESHOLD 0.8 (e.g. facebookresearch/"
                     "Mask2Former configs/coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml); the mask "
                     "threshold is transformers' default"),
    instance_settings={"threshold": 0.0, "return_binary_maps": True}, postprocess_modes=QUERY_MASK_MODES,
    # its COCO configs: SIZE_DIVISIBILITY 0 ("COCO model should not pad image"), every won pixel its segment's
    original=Original("shortest_edge", 800, 1333, 0, 255.0, "won",
                      "facebookresearch/MaskFormer@da3e60d mask_former/mask_former_model.py (MaskFormer.forward), "
                      "configs/coco-panoptic/*.yaml"))

# EoMT and EoMT-DINOv3 share transformers' EomtImageProcessor and the release's panoptic inference
_EOMT = ModelType(
    architecture="EoMT", backbone="ViT",
    settings={"threshold": 0.8, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
    settings_source=("tue-mps/eomt training/mask_classification_panoptic.py at commit 7bd19dd: mask_thresh 0.8 "
                     "(a threshold on the class score) and overlap_thresh 0.8, which the DINOv2 and the DINOv3 "
                     "configs keep; the mask threshold is transformers' default"),
    stuff_keyword="stuff_classes", pad_square=True, pixel_mask=False, segments_from_logits=True,
    original=Original("long_side", 640, 640, 0, 1.0, "own_mask",
                      "tue-mps/eomt@7bd19dd training/lightning_module.py, training/mask_classification_panoptic.py",
                      exif=False),
    no_semantic=("its post_process_semantic_segmentation reads the sliding-window crops of EoMT's semantic "
                 "set-up (patch_offsets), not the padded square of panoptic inference: mIoU is the panoptic output's"),
    postprocess_refusal=("EoMT's query masks cover its padded square input, which panbench's maskwise and argmax "
                         "(the masks resized to the image) do not crop; its own post-processing is the default"))

# keyed by transformers' config.model_type; the --postprocess message names the query-mask types in this order
TYPES: dict[str, ModelType] = {
    "maskformer": _MASKFORMER,
    "mask2former": replace(_MASKFORMER, architecture="Mask2Former", original=_D2_M2F),
    "oneformer": replace(_MASKFORMER, architecture="OneFormer", task_prompt=True, resize_shim=True,
                         instance_settings={"task_type": "instance", "is_demo": True, "threshold": 0.0},
                         original=replace(_D2_M2F, source="SHI-Labs/OneFormer@4962ef6 oneformer/oneformer_model.py "
                                          "(OneFormer.forward), configs/coco/*.yaml", tests=_ONEFORMER_TESTS)),
    "detr": ModelType(
        architecture="DETR", backbone="?",
        settings={"threshold": 0.85, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
        settings_source=("DETR's PostProcessPanoptic(threshold=0.85) (facebookresearch/detr hubconf.py); the mask "
                         "and overlap thresholds are transformers' defaults"),
        postprocess_refusal=("DETR gives per-query logits and masks of its own (logits, pred_masks), not the class "
                             "and mask logits that maskwise and argmax merge"),
        original=Original("shortest_edge_floor", 800, 1333, 0, 1.0, "mask_argmax",
                          "facebookresearch/detr@29901c5 datasets/transforms.py, models/segmentation.py "
                          "(PostProcessPanoptic), hubconf.py", exif=False, pixel_mask=True)),
    "eomt": _EOMT,
    "eomt_dinov3": replace(_EOMT, backbone="ViT (DINOv3)"),  # EoMT's description: only the backbone differs
}

# transformers' panoptic model types that panbench does not run: "model type '...' is <why>"
REFUSED: dict[str, str] = {
    "videomt": ("a video model (VideomtForUniversalSegmentation segments clips of frames from its video processor; "
                "panbench evaluates single images)"),
    "conditional_detr": ("an object detector in transformers (its segmentation head, ConditionalDetrForSegmentation, "
                         "is not a model AutoModelForUniversalSegmentation loads)"),
    "omdet-turbo": "an open-vocabulary object detector (boxes, no masks) that shares DETR's image processor",
    "table-transformer": "a table detector (boxes, no masks) that shares DETR's image processor",
}


def describe(model_type: str, where: str) -> ModelType:
    """The description of ``model_type``; any other type refused in one line naming the supported ones."""
    if model_type in TYPES:
        return TYPES[model_type]
    why = REFUSED.get(model_type, "not a panoptic model type panbench describes (panbench/models/hf/types.py)")
    raise PanbenchError(f"{where}: model type '{model_type}' is {why}; panbench runs the model types "
                        f"{', '.join(sorted(TYPES))}: pass a model of one of them")


def own_settings(mtype: ModelType, protocol: Original | None) -> dict[str, float]:
    """The original's post-processing settings on a dataset: its model type's, with the dataset's threshold where its
    config sets its own (``protocol``: the original's inference there, :meth:`Original.on`)."""
    if protocol is None or protocol.threshold is None:
        return dict(mtype.settings)
    return {**mtype.settings, "threshold": protocol.threshold}


def unknown_test_input(where: str, mtype: ModelType, dataset: str) -> str:
    """The one line refusing ``--pipeline original`` of ``mtype`` on a dataset its original publishes no model of."""
    assert mtype.original is not None
    known = ", ".join(sorted({"coco", *mtype.original.tests}))
    return (f"{where}: --pipeline original runs {mtype.architecture}'s own test sizes, which its configs give for "
            f"{known}, not {dataset}: pass --pipeline transformers")


def by_architecture(architecture: str) -> ModelType | None:
    """The description of a registered checkpoint's architecture (both EoMT types: EoMT's), None for none."""
    return next((t for t in TYPES.values() if t.architecture == architecture), None)


def cfg_settings(where: str, cfg_options: dict[str, Any] | None) -> dict[str, float]:
    """``--cfg-options`` as post_process_panoptic_segmentation arguments (docs/huggingface.md, "Post-processing
    settings"): the keys of :data:`panbench.models.grid.GRID_KEYS` ``["hf"]``, each value in range; any other key or
    value refused in one line."""
    keys = {k.name: k for k in GRID_KEYS["hf"]}
    out: dict[str, float] = {}
    pipeline_of(where, cfg_options)
    for key, value in (cfg_options or {}).items():
        if key == PIPELINE_KEY:
            continue
        if key not in keys:
            names = ", ".join(k for k in keys if k != PIPELINE_KEY)
            raise InputError(f"{where}: --cfg-options {key}: a transformers model (hf:) takes only its "
                             f"post-processing's {names} (and {PIPELINE_KEY}); leave the others out")
        if (want := keys[key].check(value)) is not None:
            raise InputError(f"{where}: --cfg-options {key}={value}: must be {want}")
        out[key] = float(value)
    return out


PIPELINE_KEY = "pipeline"  # --pipeline, carried in an hf: model's --cfg-options (its config text and cache key)


def pipeline_of(where: str, cfg_options: dict[str, Any] | None, mtype: ModelType | None = None) -> str:
    """The pipeline asked for in ``cfg_options`` (``--pipeline``), else ``original`` where the model type's original
    is known (``mtype``; None: not read yet) and ``transformers`` where not; a value that is none of
    :data:`PIPELINES`, or that ``mtype`` cannot run, refused in one line."""
    value = (cfg_options or {}).get(PIPELINE_KEY)
    if value is None:
        return PIPELINES[0] if mtype is None or mtype.original is not None else "transformers"
    if value not in PIPELINES:
        raise InputError(f"{where}: --pipeline {value}: must be one of {', '.join(PIPELINES)}")
    if mtype is not None and value != "transformers":
        if mtype.original is None:
            raise InputError(f"{where}: --pipeline {value}: panbench knows no original inference of "
                             f"{mtype.architecture}; pass --pipeline transformers")
        if value == "original-masks" and mtype.original.fusion == "mask_argmax":
            raise InputError(f"{where}: --pipeline original-masks: DETR's original resizes its id map, not its "
                             "masks, so its mask resolution is no step of its own; use original-input or original")
    return str(value)


def postprocess_refusal(where: str, postprocess: str, name: str, mtype: ModelType) -> str | None:
    """The one line refusing ``--postprocess`` for model ``name`` of type ``mtype``, None when the mode applies."""
    if postprocess in mtype.postprocess_modes:
        return None
    # MaskFormer, Mask2Former or OneFormer: the architectures --postprocess maskwise|argmax applies to
    names = list(dict.fromkeys(t.architecture for t in TYPES.values() if t.query_masks))
    kinds = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)
    return (f"{where}: --postprocess {postprocess} needs a {kinds} model (query masks), and "
            f"{name} is {mtype.architecture}: {mtype.postprocess_refusal}")


_M2F = "facebookresearch/Mask2Former MODEL_ZOO.md, COCO panoptic table"
_MF = "facebookresearch/MaskFormer MODEL_ZOO.md, COCO panoptic table"
_ONEFORMER = "SHI-Labs/OneFormer README.md, COCO table"
_DETR = "facebookresearch/detr README.md, COCO panoptic val5k models table"
_HF_TABLE: list[tuple[str, str, str, str, dict[str, float], str | None]] = [
    # name, hub id, architecture, backbone, published, source
    ("hf-mask2former_swin-t", "facebook/mask2former-swin-tiny-coco-panoptic", "Mask2Former", "Swin-T",
     {"PQ": 53.2}, _M2F),
    ("hf-mask2former_swin-s", "facebook/mask2former-swin-small-coco-panoptic", "Mask2Former", "Swin-S",
     {"PQ": 54.6}, _M2F),
    # the zoo has two Swin-B models (IN-1k: 55.1, IN-21k: 56.4); the model card does not say which one this is
    ("hf-mask2former_swin-b", "facebook/mask2former-swin-base-coco-panoptic", "Mask2Former", "Swin-B", {}, None),
    ("hf-mask2former_swin-l", "facebook/mask2former-swin-large-coco-panoptic", "Mask2Former", "Swin-L (IN-21k)",
     {"PQ": 57.8}, _M2F),
    ("hf-maskformer_swin-t", "facebook/maskformer-swin-tiny-coco", "MaskFormer", "Swin-T", {"PQ": 47.7}, _MF),
    ("hf-maskformer_swin-s", "facebook/maskformer-swin-small-coco", "MaskFormer", "Swin-S", {"PQ": 49.7}, _MF),
    ("hf-maskformer_swin-b", "facebook/maskformer-swin-base-coco", "MaskFormer", "Swin-B (IN-21k)", {"PQ": 51.8}, _MF),
    ("hf-maskformer_swin-l", "facebook/maskformer-swin-large-coco", "MaskFormer", "Swin-L (IN-21k)", {"PQ": 52.7}, _MF),
    ("hf-oneformer_swin-l", "shi-labs/oneformer_coco_swin_large", "OneFormer", "Swin-L (IN-21k)",
     {"PQ": 57.9, "PQ_th": 64.4, "PQ_st": 48.0}, _ONEFORMER),
    ("hf-detr_r50", "facebook/detr-resnet-50-panoptic", "DETR", "R-50", {"PQ": 43.4}, _DETR),
    ("hf-detr_r101", "facebook/detr-resnet-101-panoptic", "DETR", "R-101", {"PQ": 45.1}, _DETR),
]


# EoMT's COCO panoptic checkpoints (tue-mps/eomt model_zoo/dinov2.md at commit 7bd19dd: input size, FPS on an
# NVIDIA H100 with torch.compile, PQ; the zoo prints no PQ_th / PQ_st, so they are None)
_EOMT_ZOO = "tue-mps/eomt model_zoo/dinov2.md, COCO panoptic tables (FPS: NVIDIA H100, torch.compile)"
_EOMT_TABLE: list[tuple[str, str, str, str, float, float]] = [
    # name, hub id, backbone, input size, published PQ, published FPS
    ("hf-eomt_s-2x-640", "tue-mps/coco_panoptic_eomt_small_640_2x", "ViT-S (DINOv2)", "640x640", 46.7, 330),
    ("hf-eomt_b-2x-640", "tue-mps/coco_panoptic_eomt_base_640_2x", "ViT-B (DINOv2)", "640x640", 51.6, 261),
    ("hf-eomt_l-640", "tue-mps/coco_panoptic_eomt_large_640", "ViT-L (DINOv2)", "640x640", 56.0, 128),
    ("hf-eomt_g-640", "tue-mps/coco_panoptic_eomt_giant_640", "ViT-g (DINOv2)", "640x640", 57.0, 55),
    ("hf-eomt_l-1280", "tue-mps/coco_panoptic_eomt_large_1280", "ViT-L (DINOv2)", "1280x1280", 58.3, 30),
    ("hf-eomt_g-1280", "tue-mps/coco_panoptic_eomt_giant_1280", "ViT-g (DINOv2)", "1280x1280", 59.2, 12),
]

# EoMT-DINOv3's COCO panoptic checkpoints (tue-mps/eomt model_zoo/dinov3.md at commit 7bd19dd; the FPS of torch.compile
# default, the DINOv2 zoo's protocol), as transformers' convert_eomt_dinov3_to_hf.py wrote them to the hub
_EOMT_DINOV3 = ("tue-mps/eomt model_zoo/dinov3.md, COCO panoptic table (FPS: NVIDIA H100, torch.compile default; "
                "the zoo's max-autotune FPS not recorded)")
_EOMT_DINOV3_TABLE: list[tuple[str, str, str, str, float, float]] = [
    # name, hub id, backbone, input size, published PQ, published FPS (torch.compile default)
    ("hf-eomt_dinov3_s-2x-640", "tue-mps/eomt-dinov3-coco-panoptic-small-640", "ViT-S (DINOv3)", "640x640", 47.2, 246),
    ("hf-eomt_dinov3_b-2x-640", "tue-mps/eomt-dinov3-coco-panoptic-base-640", "ViT-B (DINOv3)", "640x640", 53.1, 240),
    ("hf-eomt_dinov3_l-640", "tue-mps/eomt-dinov3-coco-panoptic-large-640", "ViT-L (DINOv3)", "640x640", 56.8, 137),
    ("hf-eomt_dinov3_l-1280", "tue-mps/eomt-dinov3-coco-panoptic-large-1280", "ViT-L (DINOv3)", "1280x1280", 58.9, 33),
]


# checkpoints of other datasets, run at each original's test size there (Original.tests): name, hub id,
# architecture, backbone, dataset, published (PQ, PQ_th, PQ_st where printed; AP and mIoU of the same model: its
# instance and semantic inference), source, input size
_M2F_ZOO = "facebookresearch/Mask2Former MODEL_ZOO.md, {} panoptic table"
_ONEFORMER_ZOO = "SHI-Labs/OneFormer README.md, {} table (single-scale mIoU)"
_DATASET_TABLE: list[tuple[str, str, str, str, str, dict[str, float], str, str]] = [
    ("hf-mask2former_swin-t-cityscapes", "facebook/mask2former-swin-tiny-cityscapes-panoptic", "Mask2Former",
     "Swin-T", "cityscapes", {"PQ": 63.9, "AP": 39.1, "mIoU": 80.5}, _M2F_ZOO.format("Cityscapes"), "1024-2048"),
    ("hf-mask2former_swin-s-cityscapes", "facebook/mask2former-swin-small-cityscapes-panoptic", "Mask2Former",
     "Swin-S", "cityscapes", {"PQ": 64.8, "AP": 40.7, "mIoU": 81.8}, _M2F_ZOO.format("Cityscapes"), "1024-2048"),
    ("hf-mask2former_swin-b-cityscapes", "facebook/mask2former-swin-base-IN21k-cityscapes-panoptic", "Mask2Former",
     "Swin-B (IN-21k)", "cityscapes", {"PQ": 66.1, "AP": 42.8, "mIoU": 82.7}, _M2F_ZOO.format("Cityscapes"),
     "1024-2048"),
    ("hf-mask2former_swin-l-cityscapes", "facebook/mask2former-swin-large-cityscapes-panoptic", "Mask2Former",
     "Swin-L (IN-21k)", "cityscapes", {"PQ": 66.6, "AP": 43.6, "mIoU": 82.9}, _M2F_ZOO.format("Cityscapes"),
     "1024-2048"),
    ("hf-mask2former_swin-l-ade20k", "facebook/mask2former-swin-large-ade-panoptic", "Mask2Former",
     "Swin-L (IN-21k)", "ade20k", {"PQ": 48.1, "AP": 34.2, "mIoU": 54.5}, _M2F_ZOO.format("ADE20K"), "640-2560"),
    ("hf-mask2former_swin-l-mapillary", "facebook/mask2former-swin-large-mapillary-vistas-panoptic", "Mask2Former",
     "Swin-L (IN-21k)", "mapillary", {"PQ": 45.5, "mIoU": 60.8}, _M2F_ZOO.format("Mapillary Vistas"), "2048-2048"),
    ("hf-oneformer_swin-l-ade20k", "shi-labs/oneformer_ade20k_swin_large", "OneFormer", "Swin-L (IN-21k)", "ade20k",
     {"PQ": 49.8, "AP": 35.9, "mIoU": 57.0}, _ONEFORMER_ZOO.format("ADE20K, 640x640"), "640-2560"),
    ("hf-oneformer_swin-l-cityscapes", "shi-labs/oneformer_cityscapes_swin_large", "OneFormer", "Swin-L (IN-21k)",
     "cityscapes", {"PQ": 67.2, "AP": 45.6, "mIoU": 83.0}, _ONEFORMER_ZOO.format("Cityscapes"), "1024-2048"),
    ("hf-oneformer_dinat-l-ade20k", "shi-labs/oneformer_ade20k_dinat_large", "OneFormer", "DiNAT-L (IN-21k)",
     "ade20k", {"PQ": 50.5, "AP": 36.0, "mIoU": 58.3}, _ONEFORMER_ZOO.format("ADE20K, 640x640"), "640-2560"),
    ("hf-oneformer_dinat-l-cityscapes", "shi-labs/oneformer_cityscapes_dinat_large", "OneFormer", "DiNAT-L (IN-21k)",
     "cityscapes", {"PQ": 67.6, "AP": 45.6, "mIoU": 83.1}, _ONEFORMER_ZOO.format("Cityscapes"), "1024-2048"),
]
# what a backbone needs beyond transformers (transformers' DiNAT runs natten's neighbourhood-attention kernels)
BACKBONE_NEEDS = {"DiNAT-L (IN-21k)": ("natten", "its DiNAT backbone runs natten's neighbourhood attention")}

# EoMT's ADE20K panoptic checkpoints (tue-mps/eomt model_zoo/dinov2.md at commit 7bd19dd, ADE20K panoptic tables:
# COCO-pretrained; FPS on an NVIDIA H100)
_EOMT_ADE = "tue-mps/eomt model_zoo/dinov2.md, ADE20K panoptic tables (FPS: NVIDIA H100, torch.compile)"
_EOMT_ADE_TABLE: list[tuple[str, str, str, str, float, float | None]] = [
    ("hf-eomt_l-640-ade20k", "tue-mps/ade20k_panoptic_eomt_large_640", "ViT-L (DINOv2)", "640x640", 50.6, 128),
    ("hf-eomt_g-640-ade20k", "tue-mps/ade20k_panoptic_eomt_giant_640", "ViT-g (DINOv2)", "640x640", 51.3, 55),
    ("hf-eomt_l-1280-ade20k", "tue-mps/ade20k_panoptic_eomt_large_1280", "ViT-L (DINOv2)", "1280x1280", 51.7, 30),
    ("hf-eomt_g-1280-ade20k", "tue-mps/ade20k_panoptic_eomt_giant_1280", "ViT-g (DINOv2)", "1280x1280", 52.8, 12),
]


def models() -> list[ModelSpec]:
    """The registered transformers checkpoints, in table order."""
    hf = "transformers"
    # detectron2's COCOPanopticEvaluator (Mask2Former, MaskFormer, OneFormer) and DETR's evaluation run panopticapi
    # the input of the originals' test-time inference (--pipeline original): shortest edge 800, longest at most 1333
    specs = [ModelSpec(name=name, config=Path(f"hf:{ref}"), architecture=arch, backbone=backbone, ref=ref,
                       published=dict(published), published_source=source, framework=hf, input_size="800-1333",
                       published_rules="panopticapi" if published else None,
                       published_pipeline="original" if published else None)
             for name, ref, arch, backbone, published, source in _HF_TABLE]
    specs += [ModelSpec(name=name, config=Path(f"hf:{ref}"), architecture="EoMT", backbone=backbone, ref=ref,
                        published={"PQ": pq, "PQ_th": None, "PQ_st": None}, published_source=source,
                        input_size=size, published_fps=fps, published_fps_device="NVIDIA H100" if fps else None,
                        framework=hf, published_rules="eomt",  # EoMT's own evaluation (docs/pq-rules.md)
                        published_pipeline="original", dataset=dataset)
              for table, source, dataset in ((_EOMT_TABLE, _EOMT_ZOO, "coco"),
                                             (_EOMT_DINOV3_TABLE, _EOMT_DINOV3, "coco"),
                                             (_EOMT_ADE_TABLE, _EOMT_ADE, "ade20k"))
              for name, ref, backbone, size, pq, fps in table]
    return specs + [ModelSpec(name=name, config=Path(f"hf:{ref}"), architecture=arch, backbone=backbone, ref=ref,
                              published=dict(published), published_source=source, framework=hf, input_size=size,
                              published_rules="panopticapi", published_pipeline="original", dataset=dataset)
                    for name, ref, arch, backbone, dataset, published, source, size in _DATASET_TABLE]
