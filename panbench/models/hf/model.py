"""Hugging Face ``transformers`` panoptic models (``--model hf:<hub id or directory>``) as the family's
:class:`panbench.models.protocol.PanopticModel` (docs/huggingface.md): :func:`load_hf_model` loads one with its
processor and its labels mapped (:func:`map_labels`), :class:`HFPanoptic` runs it.

Over 600 lines: the model, the loading that makes it and the post-processing settings its record names are read
together (each names what the others keep); the model types' table is :mod:`.types`, the post-processing stage
:mod:`.fusion`, the originals' inference :mod:`.original`."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from panbench.analysis.ap import MAX_DETS, Instances, as_numpy, from_arrays, semantic_categories
from panbench.errors import PanbenchError
from panbench.models.amp import autocast_forward, autocast_now, keep_autocast
from panbench.models.checkpoints import on_local_rank0
from panbench.models.encoding import INSTANCE_OFFSET, panoptic_to_segments
from panbench.models.grid import Setting
from panbench.models.hf.fusion import (
    Fusion,
    HFMerged,
    HFSegments,
    OriginalFusion,
    to_panbench_segments,
)
from panbench.models.hf.labels import map_labels
from panbench.models.hf.original import padded_size as original_padded_size
from panbench.models.hf.original import preprocess, protocol_for, read_rgb
from panbench.models.hf.types import (
    PIPELINE_KEY,
    ModelType,
    Original,
    cfg_settings,
    describe,
    own_settings,
    pipeline_of,
    postprocess_refusal,
    unknown_test_input,
)
from panbench.models.postprocess import PostProcess
from panbench.models.protocol import Abilities, Built, ForDataset, Weights, timed_calls
from panbench.ops.pairing import install_command

INSTANCE_SOURCE = "transformers post_process_instance_segmentation"  # the record's ap_source


@dataclass
class HFOutput:
    """One image's output (``--postprocess``: its map and scores) and, with AP on, the network's outputs and size;
    ``shared``: in a grid, one dict for the image's outputs of every setting, holding the instances and semantic
    map (which the settings do not change) once converted."""

    result: HFSegments | HFMerged
    outputs: SimpleNamespace | None = None
    target: tuple[int, int] | None = None
    shared: dict[str, Any] | None = None


@dataclass(frozen=True, eq=False)
class _Pending:
    """A batch's post-processing left by a forward under :meth:`HFPanoptic.deferred`: ``job`` runs it as the forward
    would have; ``args`` are its (the network's outputs, input sizes, padded size, image sizes), ``under()`` the
    autocast the forward ran under (a grid's settings run in it too)."""

    job: Callable[[], list[HFOutput]]
    args: tuple[Any, list[tuple[int, int]], tuple[int, int], list[tuple[int, int]]]
    under: Callable[[], AbstractContextManager[Any]]


class HFPanoptic(Abilities, torch.nn.Module):
    """A transformers model and its processor as a ``PanopticModel``; its fusion stage is :class:`Fusion`."""

    def __init__(self, model: Any, processor: Any, mtype: ModelType, fusion: Fusion, names: list[str],
                 label2cat: list[int], where: str = "hf model", own: dict[str, float] | None = None) -> None:
        super().__init__()
        self.model, self.processor, self.mtype = model, processor, mtype  # mtype: its model type's description
        # the post-processing settings of the original on the run's dataset (its type's, its threshold there)
        self.own: dict[str, float] = dict(mtype.settings if own is None else own)
        # --pipeline original: the original's pre- and post-processing (:mod:`.original`); None: transformers'
        self.protocol = fusion.protocol if isinstance(fusion, OriginalFusion) else None
        # OneFormer's "panoptic" task under the original's input, tokenised by its processor once
        self.task_tokens: torch.Tensor | None = None
        if self.protocol is not None and mtype.task_prompt:
            from PIL import Image

            tokens = processor(images=Image.new("RGB", (32, 32)), task_inputs=["panoptic"], return_tensors="pt")
            self.task_tokens = tokens["task_inputs"][0]
        self.fusion = fusion
        self.names, self.label2cat, self.where = names, label2cat, where
        self.instance_source: str | None = None  # INSTANCE_SOURCE once enable_instances() turned AP on
        self.deferring = False  # under deferred(): forward leaves the fusion stage to finish()

    @property
    def module(self) -> HFPanoptic:
        """This module (the transformers model and its fusion)."""
        return self

    def pipeline(self, item: dict[str, Any]) -> dict[str, Any]:
        """Image file -> the processor's tensors for it (run in the DataLoader workers) and its size."""
        from PIL import Image

        if self.protocol is not None:
            return self._original_inputs(item)
        if "img" in item:  # an RGB array decoded (and corrupted) before the pipeline (panbench.robustness)
            img = Image.fromarray(item["img"])
        else:
            with Image.open(item["img_path"]) as im:
                img = im.convert("RGB")
        kw: dict[str, Any] = {"task_inputs": ["panoptic"]} if self.mtype.task_prompt else {}
        if self.mtype.pad_square:  # its post-processing reads the masks of a square padded input
            kw["do_pad"] = True
        enc = self.processor(images=img, return_tensors="pt", **kw)
        out: dict[str, Any] = {k: v[0] for k, v in enc.items() if isinstance(v, torch.Tensor)}
        out["height"], out["width"] = img.height, img.width
        return out

    def _original_inputs(self, item: dict[str, Any]) -> dict[str, Any]:
        """The original's pre-processing of an image file (or of ``img``, a decoded RGB array): its network input,
        resized size and original size."""
        assert self.protocol is not None
        rgb = item["img"] if "img" in item else read_rgb(item["img_path"], self.protocol.exif)
        x, size = preprocess(self.protocol, rgb)
        out: dict[str, Any] = {"pixel_values": x, "input_hw": torch.tensor(size), "height": int(rgb.shape[0]),
                               "width": int(rgb.shape[1])}
        if self.task_tokens is not None:
            out["task_inputs"] = self.task_tokens
        return out

    def pipeline_with(self, item: dict[str, Any], image_step: Callable[[np.ndarray], np.ndarray]) -> dict[str, Any]:
        """:meth:`pipeline` of the decoded RGB image after ``image_step`` (read as the pipeline reads it: EXIF
        orientation applied where the original's loader applies it)."""
        rgb = read_rgb(item["img_path"], self.protocol is not None and self.protocol.exif)
        return self.pipeline({**item, "img": image_step(rgb)})

    def input_hw(self, item: dict[str, Any]) -> tuple[int, int]:
        """(H, W) of the processor's ``pixel_values``."""
        h, w = item["pixel_values"].shape[-2:]
        return int(h), int(w)

    def batch_key(self, item: dict[str, Any]) -> tuple[int, ...]:
        """The ``pixel_values`` shape (a batch is padded to its largest input, :meth:`_step`); under the original's
        padding to a size divisibility, the padded shape: images padded to one shape batch together, as the
        original pads them (``ImageList``)."""
        shape = tuple(int(x) for x in item["pixel_values"].shape)
        if self.protocol is None or self.protocol.divisor <= 1:
            return shape
        return (*shape[:-2], *original_padded_size(self.protocol, [(shape[-2], shape[-1])]))

    def forward(self, batch: list[dict[str, Any]], device: str, amp: str | None) -> list[Any]:
        """Pipeline outputs -> one output per image: pad, network, post-processing (all under ``amp``)."""
        return autocast_forward(lambda: self._step(batch), device, amp)

    def _step(self, batch: list[dict[str, Any]]) -> list[Any]:
        pv = [b["pixel_values"] for b in batch]
        shapes = [(int(t.shape[-2]), int(t.shape[-1])) for t in pv]
        if self.protocol is not None:  # the original's padding (ImageList, NestedTensor; EoMT's square)
            h, w = original_padded_size(self.protocol, shapes)
            sizes = [(int(b["input_hw"][0]), int(b["input_hw"][1])) for b in batch]
        else:
            h, w = max(s[0] for s in shapes), max(s[1] for s in shapes)
            sizes = shapes
        dev = next(self.model.parameters()).device
        pixels = pv[0].new_zeros((len(pv), pv[0].shape[0], h, w))
        mask = torch.zeros((len(pv), h, w), dtype=torch.int64)
        for k, (t, (th, tw)) in enumerate(zip(pv, shapes)):
            pixels[k, :, :th, :tw] = t
            mask[k, :th, :tw] = batch[k]["pixel_mask"] if "pixel_mask" in batch[0] else 1
        inputs = {"pixel_values": pixels.to(dev)}
        # EoMT takes none (its inputs are padded squares); the originals give one to DETR only
        if self.mtype.pixel_mask if self.protocol is None else self.protocol.pixel_mask:
            inputs["pixel_mask"] = mask.to(dev)
        if "task_inputs" in batch[0]:
            inputs["task_inputs"] = torch.stack([b["task_inputs"] for b in batch]).to(dev)
        outputs = self.model(**inputs)
        targets = [(int(b["height"]), int(b["width"])) for b in batch]
        if self.deferring:  # run on the post-processing thread, which times it itself (fusion.segments)
            args = (outputs, sizes, (h, w), targets)
            job = keep_autocast(partial(self._fuse, *args, timed=False))
            return [_Pending(job, args, autocast_now())] * len(batch)
        return self._fuse(outputs, sizes, (h, w), targets)

    def _fuse(self, outputs: Any, sizes: list[tuple[int, int]], padded: tuple[int, int],
              targets: list[tuple[int, int]], timed: bool = True) -> list[HFOutput]:
        """A batch's post-processing: the fusion stage (``timed``: as ``fusion.predict``, which the eval loop times
        inside the forward) and, with AP on, each image's share of the network's outputs."""
        results = (self.fusion.predict if timed else self.fusion.segments)(outputs, sizes, padded, targets)
        if self.instance_source is None:
            return [HFOutput(r) for r in results]
        return [HFOutput(r, self.fusion.share(outputs, i, size, padded), t)
                for i, (r, size, t) in enumerate(zip(results, sizes, targets))]

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """While entered, :meth:`forward` leaves its post-processing (the fusion stage) to :meth:`finish`."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False

    def finish(self, outputs: list[Any]) -> list[Any]:
        """A forward's outputs with the deferred post-processing run (one job per batch the network ran)."""
        out: list[Any] = []
        while len(out) < len(outputs):
            o = outputs[len(out)]
            out += o.job() if isinstance(o, _Pending) else [o]
        return out

    def grid_kind(self) -> str:
        """``hf``: the keys a grid may vary are transformers' post-processing arguments
        (:data:`panbench.models.grid.GRID_KEYS`)."""
        return "hf"

    def score_cutoff(self, cfg_options: dict[str, Any] | None, postprocess: PostProcess) -> float | None:
        """The score below which the post-processing drops a segment under these options (the analyses' "own"
        threshold, docs/analysis.md): ``--postprocess``'s confidence threshold, else transformers' ``threshold``."""
        if (rule := postprocess.cutoff()) is not None:
            return rule
        value = (cfg_options or {}).get("threshold", self.grid_own("threshold"))
        return None if value is None else float(value)

    def grid_own(self, key: str) -> float | None:
        """The original's own value of post-processing argument ``key`` on the run's dataset (:attr:`own`), None
        for another key."""
        return self.own.get(key)

    def finish_grid(self, outputs: list[Any], settings: list[Setting]) -> Iterator[list[HFOutput]]:
        """A deferred forward's outputs under each of ``settings`` in turn (docs/eval.md, "Grids"): per setting, one
        output per image as a separate run of it gives; each image's share of the network's outputs taken once."""
        pending: list[_Pending] = []  # one job per batch the network ran, as finish() walks them
        n = 0
        while n < len(outputs):
            o = outputs[n]
            if not isinstance(o, _Pending):
                raise PanbenchError(f"{self.where}: the forward ran its post-processing; a grid needs it deferred")
            pending.append(o)
            n += len(o.args[1])
        for st in settings:
            if st.postprocess.name != "default":
                self._check_postprocess(st.postprocess)
        runs = [self._grid(p, settings) for p in pending]
        for _ in settings:
            yield [out for run in runs for out in next(run)]

    def _grid(self, pending: _Pending, settings: list[Setting]) -> Iterator[list[HFOutput]]:
        """One batch's outputs (``pending``) under each setting in turn."""
        outputs, sizes, padded, targets = pending.args
        with pending.under():
            images = [self.fusion.image(outputs, i, size, padded) for i, size in enumerate(sizes)]
        keep = self.instance_source is not None  # AP and mIoU read the network's outputs: the same for every setting
        with pending.under():  # what they read: each image's share, cropped as the run's (:meth:`_fuse`)
            shares = [self.fusion.share(outputs, i, size, padded) for i, size in enumerate(sizes)] if keep else images
        shared: list[dict[str, Any]] = [{} for _ in images]
        for st in settings:
            values = {**self.own, **cfg_settings(self.where, st.cfg_options)}
            step = {"pipeline": pipeline_of(self.where, st.cfg_options, self.mtype)} if self.protocol is not None \
                else {}
            with pending.under():
                results = [self.fusion.one(one, t, values, st.postprocess, **step) for one, t in zip(images, targets)]
            yield [HFOutput(r, one, t, sh) if keep else HFOutput(r)
                   for r, one, t, sh in zip(results, shares, targets, shared)]

    def to_segments(self, output: HFOutput) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One image's segments: transformers' (:func:`to_panbench_segments`) or ``--postprocess``'s map, each with
        its score."""
        r = output.result
        if isinstance(r, HFSegments):
            return to_panbench_segments(r.segmentation, r.info, self.fusion.label_of, self.label2cat)
        return panoptic_to_segments(r.pan, len(self.names), self.label2cat, r.scores)

    def enable_instances(self) -> None:
        """AP and the semantic output on: each image's output keeps what their post-processing reads."""
        self.instance_source = INSTANCE_SOURCE

    def to_instances(self, output: HFOutput) -> Instances | None:
        """The processor's ``post_process_instance_segmentation`` (``instance_settings``): the thing segments (a
        grid's image: converted for its first setting, a copy for the others)."""
        if output.outputs is None or output.target is None:
            return None
        if output.shared is None:
            return self._instances(output)
        if "instances" not in output.shared:
            output.shared["instances"] = self._instances(output)
        inst = output.shared["instances"]
        return Instances([dict(r) for r in inst.rles], inst.scores.copy(), inst.category_ids.copy())

    def _instances(self, output: HFOutput) -> Instances:
        processor = getattr(self.processor, "image_processor", self.processor)
        if getattr(processor, "class_info_file", "") is None:  # OneFormer's: transformers 5 tests
            processor = copy.copy(processor)  # `"ade20k" in class_info_file`, None without a file
            processor.class_info_file = ""
        r = processor.post_process_instance_segmentation(output.outputs, target_sizes=[output.target],
                                                         **self.mtype.instance_settings)[0]
        cats = self._model_cats()
        things = {int(c) for c in self.label2cat[:self.fusion.num_things_classes]}  # panbench's labels: things first
        keep = [k for k, s in enumerate(r["segments_info"]) if 0 <= s["label_id"] < len(cats)
                and cats[s["label_id"]] in things]
        seg = r["segmentation"]
        if seg is not None and seg.dim() == 3:  # binary maps in the order of segments_info
            seg = seg[keep] if keep else seg[:0]
        return from_hf_instances({"segmentation": seg, "segments_info": [r["segments_info"][k] for k in keep]}, cats)

    def to_semantic(self, output: HFOutput) -> np.ndarray | None:
        """``post_process_semantic_segmentation`` in dataset ids (-1: VOID); None with AP off or ``no_semantic`` (a
        grid's image: converted for its first setting, a copy for the others)."""
        if output.outputs is None or output.target is None or self.mtype.no_semantic is not None:
            return None
        if output.shared is None:
            return self._semantic(output)
        if "semantic" not in output.shared:
            output.shared["semantic"] = self._semantic(output)
        return output.shared["semantic"].copy()

    def _semantic(self, output: HFOutput) -> np.ndarray:
        processor = getattr(self.processor, "image_processor", self.processor)
        labels = processor.post_process_semantic_segmentation(output.outputs, target_sizes=[output.target])[0]
        return semantic_categories(labels, self._model_cats())

    def _model_cats(self) -> list[int]:
        """Model label id -> dataset category id (-1: a label mapped to none, e.g. DETR's N/A)."""
        label_of = self.fusion.label_of
        return [self.label2cat[label_of[h]] if h in label_of else -1 for h in range(max(label_of, default=-1) + 1)]

    def timed_fusion(self, seconds: list[float], sync: Callable[[], None]) -> AbstractContextManager[None]:
        """The calls of the post-processing stage (``fusion.predict``) timed into ``seconds``."""
        return timed_calls(self.fusion, "predict", seconds, sync)

    def configure(self, postprocess: PostProcess, fusion: str) -> None:
        """``--postprocess maskwise|argmax`` in place of transformers' post-processing (``--fusion``: one choice)."""
        if postprocess.name == "default":
            return
        self._check_postprocess(postprocess)
        self.fusion.postprocess = postprocess

    def _check_postprocess(self, postprocess: PostProcess) -> None:
        """``--postprocess maskwise|argmax`` refused in one line where it does not apply."""
        refusal = postprocess_refusal(self.where, postprocess.name, "this model", self.mtype)
        if refusal is not None:
            raise PanbenchError(f"{refusal}; leave --postprocess out")
        if self.fusion.columns is None:  # labels skipped (placeholders): no column of class logits for them
            raise PanbenchError(f"{self.where}: --postprocess {postprocess.name} reads the class logits of every "
                                "model label, and labels of this model map to no category (N/A); leave "
                                "--postprocess out")

    def compile_targets(self) -> list[tuple[str, Any]]:
        """The network whole (post-processing stays eager), as EoMT's published FPS was measured."""
        return [("model", self.model)]

    def query_masks(self, item: dict[str, Any], device: str, top: int) -> tuple[Any, list]:
        """One image through ``forward``; no query masks drawn for transformers models."""
        return self.forward([item], device, None)[0], []


WEIGHT_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.model"]  # what a model directory needs from the hub


def from_hf_instances(result: dict[str, Any], label2cat: Sequence[int], max_dets: int | None = MAX_DETS) -> Instances:
    """One image's dict of transformers' ``post_process_instance_segmentation``: an (N, H, W) stack of binary maps
    in the order of ``segments_info`` (``return_binary_maps=True``), or an (H, W) map of segment ids, as
    :class:`~panbench.analysis.ap.Instances` in dataset ids, the ``max_dets`` best."""
    info = result["segments_info"]
    seg = result["segmentation"] if result["segmentation"] is not None else np.zeros((0, 0, 0))
    if not info:
        return Instances.empty()
    if seg.ndim == 3:
        masks = seg[: len(info)] != 0  # a GPU's maps stay there (from_arrays encodes them on it)
    else:
        masks = as_numpy(seg)[None] == np.array([s["id"] for s in info])[:, None, None]
    return from_arrays(masks, [s["score"] for s in info], [s["label_id"] for s in info], label2cat, max_dets)


def resolve_dir(ref: str, any_rank: Callable[[bool], bool] | None = None) -> tuple[Path, str | None]:
    """(a local model directory, None) or (the hub snapshot of ``ref``, downloaded by local rank 0 first, ``ref``)."""
    p = Path(ref).expanduser()
    if p.is_dir():
        return p, None
    if p.exists() or ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise PanbenchError(f"{ref}: model directory not found; pass a directory written by save_pretrained "
                            "(config.json, weights, preprocessor_config.json) or a hub id such as "
                            "facebook/mask2former-swin-tiny-coco-panoptic")
    d = on_local_rank0(lambda: _snapshot(ref), any_rank,
                       f"hf:{ref}: the download on local rank 0 failed (its message is in its log)")
    return (d or _snapshot(ref)), ref


def _snapshot(ref: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise PanbenchError("hf: models need huggingface_hub and transformers: .venv/bin/pip install transformers "
                            "(make setup installs them)") from e
    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported: read it again here
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    try:
        d = Path(snapshot_download(ref, allow_patterns=WEIGHT_PATTERNS, local_files_only=offline))
        if not any(d.glob("*.safetensors")):  # an older repository: PyTorch's pickle format only
            d = Path(snapshot_download(ref, allow_patterns=[*WEIGHT_PATTERNS, "*.bin"], local_files_only=offline))
    except Exception as e:  # offline and not cached, unknown id, gated repository, network errors
        msg = "HF_HUB_OFFLINE is set" if offline else \
            f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:100]}"
        raise PanbenchError(f"hf:{ref}: not in the Hugging Face cache and not downloadable here ({msg}); download it "
                            f"where the hub is reachable (hf download {ref}) or pass a local directory") from e
    return d


def digest(d: Path) -> str:
    """sha256 over the directory's files (names and contents; README and dot files left out)."""
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.name.lower() != "readme.md":
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def backbone_packages(cfg: Any) -> tuple[str, ...]:
    """``("timm",)`` when the model's config builds a timm backbone (DETR's hub checkpoints), else nothing."""
    kind = str(getattr(getattr(cfg, "backbone_config", None), "model_type", None) or "")
    return ("timm",) if getattr(cfg, "use_timm_backbone", False) or kind.startswith("timm") else ()


def backbone_name(cfg: Any) -> str | None:
    """The record's backbone: a timm backbone's model, else the backbone config's type, else ``backbone``."""
    bc = getattr(cfg, "backbone_config", None)
    timm_name = getattr(bc, "backbone", None) if backbone_packages(cfg) else None
    return timm_name or getattr(bc, "model_type", None) or getattr(cfg, "backbone", None)


def processor_backend(version: str) -> dict[str, Any]:
    """How ``from_pretrained`` is asked for the PIL processor (docs/huggingface.md, "Which processor")."""
    return {"backend": "pil"} if _version(version) >= (5, 4) else {"use_fast": False}


#: hf:<ref> -> what its latest load in this process records of it but the post-processing settings
_RECORDED: dict[str, dict[str, Any]] = {}
_OWN: dict[str, dict[str, float]] = {}  # hf:<ref> -> the original's settings on its latest load's dataset


def load_hf_model(ref: str, categories: Any, device: str, any_rank: Callable[[bool], bool] | None = None,
                  cfg_options: dict[str, Any] | None = None, dataset: ForDataset | None = None) -> Built:
    """``hf:<ref>`` -> the model on ``device`` and its provenance, its inference the original's on ``dataset``;
    ``cfg_options``: its post-processing's settings in place of the original's (:func:`panbench.models.hf.types.
    cfg_settings`); ``dataset`` None: COCO."""
    dataset = ForDataset() if dataset is None else dataset
    d, hub_id = resolve_dir(ref, any_rank)
    where = f"hf:{ref}"
    transformers = _quiet_transformers()
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForUniversalSegmentation, AutoProcessor

    cfg = _config(AutoConfig, d)
    mtype = describe(cfg.model_type, where)
    processor = _processor(d, mtype, AutoProcessor if mtype.task_prompt else AutoImageProcessor,
                           transformers.__version__)
    # float32 whatever dtype the weights were saved in (transformers 5 loads them as saved, "auto"): --amp is
    # the one way to run reduced precision, and the record's "amp" says which
    dtype_kw = "dtype" if _version(transformers.__version__) >= (4, 56) else "torch_dtype"
    model = _step(lambda: AutoModelForUniversalSegmentation.from_pretrained(d, **{dtype_kw: torch.float32}), d,
                  "the model does not load")
    model.eval()
    order, label2cat, skipped = map_labels(cfg.id2label, categories, where, dataset.aliases)
    if len(order) >= INSTANCE_OFFSET:  # --postprocess's panoptic map carries label + instance * 1000
        raise PanbenchError(f"{where}: {len(order)} labels; panbench's panoptic encoding takes at most 999")
    isthing = dict(zip(categories.ids, categories.isthing))
    fuse = {h for h, c in zip(order, label2cat) if not isthing[c]}
    pipeline = pipeline_of(where, cfg_options, mtype)
    image_processor = getattr(processor, "image_processor", processor)
    own = protocol_for(mtype, image_processor, dataset.name)  # the original's inference there (None: not known)
    if own is None and pipeline != "transformers":
        raise PanbenchError(unknown_test_input(where, mtype, dataset.name))
    base = own_settings(mtype, own)
    settings = {**base, **cfg_settings(where, cfg_options)}
    fusion = _fusion(mtype, image_processor, settings, order, sum(bool(isthing[c]) for c in label2cat), fuse,
                     len(cfg.id2label), None if pipeline == "transformers" else own, pipeline)
    names = [cfg.id2label[h] for h in order]
    module = HFPanoptic(model, processor, mtype, fusion, names, label2cat, where, base).to(device)
    # the resolved configuration the run records (its sha256 is the config hash)
    meta = {k: v for k, v in cfg.to_dict().items() if k not in ("_name_or_path", "transformers_version")}
    _RECORDED[ref] = {"framework": "transformers", "model_type": cfg.model_type, "model_class": type(model).__name__,
                      "processor_class": type(image_processor).__name__, "config": meta,
                      "processor": image_processor.to_dict(), "label_ids_to_fuse": sorted(fuse),
                      "skipped_labels": skipped, "transformers": transformers.__version__}
    if own is not None:
        _RECORDED[ref]["original"] = own.describe()  # in the config text of a run under its input
    _OWN[ref] = base
    return Built(module, Weights(d, digest(d), hub_id), *recorded_config(ref, settings, pipeline),
                 named=(mtype.architecture, backbone_name(cfg) or mtype.backbone), packages=backbone_packages(cfg),
                 pipeline=pipeline)


def _processor(d: Path, mtype: ModelType, auto: Any, version: str) -> Any:
    """The checkpoint's processor (its PIL backend), OneFormer's with its resize stand-in where torchvision is
    missing."""
    if mtype.resize_shim and importlib.util.find_spec("torchvision") is None:
        _oneformer_resize_without_torchvision()
    backend = processor_backend(version)
    return _step(lambda: auto.from_pretrained(d, **backend), d,
                 "its processor does not load (preprocessor_config.json)")


def _quiet_transformers() -> Any:
    """The transformers package, its progress bars and warnings off (they would cover panbench's output); its
    absence refused in one line."""
    try:
        import transformers
    except ImportError as e:
        raise PanbenchError("hf: models need the transformers package: .venv/bin/pip install transformers "
                            "(make setup installs it)") from e
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    return transformers


def _fusion(mtype: ModelType, image_processor: Any, settings: dict[str, float], order: list[int], n_things: int,
            fuse: set[int], n_hf: int, protocol: Original | None, pipeline: str) -> Fusion:
    """The post-processing stage of a model fed ``protocol``'s input (the original's; None: the processor's)."""
    args = (mtype, image_processor.post_process_panoptic_segmentation, settings, order, n_things, fuse, n_hf)
    return OriginalFusion(protocol, pipeline, *args) if protocol is not None else Fusion(*args)


def recorded_config(ref: str, settings: dict[str, float], pipeline: str | None) -> tuple[str, str]:
    """The configuration text a run of ``hf:<ref>`` (loaded in this process) records with post-processing
    ``settings`` (over its type's own) and ``pipeline`` (None: its type's default), and its sha256's first 16 hex
    digits (the config hash)."""
    if ref not in _RECORDED:
        raise PanbenchError(f"hf:{ref}: its configuration is read as it loads; load the model first")
    described = dict(_RECORDED[ref])
    mtype = describe(described["model_type"], f"hf:{ref}")
    own = _OWN.get(ref, mtype.settings)
    pipeline = pipeline_of(f"hf:{ref}", None if pipeline is None else {PIPELINE_KEY: pipeline}, mtype)
    if pipeline == "transformers":  # the original's input and what it runs after it: every other pipeline's
        described.pop("original", None)
    text = json.dumps({**described, "pipeline": pipeline, "postprocess": {**own, **settings}}, sort_keys=True,
                      indent=1, default=str)
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


def _version(v: str) -> tuple[int, ...]:
    """``"4.56.0.dev0"`` -> ``(4, 56)``: major and minor."""
    return tuple(int(x) for x in (v.split(".") + ["0"])[:2] if x.isdigit())


def _config(auto: Any, d: Path) -> Any:
    """The model's ``config.json``; a folder without one refused in one line."""
    if not (d / "config.json").is_file():
        raise PanbenchError(f"{d}: no config.json in this folder; pass a directory written by save_pretrained "
                            "(config.json, the weights, preprocessor_config.json) or a hub id")
    return _step(lambda: auto.from_pretrained(d), d, "config.json does not load")


def _step(fn: Callable[[], Any], d: Path, what: str) -> Any:
    """One loading step; its failure in one line (timm missing for DETR's hub checkpoints, a bad file ...)."""
    try:
        return fn()
    except Exception as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        hint = "check the directory (save_pretrained writes config.json, the weights and preprocessor_config.json)"
        if "timm" in msg.lower():
            hint = f"{install_command('timm')}; DETR's hub checkpoints use a timm backbone"
        raise PanbenchError(f"{d}: {what} ({type(e).__name__}: {msg}); {hint}") from e


def _oneformer_resize_without_torchvision() -> None:
    """transformers 5.23-5.24's OneFormer PIL post-processing calls torchvision's ``tvF.resize`` even without it."""
    from transformers.models.oneformer import image_processing_pil_oneformer as pil

    if not hasattr(pil, "tvF"):
        pil.tvF = torchvision_resize_stand_in()


def torchvision_resize_stand_in() -> Any:
    """torchvision's bilinear ``resize`` (what ``compute_segments`` calls) without torchvision: ``F.interpolate``
    with ``antialias=True``, bit for bit (tests/models/test_hf_vision.py)."""

    def resize(x: torch.Tensor, size: Any, interpolation: str = "bilinear", antialias: bool = True) -> torch.Tensor:
        size = [int(v) for v in size]
        if list(x.shape[-2:]) == size:
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)

    return SimpleNamespace(resize=resize, InterpolationMode=SimpleNamespace(BILINEAR="bilinear"))
