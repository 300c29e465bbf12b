"""What the ``hf:`` family knows of each transformers panoptic model type, one :class:`ModelType` per
``config.model_type`` (:data:`TYPES`): the original release's post-processing settings and their source, how
stuff segments are merged, padding and pixel mask, the instance and semantic outputs, which ``--postprocess``
modes apply, and the architecture and backbone names a record gives.  The loader (:mod:`.load`) and the model
(:mod:`.model`) read these fields and compare no model-type string.  A model type not in :data:`TYPES` is
refused in one line (:func:`describe`; :data:`REFUSED` says why for the panoptic types of transformers that
panbench does not run).  Standard library only: :func:`panbench.models.hf.check_options` reads it before torch
is imported.  The table is written down in docs/huggingface.md ("Model types")."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from panbench.errors import PanbenchError

QUERY_MASK_MODES = ("default", "maskwise", "argmax")  # --postprocess of a mask-classification model


@dataclass(frozen=True)
class ModelType:
    """How panbench runs the models of one transformers model type."""

    architecture: str  # the record's architecture
    backbone: str  # the record's backbone when the model's config names none
    settings: dict[str, float]  # post_process_panoptic_segmentation's thresholds: the original release's
    settings_source: str  # where those settings come from (docs/huggingface.md prints it)
    # how post_process_panoptic_segmentation is told the stuff labels whose segments merge into one per class:
    # "label_ids_to_fuse" (a set) or "stuff_classes" (EoMT's processor: a sorted list)
    stuff_keyword: str = "label_ids_to_fuse"
    pad_square: bool = False  # the processor is asked for do_pad=True: the post-processing reads a padded square
    pixel_mask: bool = True  # the network takes a pixel mask marking the image in a padded batch
    task_prompt: bool = False  # AutoProcessor with a text task ("panoptic" in task_inputs): OneFormer
    resize_shim: bool = False  # its PIL post-processing calls torchvision's resize (load.py's stand-in without it)
    # post_process_instance_segmentation's arguments for AP: every scored query kept (threshold 0), overlapping
    # masks kept apart where the processor can (return_binary_maps)
    instance_settings: dict[str, Any] = field(default_factory=lambda: {"threshold": 0.0})
    no_semantic: str | None = None  # why post_process_semantic_segmentation gives no mIoU (None: it does)
    postprocess_modes: tuple[str, ...] = ("default",)  # the --postprocess modes that apply
    postprocess_refusal: str = ""  # one line: why the other --postprocess modes do not apply

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
    instance_settings={"threshold": 0.0, "return_binary_maps": True}, postprocess_modes=QUERY_MASK_MODES)

# EoMT and EoMT-DINOv3 share transformers' EomtImageProcessor and the release's panoptic inference
_EOMT = ModelType(
    architecture="EoMT", backbone="ViT",
    settings={"threshold": 0.8, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
    settings_source=("tue-mps/eomt training/mask_classification_panoptic.py at commit 7bd19dd: mask_thresh 0.8 "
                     "(a threshold on the class score) and overlap_thresh 0.8, which the DINOv2 and the DINOv3 "
                     "configs keep; the mask threshold is transformers' default"),
    stuff_keyword="stuff_classes", pad_square=True, pixel_mask=False,
    no_semantic=("its post_process_semantic_segmentation reads the sliding-window crops of EoMT's semantic "
                 "set-up (patch_offsets), not the padded square of panoptic inference: mIoU is the panoptic "
                 "output's"),
    postprocess_refusal=("EoMT's query masks cover its padded square input, which panbench's maskwise and argmax "
                         "(the masks resized to the image) do not crop; its own post-processing is the default"))

# keyed by transformers' config.model_type; the --postprocess message names the query-mask types in this order
TYPES: dict[str, ModelType] = {
    "maskformer": _MASKFORMER,
    "mask2former": replace(_MASKFORMER, architecture="Mask2Former"),
    "oneformer": replace(_MASKFORMER, architecture="OneFormer", task_prompt=True, resize_shim=True,
                         instance_settings={"task_type": "instance", "is_demo": True, "threshold": 0.0}),
    "detr": ModelType(
        architecture="DETR", backbone="?",
        settings={"threshold": 0.85, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8},
        settings_source=("DETR's PostProcessPanoptic(threshold=0.85) (facebookresearch/detr hubconf.py); the mask "
                         "and overlap thresholds are transformers' defaults"),
        postprocess_refusal=("DETR gives per-query logits and masks of its own (logits, pred_masks), not the class "
                             "and mask logits that maskwise and argmax merge")),
    "eomt": _EOMT,
    "eomt_dinov3": replace(_EOMT, backbone="ViT (DINOv3)"),  # EoMT's description: only the backbone differs
}

# the panoptic model types of transformers (a universal-segmentation model, or a processor with
# post_process_panoptic_segmentation) that panbench does not run: "model type '...' is <why>"
REFUSED: dict[str, str] = {
    "videomt": ("a video model (VideomtForUniversalSegmentation segments clips of frames from its video processor; "
                "panbench evaluates single images)"),
    "conditional_detr": ("an object detector in transformers (its segmentation head, ConditionalDetrForSegmentation, "
                         "is not a model AutoModelForUniversalSegmentation loads)"),
    "omdet-turbo": "an open-vocabulary object detector (boxes, no masks) that shares DETR's image processor",
    "table-transformer": "a table detector (boxes, no masks) that shares DETR's image processor",
}


def supported() -> str:
    """The model types panbench runs, for a refusal's line."""
    return ", ".join(sorted(TYPES))


def describe(model_type: str, where: str) -> ModelType:
    """The description of ``model_type``; any other type refused in one line naming the supported ones."""
    if model_type in TYPES:
        return TYPES[model_type]
    why = REFUSED.get(model_type, "not a panoptic model type panbench describes (panbench/models/hf/types.py)")
    raise PanbenchError(f"{where}: model type '{model_type}' is {why}; panbench runs the model types "
                        f"{supported()}: pass a model of one of them")


def by_architecture(architecture: str) -> ModelType | None:
    """The description of a registered checkpoint's architecture (``EoMT`` for both EoMT types: one
    description apart from the backbone name), None for an architecture no type has."""
    return next((t for t in TYPES.values() if t.architecture == architecture), None)


def query_mask_architectures() -> str:
    """``MaskFormer, Mask2Former or OneFormer``: the architectures ``--postprocess maskwise|argmax`` applies to."""
    names = list(dict.fromkeys(t.architecture for t in TYPES.values() if t.query_masks))
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def postprocess_refusal(where: str, postprocess: str, name: str, mtype: ModelType) -> str | None:
    """The one line refusing ``--postprocess`` for a model of type ``mtype`` (``name``: the model's name), None
    when the mode applies to it."""
    if postprocess in mtype.postprocess_modes:
        return None
    return (f"{where}: --postprocess {postprocess} needs a {query_mask_architectures()} model (query masks), and "
            f"{name} is {mtype.architecture}: {mtype.postprocess_refusal}")
