"""The MMDetection family behind :class:`panbench.models.protocol.PanopticModel` (:class:`MMDetModel`), and every
change panbench makes to a model's ``panoptic_fusion_head`` (its computation in :mod:`.fast_fusion`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from panbench.analysis.ap import MAX_DETS, Instances, from_arrays
from panbench.errors import PanbenchError
from panbench.models.amp import autocast_forward, autocast_now, keep_ops_fp32
from panbench.models.encoding import panoptic_to_segments
from panbench.models.grid import Setting
from panbench.models.postprocess import PostProcess, merge_queries
from panbench.models.protocol import Abilities, timed_calls, wrapped_method

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch


def from_mmdet(pred_instances: Any, label2cat: Sequence[int], max_dets: int | None = MAX_DETS) -> Instances:
    """An mmdet ``InstanceData`` (``pred_instances``, or ``roi_head.predict``'s: ``masks``, ``scores``, ``labels``)
    as :class:`~panbench.analysis.ap.Instances` in dataset ids, the ``max_dets`` best (the zoos' ``max_per_image``)."""
    return from_arrays(pred_instances.masks, pred_instances.scores, pred_instances.labels, label2cat, max_dets)


@dataclass
class MMDetModel(Abilities):
    """An mmdet detector with checked weights, its class mapping and its test pipeline."""

    detector: Any  # the mmdet model on its device
    names: list[str]  # the config's class names, in label order
    label2cat: list[int]  # model label -> dataset category id
    pipeline: Any  # the config's test pipeline (mmengine ``Compose``): image file -> {"inputs", "data_samples"}
    fp32_ops: bool = False  # the mmcv ops without a reduced-precision kernel are wrapped (``--amp``)
    instance_source: str | None = None  # "mmdet instance_on" when the fusion head's instance output is on
    where: str = "model"  # the config file, for messages
    _converted: dict[int, tuple[Any, Instances | None]] | None = None  # a grid's batch: to_instances once per output

    @property
    def module(self) -> Any:
        """The mmdet detector."""
        return self.detector

    def pipeline_with(self, item: dict[str, Any], image_step: Callable[[np.ndarray], np.ndarray]) -> Any:
        """The test pipeline with ``image_step`` (given RGB) after ``LoadImageFromFile``, where ``Corrupt`` goes."""
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
        """The image tensor's shape padded up to ``pad_size_divisor``, as ``DetDataPreprocessor`` pads it alone."""
        c, h, w = (int(x) for x in item["inputs"].shape[-3:])
        d = int(getattr(self.detector.data_preprocessor, "pad_size_divisor", 1) or 1)
        return c, -(-h // d) * d, -(-w // d) * d

    def forward(self, batch: list[Any], device: str, amp: str | None) -> list[Any]:
        """mmdet's ``test_step`` on the collated batch (under ``amp``: :func:`panbench.models.amp.keep_ops_fp32`)."""
        from mmengine.dataset import pseudo_collate

        data = pseudo_collate(batch)
        if amp is not None and not self.fp32_ops:
            keep_ops_fp32(self.detector)
            self.fp32_ops = True
        if self.instance_source != "mmdet roi_head":
            return autocast_forward(lambda: self.detector.test_step(data), device, amp)
        with predict_inputs(self.detector) as calls:
            outputs = autocast_forward(lambda: self.detector.test_step(data), device, amp)
        for out, inst in zip(outputs, [inst for args in calls for inst in args[0]]):
            out.pred_instances = inst
        return outputs

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """While entered, a forward leaves ``--fusion panbench``'s fusion to :meth:`finish` (mmdet's runs in it)."""
        head = getattr(self.detector, "panoptic_fusion_head", None)
        own = vars(head) if head is not None else {}  # install_fusion sets predict or _predict_single
        fusion = next((own[n] for n in ("predict", "_predict_single") if isinstance(own.get(n), _Deferrable)), None)
        if fusion is None:
            yield
            return
        fusion.defer = True
        try:
            yield
        finally:
            fusion.defer = False

    def grid_kind(self) -> str | None:
        """The fusion whose keys a grid may vary (:data:`panbench.models.grid.GRID_KEYS`): ``maskformer``,
        ``heuristic``, or None (a head panbench does not run)."""
        head = getattr(self.detector, "panoptic_fusion_head", None)
        return {"MaskFormerFusionHead": "maskformer", "HeuristicFusionHead": "heuristic"}.get(type(head).__name__)

    def grid_ready(self) -> bool:
        """Whether panbench's fusion runs the head (``configure`` installed it), which a grid's settings share."""
        head = getattr(self.detector, "panoptic_fusion_head", None)
        return any(isinstance(vars(head).get(n), _Deferrable) for n in ("predict", "_predict_single")) \
            if head is not None else False

    @contextmanager
    def forward_values(self, values: dict[str, Any]) -> Iterator[None]:
        """While entered, the forward reads these values of a grid's keys the forward reads (PanopticFPN's
        ``model.test_cfg.rcnn.*``: its box head's), as a separate run of that setting is built with."""
        cfg = getattr(getattr(self.detector, "roi_head", None), "test_cfg", None)
        old = dict(cfg) if cfg is not None else {}
        try:
            for key, v in values.items():
                if cfg is not None and key.startswith("model.test_cfg.rcnn."):
                    cfg[key[len("model.test_cfg.rcnn."):]] = v
            yield
        finally:
            if cfg is not None:
                cfg.update(old)

    def score_cutoff(self, cfg_options: dict[str, Any] | None, postprocess: PostProcess) -> float | None:
        """The score below which the fusion drops a segment under these options (the analyses' "own" threshold,
        docs/analysis.md): ``--postprocess``'s confidence threshold, MaskFormer's ``object_mask_thr``, PanopticFPN's
        box threshold ``rcnn.score_thr``; None for a head panbench does not run."""
        if (rule := postprocess.cutoff()) is not None:
            return rule
        kind = self.grid_kind()
        key = {"maskformer": "model.test_cfg.object_mask_thr", "heuristic": "model.test_cfg.rcnn.score_thr"}.get(
            kind or "")
        if key is None:
            return None
        if cfg_options and key in cfg_options:
            return float(cfg_options[key])
        if kind == "maskformer":
            return float(self.detector.panoptic_fusion_head.test_cfg.get("object_mask_thr", 0.8))
        value = (getattr(getattr(self.detector, "roi_head", None), "test_cfg", None) or {}).get("score_thr")
        return None if value is None else float(value)

    def grid_own(self, key: str) -> Any:
        """The model's own value of config key ``key`` (a grid's default setting has it), None where not set."""
        head = getattr(self.detector, "panoptic_fusion_head", None)
        prefix = {"maskformer": "model.test_cfg.", "heuristic": "model.test_cfg.panoptic."}.get(self.grid_kind() or "")
        if head is None or prefix is None or not key.startswith(prefix):
            return None
        return (head.test_cfg or {}).get(key[len(prefix):])

    def finish_grid(self, outputs: list[Any], settings: list[Setting]) -> Iterator[list[Any]]:
        """A deferred forward's outputs under each of ``settings`` in turn (docs/eval.md, "Grids"): a list of data
        samples per setting, each what a separate run of it gives; the work the settings share done once."""
        from mmdet.structures import DetDataSample

        self._converted = {}  # the instance outputs of this batch converted (to_instances)
        jobs = []
        for sample in outputs:
            pan = sample.get("pred_panoptic_seg")
            job = pan.metainfo.get(PENDING) if pan is not None else None
            if not isinstance(job, _Job):
                raise PanbenchError(f"{self.where}: the forward ran its fusion; a grid needs panbench's (leave "
                                    "--fusion mmdet out)")
            jobs.append(job)
        per_image = [job.func.__self__.grid(job, settings) for job in jobs]  # type: ignore[attr-defined]
        for _ in settings:
            out = []
            for sample, results in zip(outputs, per_image):
                result = next(results)
                one = DetDataSample(metainfo=sample.metainfo)
                if "pred_instances" in sample:  # PanopticFPN's roi_head instances: the same for every setting
                    one.pred_instances = sample.pred_instances
                one.pred_panoptic_seg = result["pan_results"]
                if "ins_results" in result:
                    one.pred_instances = result["ins_results"]
                out.append(one)
            yield out

    def finish(self, outputs: list[Any]) -> list[Any]:
        """A forward's data samples with their deferred fusion run in place (as ``add_pred_to_datasample``)."""
        for sample in outputs:
            pan = sample.get("pred_panoptic_seg")
            job = pan.metainfo.get(PENDING) if pan is not None else None
            if job is not None:
                result = job()
                sample.pred_panoptic_seg = result["pan_results"]
                if "ins_results" in result:
                    sample.pred_instances = result["ins_results"]
        return list(outputs)

    def to_segments(self, output: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The data sample's ``pred_panoptic_seg`` (mmdet's encoding, VOID = number of classes) as segments, each with
        its score where panbench's fusion or ``--postprocess`` gave one (mmdet's own fusion, ``--fusion mmdet``, gives
        none)."""
        pan = output.pred_panoptic_seg
        return panoptic_to_segments(pan.sem_seg[0], len(self.names), self.label2cat, pan.metainfo.get(SCORES))

    def to_instances(self, output: Any) -> Instances | None:
        """The data sample's ``pred_instances`` (the fusion head's ``instance_on`` output) in dataset ids (a grid's
        settings that share one output convert it once)."""
        if self.instance_source is None or "pred_instances" not in output:
            return None
        inst, shared = output.pred_instances, self._converted
        if shared is None:
            return from_mmdet(inst, self.label2cat)
        if id(inst) not in shared:
            shared[id(inst)] = (inst, from_mmdet(inst, self.label2cat))
        return shared[id(inst)][1]

    def to_semantic(self, output: Any) -> np.ndarray | None:
        """None: mmdet 3.3's MaskFormer fusion head asserts ``not semantic_on``, so mIoU is the panoptic one."""
        return None

    def timed_fusion(self, seconds: list[float], sync: Callable[[], None]) -> AbstractContextManager[None]:
        """The calls of the panoptic fusion head's ``predict`` timed into ``seconds``."""
        return timed_calls(getattr(self.detector, "panoptic_fusion_head", None), "predict", seconds, sync)

    def configure(self, postprocess: PostProcess, fusion: str) -> str | None:
        """``--postprocess`` (:func:`install_postprocess`), else ``--fusion panbench`` (:func:`install_fusion`)."""
        install_postprocess(self.detector, postprocess, self.where)
        if install_fusion(self.detector, fusion):
            return "panbench"
        return "mmdet" if postprocess.name == "default" else None

    def compile_targets(self) -> list[tuple[str, Any]]:
        """The backbone and neck: dynamo breaks the graph on the heads' data samples and mmcv ops."""
        return [(n, m) for n in ("backbone", "neck") if (m := getattr(self.detector, n, None)) is not None]

    def query_masks(self, item: Any, device: str, top: int) -> tuple[Any, list[tuple[int, float, np.ndarray]]]:
        """One image through ``forward``, the fusion head's query masks read on the way (``top`` by class score)."""
        with predict_inputs(self.detector) as calls:
            out = self.forward([item], device, None)[0]
        if not calls or not hasattr(self.detector.panoptic_fusion_head, "panoptic_postprocess"):
            return out, []
        import torch
        import torch.nn.functional as F

        mask_cls, mask_pred = calls[-1][:2]
        probs = mask_cls[0].softmax(-1)[:, :len(self.names)]
        score, label = probs.max(-1)
        h_in, w_in = item["data_samples"].img_shape
        h, w = item["data_samples"].ori_shape
        masks = mask_pred[0][:, :h_in, :w_in].sigmoid()
        masks = F.interpolate(masks[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        return out, [(int(label[q]), float(score[q]), masks[q].cpu().numpy())
                     for q in torch.argsort(score, descending=True)[:top].tolist()]

    def enable_instances(self) -> None:
        """AP's instances: the fusion head's ``instance_on`` output, or PanopticFPN's ``roi_head`` branch."""
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
def predict_inputs(model: Any) -> Iterator[list[tuple]]:
    """While entered, the positional arguments of each call of the fusion head's ``predict`` go to the list yielded
    (MaskFormer's logits for ``panbench viz``, PanopticFPN's instances for AP)."""
    head = getattr(model, "panoptic_fusion_head", None)
    calls: list[tuple] = []
    if head is None:
        yield calls
        return

    def spy(orig: Callable) -> Callable:
        def predict(*a: Any, **k: Any) -> Any:
            calls.append(a)
            return orig(*a, **k)

        return predict

    with wrapped_method(head, "predict", spy):
        yield calls


def panoptic_only(cfg: Any, keep_instances: bool = False) -> list[str]:
    """Switch off the instance and semantic outputs MaskFormer-family heads compute beside the panoptic map (instance
    output on with ``keep_instances``: AP); returns the keys changed."""
    test_cfg = cfg.model.get("test_cfg")
    changed = []
    if isinstance(test_cfg, dict) and "panoptic_on" in test_cfg:
        for key, on in (("instance_on", keep_instances), ("semantic_on", False)):
            if bool(test_cfg.get(key)) != on:
                test_cfg[key] = on
                changed.append(f"model.test_cfg.{key}")
    return changed


def install_postprocess(model: Any, pp: PostProcess, where: str) -> None:
    """Make ``model``'s fusion head use ``pp`` (explicitly, on this instance only)."""
    if pp.name == "default":
        return

    head = getattr(model, "panoptic_fusion_head", None)
    if head is None or not hasattr(head, "panoptic_postprocess"):
        raise PanbenchError(f"{where}: --postprocess {pp.name} needs a MaskFormer, Mask2Former or OneFormer model "
                            "(query masks); PanopticFPN and DETR have their own fusion only")

    def run(mask_cls: Any, mask_pred: Any) -> Any:
        scores: dict[int, float] = {}
        pan = merge_queries(mask_cls, mask_pred, head.num_classes, head.num_things_classes, pp, scores)
        return panoptic_data(pan, scores)

    head.panoptic_postprocess = run


PENDING = "panbench_pending"  # metainfo key of a pred_panoptic_seg whose fusion is deferred: the job that runs it
SCORES = "panbench_scores"  # metainfo key of a pred_panoptic_seg's segment scores: a code of its map -> its score


def panoptic_data(pan: torch.Tensor, scores: dict[int, float]) -> Any:
    """mmdet's ``pan_results`` of the map ``pan`` (mmdet's encoding), carrying each segment's score by its code."""
    from mmengine.structures import PixelData

    return PixelData(sem_seg=pan[None], metainfo={SCORES: scores})


class _Deferrable:
    """A fusion head's method replaced by panbench's fusion: run at once, or with ``defer`` left for ``finish`` (or
    ``finish_grid``, which runs :meth:`grid` on the job's arguments)."""

    defer = False

    def __init__(self, head: Any) -> None:
        self.head = head

    def pending(self, job: partial) -> Any:
        from mmengine.structures import PixelData

        return PixelData(metainfo={PENDING: _Job(job)})

    def grid(self, job: partial, settings: list[Setting]) -> Iterator[dict[str, Any]]:
        """The results of ``job`` (as :meth:`pending` took it) under each setting in turn."""
        raise NotImplementedError


class _Job:
    """A deferred fusion: called, it runs as the forward would have; ``func`` and ``args`` are the call's, ``under()``
    the autocast the forward ran under (a grid's settings run in it too)."""

    def __init__(self, job: partial) -> None:
        self.func, self.args, self.keywords = job.func, job.args, job.keywords
        self.under = autocast_now()

    def __call__(self) -> dict[str, Any]:
        with self.under():
            return self.func(*self.args, **self.keywords)


class MaskFormerPredict(_Deferrable):
    """A ``MaskFormerFusionHead``'s ``predict`` by :mod:`.fast_fusion` (the instance output too, with AP)."""

    def __call__(self, mask_cls_results: torch.Tensor, mask_pred_results: torch.Tensor, batch_data_samples: Any,
                 rescale: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
        out = []
        for mask_cls, mask_pred, sample in zip(mask_cls_results, mask_pred_results, batch_data_samples):
            meta = sample.metainfo
            ih, iw = meta["img_shape"][:2]
            size = tuple(meta["ori_shape"][:2]) if rescale else None
            job = partial(self.results, mask_cls, mask_pred[:, :ih, :iw], size)
            out.append({"pan_results": self.pending(job)} if self.defer else job())
        return out

    def results(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor, size: tuple[int, int] | None) -> dict[str, Any]:
        """One image's outputs (``mask_pred`` without padding; ``size``: upsample to it), as mmdet's ``predict``."""

        import panbench.models.mmdet.fast_fusion as ff

        head, cfg = self.head, self.head.test_cfg
        n_cls, n_th, top = head.num_classes, head.num_things_classes, cfg.get("max_per_image", 100)
        instance_on = cfg.get("instance_on", False)
        masks = ff.QueryMasks(mask_pred, size)
        if instance_on:  # the queries both outputs read, upsampled once
            masks.prepare(ff.fusion_queries(mask_cls, n_cls, cfg.get("object_mask_thr", 0.8))[0],
                          ff.instance_queries(mask_cls, n_cls, n_th, top)[2])
        scores: dict[int, float] = {}
        pan = ff.maskformer_fusion(mask_cls, mask_pred, n_cls, n_th, cfg.get("object_mask_thr", 0.8),
                                   cfg.get("iou_thr", 0.8), cfg.get("filter_low_score", False), size, masks,
                                   scores=scores)
        result = {"pan_results": panoptic_data(pan, scores)}
        if instance_on:
            result["ins_results"] = self.instances(mask_cls, mask_pred, size, top, masks)
        return result

    def instances(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor, size: tuple[int, int] | None, top: int,
                  masks: Any) -> Any:
        """The instance output (AP's detections) as mmdet's ``instance_postprocess`` gives it."""
        from mmengine.structures import InstanceData

        import panbench.models.mmdet.fast_fusion as ff

        head = self.head
        scores, labels, boxes, inst = ff.maskformer_instances(mask_cls, mask_pred, head.num_classes,
                                                              head.num_things_classes, top, size, masks)
        return InstanceData(bboxes=boxes, labels=labels, scores=scores, masks=inst)

    def grid(self, job: Any, settings: list[Setting]) -> Iterator[dict[str, Any]]:
        """:meth:`results` under each setting (``--postprocess maskwise|argmax`` as mmdet's ``predict`` runs them:
        its instance output too); the masks every setting reads upsampled once (:class:`.fast_fusion.GridFusion`)."""

        import panbench.models.mmdet.fast_fusion as ff

        mask_cls, mask_pred, size = job.args
        head, base = self.head, self.head.test_cfg
        top = base.get("max_per_image", 100)
        instance_on = base.get("instance_on", False)
        with job.under():
            extra = [ff.instance_queries(mask_cls, head.num_classes, head.num_things_classes, top)[2]] \
                if instance_on else []
            fusion = ff.GridFusion(mask_cls, mask_pred, head.num_classes, head.num_things_classes,
                                   [own_cfg(base, s, "model.test_cfg.") for s in settings],
                                   [s.postprocess for s in settings], size, extra)
        instances: dict[bool, Any] = {}  # the instance output: one for the model's fusion, one for mmdet's rules
        for k, st in enumerate(settings):
            with job.under():
                scores: dict[int, float] = {}
                out = {"pan_results": panoptic_data(fusion.panoptic(k, scores), scores)}
                if instance_on:
                    if (mine := st.postprocess.name == "default") not in instances:
                        instances[mine] = (self.instances(mask_cls, mask_pred, size, top, fusion.masks) if mine else
                                           head.instance_postprocess(mask_cls, fusion.upsampled()))
                    out["ins_results"] = instances[mine]
                yield out


class HeuristicPredict(_Deferrable):
    """A ``HeuristicFusionHead``'s ``_predict_single`` by :func:`~panbench.models.mmdet.fast_fusion.heuristic_fusion`"""

    def __call__(self, mask_results: Any, seg_preds: torch.Tensor, **kwargs: Any) -> Any:
        job = partial(self.results, mask_results, seg_preds)
        return self.pending(job) if self.defer else job()["pan_results"]

    def results(self, mask_results: Any, seg_preds: torch.Tensor) -> dict[str, Any]:

        from panbench.models.mmdet.fast_fusion import heuristic_fusion

        head, scores = self.head, dict[int, float]()
        pan = heuristic_fusion(mask_results.scores, mask_results.labels, mask_results.masks, seg_preds,
                               head.num_things_classes, head.num_classes, head.test_cfg.mask_overlap,
                               head.test_cfg.stuff_area_limit, scores)
        return {"pan_results": panoptic_data(pan, scores)}

    def grid(self, job: Any, settings: list[Setting]) -> Iterator[dict[str, Any]]:
        """:meth:`results` under each setting: the semantic labels once, the instances laid once per overlap."""

        import panbench.models.mmdet.fast_fusion as ff

        (res, seg_preds), head = job.args, self.head
        n_th = head.num_things_classes
        with job.under():
            sem = ff.semantic_labels(seg_preds, n_th)
        layers: dict[tuple[Any, float], Any] = {}
        kept: dict[Any, Any] = {}  # the detections above each box threshold (the forward ran at the lowest)
        for st in settings:
            cfg = own_cfg(head.test_cfg, st, "model.test_cfg.panoptic.")
            thr = st.cfg("model.test_cfg.rcnn.score_thr")
            with job.under():
                if thr not in kept:  # mmdet's multiclass_nms keeps the scores above its threshold
                    kept[thr] = res if thr is None else res[res.scores > thr]
                mine = kept[thr]
                if (at := (thr, cfg["mask_overlap"])) not in layers:
                    labels, layer, ranked = ff.instance_layer(mine.scores, mine.labels, mine.masks, at[1])
                    layers[at] = (labels, layer, ranked, ff.stuff_areas(sem, layer, head.num_classes))
                labels, layer, ranked, areas = layers[at]
                scores: dict[int, float] = {}
                pan = ff.heuristic_map(sem, labels, layer, ranked, n_th, head.num_classes, cfg["stuff_area_limit"],
                                       areas, scores)
                # AP's instances (the roi head's, the fusion's input): those the setting's threshold keeps
                out = {"pan_results": panoptic_data(pan, scores)}
                yield out if thr is None else {**out, "ins_results": mine}


def own_cfg(base: Any, setting: Setting, prefix: str) -> dict[str, Any]:
    """A fusion head's ``test_cfg`` (``base``, the config at ``prefix``) with ``setting``'s values of its keys."""
    return {**base, **{k[len(prefix):]: v for k, v in (setting.cfg_options or {}).items()
                       if k.startswith(prefix) and "." not in k[len(prefix):]}}


def install_fusion(model: Any, name: str) -> str | None:
    """``name`` panbench: the head runs panbench's implementation of its fusion; returns its class name then."""
    head = getattr(model, "panoptic_fusion_head", None)
    if name != "panbench" or head is None or "panoptic_postprocess" in vars(head):  # --postprocess has its own
        return None
    kind, cfg = type(head).__name__, getattr(head, "test_cfg", None) or {}
    # a config without panoptic_on keeps mmdet's predict (mmdet 3.3 refuses semantic_on)
    if kind == "MaskFormerFusionHead" and cfg.get("panoptic_on", True) and not cfg.get("semantic_on", False):
        head.predict = MaskFormerPredict(head)
    elif kind == "HeuristicFusionHead":
        head._predict_single = HeuristicPredict(head)
    else:
        return None
    return kind
