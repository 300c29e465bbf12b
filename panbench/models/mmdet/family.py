"""The MMDetection family behind :class:`panbench.models.protocol.PanopticModel`: a detector built from a
config (:mod:`panbench.models.mmdet.mm`), its test pipeline, mmdet's ``test_step`` (data preprocessing, network,
panoptic fusion) and mmdet's panoptic encoding read back by :func:`panbench.models.encoding.panoptic_to_segments`.
The model's panoptic fusion head (``panoptic_fusion_head``) is read and changed here and in
:mod:`panbench.models.mmdet.fusion` / :mod:`panbench.models.mmdet.fast_fusion` only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from panbench.analysis.instances import from_mmdet
from panbench.models.amp import autocast_forward, keep_ops_fp32
from panbench.models.encoding import panoptic_to_segments
from panbench.models.mmdet.fusion import deferrable, finish_sample, grab_queries, install_fusion, install_postprocess
from panbench.models.protocol import timed_calls, wrapped_method

if TYPE_CHECKING:
    from panbench.analysis.ap import Instances
    from panbench.models.postprocess import PostProcess


@dataclass
class MMDetModel:
    """An mmdet detector with checked weights, its class mapping and its test pipeline."""

    detector: Any  # the mmdet model on its device
    names: list[str]  # the config's class names, in label order
    label2cat: list[int]  # model label -> dataset category id
    pipeline: Any  # the config's test pipeline (mmengine ``Compose``): image file -> {"inputs", "data_samples"}
    fp32_ops: bool = False  # the mmcv ops without a reduced-precision kernel are wrapped (``--amp``)
    instance_source: str | None = None  # "mmdet instance_on" when the fusion head's instance output is on
    where: str = "model"  # the config file, for messages

    @property
    def module(self) -> Any:
        """The mmdet detector."""
        return self.detector

    def pipeline_with(self, item: dict[str, Any], image_step: Callable[[np.ndarray], np.ndarray]) -> Any:
        """The test pipeline with ``image_step`` after its first step, ``LoadImageFromFile`` (where MMDetection's
        ``test_robustness.py`` puts its ``Corrupt``): the loaded BGR image goes to it in RGB and comes back in BGR."""
        load, *rest = self.pipeline.transforms
        data = load(dict(item))
        data["img"] = np.ascontiguousarray(image_step(data["img"][..., ::-1])[..., ::-1])
        for step in rest:
            data = step(data)
            if data is None:
                return None
        return data

    def input_hw(self, item: Any) -> tuple[int, int]:
        """(H, W) of the pipeline output's image tensor ``inputs``."""
        h, w = item["inputs"].shape[-2:]
        return int(h), int(w)

    def batch_key(self, item: Any) -> tuple[int, ...]:
        """The image tensor's shape padded up to the data preprocessor's ``pad_size_divisor``: what
        ``DetDataPreprocessor`` pads a batch of one to (a batch is padded to its largest image, so images of one
        padded shape are padded in a batch exactly as alone)."""
        c, h, w = (int(x) for x in item["inputs"].shape[-3:])
        d = int(getattr(self.detector.data_preprocessor, "pad_size_divisor", 1) or 1)
        return c, -(-h // d) * d, -(-w // d) * d

    def forward(self, batch: list[Any], device: str, amp: str | None) -> list[Any]:
        """mmdet's ``test_step`` on the collated batch; under ``amp`` the mmcv ops that have no
        reduced-precision kernel run in fp32 (:func:`panbench.models.amp.keep_ops_fp32`)."""
        from mmengine.dataset import pseudo_collate

        data = pseudo_collate(batch)
        if amp is not None and not self.fp32_ops:
            keep_ops_fp32(self.detector)
            self.fp32_ops = True
        if self.instance_source != "mmdet roi_head":
            return autocast_forward(lambda: self.detector.test_step(data), device, amp)
        with roi_head_instances(self.detector) as kept:
            outputs = autocast_forward(lambda: self.detector.test_step(data), device, amp)
        for out, inst in zip(outputs, kept):
            out.pred_instances = inst
        return outputs

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """While entered, a forward leaves panbench's fusion (``--fusion panbench``) to :meth:`finish`; mmdet's own
        fusion (``--fusion mmdet``, ``--postprocess``) still runs in the forward."""
        fusion = deferrable(self.detector)
        if fusion is None:
            yield
            return
        fusion.defer = True
        try:
            yield
        finally:
            fusion.defer = False

    def finish(self, outputs: list[Any]) -> list[Any]:
        """The data samples of a forward made under :meth:`deferred`, with their fusion run (in place)."""
        return [finish_sample(out) for out in outputs]

    def to_segments(self, output: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The data sample's ``pred_panoptic_seg`` (mmdet's encoding, VOID = number of classes) as segments."""
        return panoptic_to_segments(output.pred_panoptic_seg.sem_seg[0], len(self.names), self.label2cat)

    def to_instances(self, output: Any) -> Instances | None:
        """The data sample's ``pred_instances`` (the fusion head's ``instance_on`` output) in dataset ids."""
        if self.instance_source is None or "pred_instances" not in output:
            return None

        return from_mmdet(output.pred_instances, self.label2cat)

    def to_semantic(self, output: Any) -> np.ndarray | None:
        """None: mmdet 3.3's MaskFormer fusion head asserts ``not semantic_on``, so mIoU is the panoptic one."""
        return None

    def timed_fusion(self, seconds: list[float], sync: Callable[[], None]) -> AbstractContextManager[None]:
        """The calls of the panoptic fusion head's ``predict`` timed into ``seconds``."""
        return timed_calls(getattr(self.detector, "panoptic_fusion_head", None), "predict", seconds, sync)

    def configure(self, postprocess: PostProcess, fusion: str) -> str | None:
        """``--postprocess maskwise|argmax`` replaces the fusion head's query merging
        (:func:`~panbench.models.mmdet.fusion.install_postprocess`); else ``--fusion panbench`` runs panbench's
        implementation of the head's own fusion (:func:`~panbench.models.mmdet.fusion.install_fusion`).
        Returns ``panbench`` or ``mmdet`` for the head's own fusion, None when ``--postprocess`` replaced it."""
        install_postprocess(self.detector, postprocess, self.where)
        if install_fusion(self.detector, fusion):
            return "panbench"
        return "mmdet" if postprocess.name == "default" else None

    def compile_targets(self) -> list[tuple[str, Any]]:
        """The backbone and neck: the heads take mmengine data samples and call mmcv ops, on which dynamo breaks
        the graph (docs/benchmarks.md)."""
        return [(n, m) for n in ("backbone", "neck") if (m := getattr(self.detector, n, None)) is not None]

    def query_masks(self, item: Any, device: str, top: int) -> tuple[Any, list[tuple[int, float, np.ndarray]]]:
        """One image through ``forward`` with the query masks of MaskFormer's and Mask2Former's fusion head
        (its ``predict`` inputs) read on the way: the ``top`` queries by best class probability."""
        with grab_queries(self.detector) as captured:
            out = self.forward([item], device, None)[0]
        if not captured:
            return out, []
        import torch
        import torch.nn.functional as F

        probs = captured["cls"][0].softmax(-1)[:, :len(self.names)]
        score, label = probs.max(-1)
        h_in, w_in = item["data_samples"].img_shape
        h, w = item["data_samples"].ori_shape
        masks = captured["pred"][0][:, :h_in, :w_in].sigmoid()
        masks = F.interpolate(masks[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        return out, [(int(label[q]), float(score[q]), masks[q].cpu().numpy())
                     for q in torch.argsort(score, descending=True)[:top].tolist()]

    def enable_instances(self) -> None:
        """AP's instance output: the fusion head's ``instance_on`` output (MaskFormer, Mask2Former), or the
        instance branch (``roi_head``) that PanopticFPN's fusion head consumes."""
        head = getattr(self.detector, "panoptic_fusion_head", None)
        if (getattr(head, "test_cfg", None) or {}).get("instance_on"):
            self.instance_source = "mmdet instance_on"
        elif head is not None and hasattr(self.detector, "roi_head") and hasattr(head, "predict"):
            self.instance_source = "mmdet roi_head"

    def to(self, device: str) -> MMDetModel:
        """The detector moved to ``device``."""
        self.detector.to(device)
        return self


@contextmanager
def roi_head_instances(detector: Any) -> Iterator[list[Any]]:
    """While entered, the instance results (``InstanceData``: masks at the image's size, scores, labels) that
    PanopticFPN's ``roi_head`` hands its fusion head (``panoptic_fusion_head.predict(mask_results_list, ...)``)
    go to the list yielded, one per image in batch order."""
    kept: list[Any] = []

    def keep(orig: Callable) -> Callable:
        def predict(mask_results_list: Any, *a: Any, **k: Any) -> Any:
            kept.extend(mask_results_list)
            return orig(mask_results_list, *a, **k)

        return predict

    with wrapped_method(detector.panoptic_fusion_head, "predict", keep):
        yield kept
