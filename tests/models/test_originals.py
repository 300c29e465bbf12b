"""``--pipeline original`` (panbench/models/hf/original.py) against the original repositories' own code
(tests/models/originals.py: detectron2, Mask2Former, MaskFormer, OneFormer, DETR, EoMT at the commits of
../shared/vendor), bit for bit:

- pre-processing: panbench's pipeline (``read_rgb``, ``preprocess``) and batch padding (``HFPanoptic._step``) of image
  files of COCO's shapes (PNG, JPEG, grey, EXIF-rotated, the COCO sample's) against detectron2's ``DatasetMapper`` +
  ``MaskFormer.forward``'s normalisation and ``ImageList`` (Mask2Former, OneFormer: divisibility 32; MaskFormer: 0),
  DETR's val transform + ``nested_tensor_from_tensor_list``, EoMT's resize-and-pad + normalisation;
- per-dataset test input: Mask2Former's and OneFormer's sizes, size divisibility and thresholds on COCO, ADE20K,
  Cityscapes and Mapillary Vistas (``Original.on``, ``own_settings``) against their config files read by their own
  config code; on Cityscapes and Mapillary, detectron2's mapper and ``ImageList`` at those sizes against panbench's
  pipeline on images of their shapes;
- post-processing: ``query_fusion`` and ``detr_fusion`` on random network outputs against ``panoptic_inference``
  (Mask2Former, OneFormer, MaskFormer), EoMT's ``to_per_pixel_preds_panoptic``, DETR's ``PostProcessPanoptic``;
- end to end: a tiny transformers Mask2Former loaded by panbench, panbench's pipeline, forward and segments against
  Mask2Former's ``MaskFormer.forward`` with the same network on detectron2's inputs.

Runs in the torchvision tier (``make test-vision``)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("torchvision", reason="torchvision is not installed (make setup-vision; make test-vision)")
for _dep in ("transformers", "timm", "scipy", "panopticapi", "pycocotools", "fvcore", "iopath", "omegaconf",
             "tabulate"):
    pytest.importorskip(_dep, reason=f"{_dep}, which the originals' code imports, is not installed (make "
                                     "setup-vision)")
pytestmark = pytest.mark.torchvision

import numpy as np  # noqa: E402
import originals  # noqa: E402  (tests/models/originals.py)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from panbench.models.hf import original  # noqa: E402
from panbench.models.hf.model import HFPanoptic, load_hf_model  # noqa: E402
from panbench.models.hf.types import TYPES, own_settings  # noqa: E402

#: (width, height): COCO's common shapes and odd ones
SIZES = [(640, 480), (480, 640), (640, 427), (640, 360), (333, 517), (517, 333)]
#: the originals' settings (tests/hf_tiny.py PUBLISHED): detectron2's PIXEL_MEAN/STD, size divisibilities, thresholds
D2_MEAN, D2_STD = [123.675, 116.280, 103.530], [58.395, 57.120, 57.375]
DIVISIBILITY = {"mask2former": 32, "oneformer": 32, "maskformer": 0}
OBJECT_MASK, OVERLAP, DETR_THRESHOLD = 0.8, 0.8, 0.85
EOMT_SQUARE = (640, 640)
#: a processor's mean, std and (EoMT's) square size, as protocol_for reads them
PROCESSOR = SimpleNamespace(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                            size={"shortest_edge": 640, "longest_edge": 640})
K = 8  # classes; label K is "no object"
THINGS = {0, 1, 2, 3}
IS_THING = [c in THINGS for c in range(K + 1)]  # DETR's is_thing_map has "no object" too


def _protocol(kind: str, dataset: str = "coco") -> original.Original:
    p = original.protocol_for(TYPES[kind], PROCESSOR, dataset)
    assert p is not None, f"panbench knows no original inference of {kind} on {dataset}"
    return p


@pytest.fixture(scope="session", autouse=True)
def original_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The originals unpacked once into a temporary folder, on sys.path for the session."""
    if missing := originals.missing_tarballs():
        pytest.skip(f"{', '.join(missing)} not in {originals.VENDOR} (../shared/vendor)")
    return originals.sources(tmp_path_factory.mktemp("originals"))


@pytest.fixture(scope="module")
def coco_jpegs() -> list[Path]:
    from conftest import COCO_SAMPLE

    paths = sorted((COCO_SAMPLE / "val2017").glob("*.jpg"))
    if not paths:
        pytest.skip(f"COCO sample not found at {COCO_SAMPLE} (set PANBENCH_COCO_SAMPLE)")
    return paths


def _exif_jpeg(path: Path, w: int, h: int, orientation: int, seed: int) -> Path:
    """A JPEG of ``w`` x ``h`` stored pixels whose EXIF orientation tag says to turn it."""
    rng = np.random.default_rng(seed)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, exif=exif.tobytes(), quality=90)
    with Image.open(path) as im:
        assert im.getexif().get(0x0112) == orientation
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, coco_jpegs: list[Path]) -> list[Path]:
    """Image files of COCO's shapes: random RGB as PNG and as JPEG, a grey JPEG (COCO has some), a PNG at the input
    size already, JPEGs with EXIF orientations 6 and 3, and the COCO sample's two JPEGs (read in place)."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for w, h in SIZES:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        img.save(d / f"{w}x{h}.png")
        img.save(d / f"{w}x{h}.jpg", quality=90)
        paths += [d / f"{w}x{h}.png", d / f"{w}x{h}.jpg"]
    Image.fromarray(rng.integers(0, 256, (427, 640), dtype=np.uint8), "L").save(d / "grey.jpg")
    paths.append(d / "grey.jpg")
    Image.fromarray(rng.integers(0, 256, (800, 1200, 3), dtype=np.uint8)).save(d / "1200x800.png")
    paths.append(d / "1200x800.png")  # already at the input size: detectron2 and DETR resize it to itself
    paths.append(_exif_jpeg(d / "exif6.jpg", 640, 427, 6, 1))  # stored landscape, shown portrait (427 x 640)
    paths.append(_exif_jpeg(d / "exif3.jpg", 517, 333, 3, 2))  # turned half a turn
    return paths + coco_jpegs


# ---- pre-processing ----

class _Seen(Exception):
    pass


class _Network(torch.nn.Module):
    """A network slot that keeps what panbench's forward gives it and stops there."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[str, Any] = {}

    def forward(self, **inputs: Any) -> Any:
        self.seen = inputs
        raise _Seen


def _stand_in(kind: str, dataset: str = "coco") -> SimpleNamespace:
    """What ``HFPanoptic._original_inputs`` and ``_step`` read of their self (the original's inference on
    ``dataset``), the network a :class:`_Network`."""
    return SimpleNamespace(protocol=_protocol(kind, dataset), mtype=TYPES[kind], model=_Network(), task_tokens=None,
                           deferring=False)


def panbench_items(kind: str, paths: Sequence[Path], dataset: str = "coco") -> dict[Path, dict[str, Any]]:
    """panbench's ``--pipeline original`` pipeline of each image file on ``dataset`` (``HFPanoptic._original_inputs``:
    ``read_rgb`` with the type's EXIF step, ``preprocess``)."""
    self = _stand_in(kind, dataset)
    return {p: HFPanoptic._original_inputs(self, {"img_path": str(p)}) for p in paths}


def panbench_batch(kind: str, items: list[dict[str, Any]], dataset: str = "coco") -> dict[str, Any]:
    """What panbench's forward (``HFPanoptic._step``: the original's padding) gives the network for ``items``."""
    self = _stand_in(kind, dataset)
    with pytest.raises(_Seen):
        HFPanoptic._step(self, items)
    return self.model.seen


def _batches(paths: list[Path]) -> list[list[Path]]:
    """Consecutive pairs (images of different sizes padded together: every image in one), then every third image
    alone (a batch of one: no padding but to the size divisibility)."""
    return [paths[i:i + 2] for i in range(0, len(paths), 2)] + [[p] for p in paths[::3]]


@pytest.fixture(scope="module")
def mapped(images: list[Path]) -> dict[Path, dict[str, Any]]:
    """detectron2's test-time input of each image (:func:`originals.d2_input`)."""
    return {p: originals.d2_input(p) for p in images}


@pytest.mark.parametrize("kind", list(DIVISIBILITY))
def test_detectron2_preprocessing_is_the_mappers_and_forwards(kind: str, images: list[Path],
                                                             mapped: dict[Path, dict[str, Any]]) -> None:
    """Mask2Former, OneFormer (size divisibility 32) and MaskFormer (0): detectron2's ``read_image`` (EXIF turned),
    ``ResizeShortestEdge(800, 1333)``, then ``(x - mean) / std`` and ``ImageList.from_tensors``."""
    ours = panbench_items(kind, images)
    for batch in _batches(images):
        items = [ours[p] for p in batch]
        seen = panbench_batch(kind, items)
        ds = [mapped[p] for p in batch]
        x, sizes = originals.d2_batch([d["image"] for d in ds], D2_MEAN, D2_STD, DIVISIBILITY[kind])
        assert seen["pixel_values"].shape == x.shape and torch.equal(seen["pixel_values"], x)
        assert "pixel_mask" not in seen  # the originals give their backbones none
        assert [tuple(item["input_hw"].tolist()) for item in items] == sizes
        assert [(item["height"], item["width"]) for item in items] == [(d["height"], d["width"]) for d in ds]
    exif6 = next(p for p in images if p.name == "exif6.jpg")
    assert (mapped[exif6]["height"], mapped[exif6]["width"]) == (640, 427)  # the tag was applied


#: the originals' panoptic configs on each dataset panbench runs them on (their repositories' paths): Mask2Former's
#: Swin ones (Cityscapes: the four registered backbones), OneFormer's Swin-L and DiNAT-L ones (registered checkpoints)
_M2F_SWIN = "configs/{}/panoptic-segmentation/swin/maskformer2_swin_{}.yaml"
DATASET_CONFIGS = {
    ("mask2former", "coco"): [_M2F_SWIN.format("coco", "large_IN21k_384_bs16_100ep")],
    ("mask2former", "ade20k"): [_M2F_SWIN.format("ade20k", "large_IN21k_384_bs16_160k")],
    ("mask2former", "cityscapes"): [_M2F_SWIN.format("cityscapes", b) for b in (
        "large_IN21k_384_bs16_90k", "base_IN21k_384_bs16_90k", "small_bs16_90k", "tiny_bs16_90k")],
    ("mask2former", "mapillary"): [_M2F_SWIN.format("mapillary-vistas", "large_IN21k_384_bs16_300k")],
    ("oneformer", "coco"): ["configs/coco/swin/oneformer_swin_large_bs16_100ep.yaml"],
    ("oneformer", "ade20k"): ["configs/ade20k/swin/oneformer_swin_large_bs16_160k.yaml",
                              "configs/ade20k/dinat/oneformer_dinat_large_bs16_160k.yaml"],
    ("oneformer", "cityscapes"): ["configs/cityscapes/swin/oneformer_swin_large_bs16_90k.yaml",
                                  "configs/cityscapes/dinat/oneformer_dinat_large_bs16_90k.yaml"],
    ("oneformer", "mapillary"): ["configs/mapillary_vistas/swin/oneformer_swin_large_bs16_300k.yaml"],
}
#: the datasets whose test input is also run bit for bit on images of their shapes (COCO's: the test above)
STREET = ("cityscapes", "mapillary")
#: (width, height): Cityscapes' 2048 x 1024 and Mapillary's camera shapes (4:3, 16:9), landscape and portrait
STREET_SIZES = [(2048, 1024), (4000, 3000), (1920, 1080), (1024, 2048), (3000, 4000), (1080, 1920)]


@pytest.fixture(scope="module")
def street_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Image files of Cityscapes' and Mapillary's shapes: random RGB, PNG at Cityscapes' sizes (its format), JPEG at
    the others (Mapillary's), and a phone JPEG of 4032 x 3024 stored pixels with EXIF orientation 6 (shown portrait)."""
    d = tmp_path_factory.mktemp("street")
    rng = np.random.default_rng(7)
    paths = []
    for w, h in STREET_SIZES:
        path = d / (f"{w}x{h}.png" if 1024 in (w, h) else f"{w}x{h}.jpg")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, **(
            {"quality": 90} if path.suffix == ".jpg" else {}))
        paths.append(path)
    return [*paths, _exif_jpeg(d / "exif6.jpg", 4032, 3024, 6, 8)]


@pytest.mark.parametrize(("kind", "dataset"), list(DATASET_CONFIGS), ids=[f"{k}-{d}" for k, d in DATASET_CONFIGS])
def test_dataset_test_input_is_the_originals_configs(kind: str, dataset: str, street_images: list[Path]) -> None:
    """Mask2Former's and OneFormer's test input and panoptic thresholds on each dataset (``Original.on``,
    ``own_settings``) against their own config files read by their own config code (``get_cfg``, their adders,
    ``merge_from_file``: :func:`originals.d2_test_input`): the test mapper's ``ResizeShortestEdge(MIN_SIZE_TEST,
    MAX_SIZE_TEST)``, the size divisibility, ``OBJECT_MASK_THRESHOLD``, ``OVERLAP_THRESHOLD``, ``PIXEL_MEAN``/``STD``.
    On Cityscapes and Mapillary, then, detectron2's ``DatasetMapper`` + ``MaskFormer.forward``'s normalisation and
    ``ImageList`` at the configs' sizes against panbench's pipeline and padding, bit for bit, on images of their
    shapes."""
    p = _protocol(kind, dataset)
    assert p.resize == "shortest_edge"  # detectron2's ResizeShortestEdge
    settings = own_settings(TYPES[kind], p)
    ours = {"min_size": p.short, "max_size": p.long, "size_divisibility": p.divisor,
            "object_mask_threshold": settings["threshold"],
            "overlap_threshold": settings["overlap_mask_area_threshold"], "pixel_mean": p.mean, "pixel_std": p.std}
    configs = {c: originals.d2_test_input(kind, c) for c in DATASET_CONFIGS[kind, dataset]}
    wrong = [f"{c}: {key} {theirs[key]!r}, panbench's {ours[key]!r}"
             for c, theirs in configs.items() for key in theirs if theirs[key] != ours[key]]
    assert not wrong, f"{kind} on {dataset}: " + "; ".join(wrong)
    if dataset not in STREET:
        return
    theirs = next(iter(configs.values()))
    mapped = {path: originals.d2_input(path, theirs["min_size"], theirs["max_size"]) for path in street_images}
    items = panbench_items(kind, street_images, dataset)
    for batch in _batches(street_images):
        seen = panbench_batch(kind, [items[path] for path in batch], dataset)
        ds = [mapped[path] for path in batch]
        x, sizes = originals.d2_batch([d["image"] for d in ds], theirs["pixel_mean"], theirs["pixel_std"],
                                      theirs["size_divisibility"])
        assert seen["pixel_values"].shape == x.shape and torch.equal(seen["pixel_values"], x), [q.name for q in batch]
        assert "pixel_mask" not in seen
        assert [tuple(items[path]["input_hw"].tolist()) for path in batch] == sizes
        assert [(items[path]["height"], items[path]["width"]) for path in batch] == \
            [(d["height"], d["width"]) for d in ds]
    shown = {path.name: (d["height"], d["width"]) for path, d in mapped.items()}
    assert shown["exif6.jpg"] == (4032, 3024)  # the EXIF tag applied
    resized = {path.name: tuple(d["image"].shape[1:]) for path, d in mapped.items()}
    assert resized["2048x1024.png"] == (1024, 2048)  # Cityscapes': as it is; Mapillary's: twice, then back to 2048
    assert resized["4000x3000.jpg"] == ((1024, 1365) if dataset == "cityscapes" else (1536, 2048))


def test_detr_preprocessing_is_its_val_transform_and_nested_tensor(images: list[Path]) -> None:
    """DETR: the image as its dataset opens it (no EXIF step), ``make_coco_transforms("val")``, the batch padded by
    ``nested_tensor_from_tensor_list``, whose mask (True: padding) is panbench's pixel mask inverted."""
    nested_from = originals._detr()[0].nested_tensor_from_tensor_list  # util.misc's, as models.segmentation has it
    own = {}
    for p in images:
        with Image.open(p) as im:  # DETR's datasets/coco_panoptic.py: Image.open(path).convert('RGB')
            own[p] = originals.detr_preprocess(im.convert("RGB"))
    ours = panbench_items("detr", images)
    for batch in _batches(images):
        items = [ours[p] for p in batch]
        seen = panbench_batch("detr", items)
        nested = nested_from([own[p] for p in batch])
        assert seen["pixel_values"].shape == nested.tensors.shape and torch.equal(seen["pixel_values"], nested.tensors)
        assert torch.equal(seen["pixel_mask"].bool(), ~nested.mask)
        assert [tuple(item["input_hw"].tolist()) for item in items] == [tuple(own[p].shape[1:]) for p in batch]


def test_eomt_preprocessing_is_its_resize_pad_and_normalisation(images: list[Path]) -> None:
    """EoMT: the image as its dataset opens it (no EXIF step), ``resize_and_pad_imgs_instance_panoptic`` to the
    square, the Lightning module's ``/ 255`` and the network's ``(x - mean) / std``."""
    scale = originals._eomt_self(img_size=EOMT_SQUARE).scale_img_size_instance_panoptic
    own = {}
    for p in images:
        with Image.open(p) as im:  # EoMT's datasets/dataset.py: tv_tensors.Image(Image.open(img).convert("RGB"))
            own[p] = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    ours = panbench_items("eomt", images)
    for batch in _batches(images):
        items = [ours[p] for p in batch]
        seen = panbench_batch("eomt", items)
        x = originals.eomt_normalise(originals.eomt_resize_and_pad([own[p] for p in batch], EOMT_SQUARE))
        assert seen["pixel_values"].shape == x.shape and torch.equal(seen["pixel_values"], x)
        assert "pixel_mask" not in seen
        assert [tuple(item["input_hw"].tolist()) for item in items] == \
            [tuple(scale(own[p].shape[-2:])) for p in batch]


# ---- post-processing ----

def _at_score(logits: torch.Tensor, q: int, label: int, t: float) -> None:
    """Query ``q``'s logits such that its softmax score (``label``) is exactly ``t`` in float32 (a threshold: the
    value a score's ``> t`` compares with)."""
    want = torch.tensor(t, dtype=torch.float32)
    x = torch.tensor(math.log(t / (1 - t)), dtype=torch.float32)
    for _ in range(1000):
        logits[q] = -1e4
        logits[q, label], logits[q, (label + 1) % K] = x, 0.0
        if F.softmax(logits, -1)[q, label] == want:
            return
        x = torch.nextafter(x, torch.tensor(math.inf))
    raise AssertionError(f"no float32 logit gives a score of exactly {t}")


def _class_logits(gen: torch.Generator, q: int, t: float) -> torch.Tensor:
    """[q, K+1] class logits: random (x6: about half the queries above the threshold), then query 0 a thing, 1 and
    2 one stuff class, 3 another stuff class, 4 a thing, 5 "no object" (all confident), 6 exactly at the threshold
    ``t``, 8 just above it (stuff 7, ``t`` + 0.02)."""
    logits = torch.randn((q, K + 1), generator=gen) * 6
    for k, c in enumerate([0, 5, 5, 6, 2, K]):
        logits[k, c] += 20.0
    _at_score(logits, 6, 1, t)
    _at_score(logits, 8, 7, t + 0.02)
    return logits


def _mask_logits(gen: torch.Generator, q: int, hw: tuple[int, int], cells: tuple[int, int] = (5, 7),
                 scale: float = 10.0) -> torch.Tensor:
    """[q, *hw] mask logits, smooth: a random query wins each cell of a coarse grid (+1, the others -1), noise
    added, upsampled bilinearly, times ``scale``; query 7 covers everything weakly (its own mask is large, the
    pixels it wins few: the overlap test drops it)."""
    win = torch.randint(0, q, cells, generator=gen)
    coarse = F.one_hot(win, q).permute(2, 0, 1).float() * 2 - 1 + 0.6 * torch.randn((q, *cells), generator=gen)
    masks = scale * F.interpolate(coarse[None], size=hw, mode="bilinear", align_corners=False)[0]
    masks[7] = 0.3
    return masks


def _mask_hw(hw: tuple[int, int]) -> tuple[int, int]:
    """The networks' mask resolution for an input of ``hw``: a quarter."""
    return math.ceil(hw[0] / 4), math.ceil(hw[1] / 4)


QUERY_FUSION = {"mask2former": (originals.mask2former_panoptic, True),
                "oneformer": (originals.oneformer_panoptic, True),
                "maskformer": (originals.maskformer_panoptic, False)}

#: batches of images (width, height) padded together, per model type: every shape for Mask2Former; fewer for
#: OneFormer (its panoptic_inference is Mask2Former's, line for line) and MaskFormer (no padding to a multiple)
BATCHES = {"mask2former": [[(640, 480)], [(480, 640)], [(640, 360)], [(333, 517)], [(640, 427), (517, 333)],
                           [(640, 480), (480, 640)]],
           "oneformer": [[(640, 427)], [(517, 333)], [(640, 480), (480, 640)]],
           "maskformer": [[(640, 480)], [(333, 517)], [(640, 360)], [(640, 427), (480, 640)]]}
QUERIES = 10


def _as_detectron2(seg: original.OriginalOutput) -> list[dict[str, Any]]:
    return [{"id": s["id"], "isthing": s["isthing"], "category_id": s["label_id"]} for s in seg.info]


def _overlap_at_threshold() -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Outputs at the image's own size (no resizing): query 0 (thing 0) has 10 pixels of its own and loses 2 of
    them to query 1 (stuff 4, a higher score): 8 / 10, exactly the overlap threshold."""
    hw = (8, 10)
    cls = torch.full((3, K + 1), -10.0)
    cls[0, 0], cls[1, 4], cls[2, K] = 5.0, 9.0, 9.0
    masks = torch.full((3, *hw), -10.0)
    masks[0, 0, :10] = 10.0
    masks[1, 0, 8:] = 10.0
    masks[1, 3, :8] = 10.0
    return cls, masks, hw


@pytest.mark.parametrize("kind", list(QUERY_FUSION))
def test_query_fusion_is_the_originals_panoptic_inference(kind: str) -> None:
    """``query_fusion`` against Mask2Former's, OneFormer's (own_mask) and MaskFormer's ``panoptic_inference`` after
    their forwards' upsampling and ``sem_seg_postprocess``: random outputs of single images and of batches of two
    padded together, no query kept, a query exactly at the class threshold, one exactly at the overlap threshold."""
    inference, own_mask = QUERY_FUSION[kind]
    p = _protocol(kind)
    gen = torch.Generator().manual_seed(1)
    segments = dropped = 0
    for n, batch in enumerate(BATCHES[kind]):
        sizes = [original.resized_size(p, h, w) for w, h in batch]
        padded = original.padded_size(p, sizes)
        cls = torch.stack([_class_logits(gen, QUERIES, OBJECT_MASK) for _ in batch])
        masks = torch.stack([_mask_logits(gen, QUERIES, _mask_hw(padded)) for _ in batch])
        none = cls.clone()
        none[..., K] = 30.0  # every query "no object"
        for k, (w, h) in enumerate(batch):
            for c in (cls[k], none[k]) if n == 0 else (cls[k],):
                pan, info = inference(c, masks[k], padded, sizes[k], h, w, THINGS, OBJECT_MASK, OVERLAP)
                seg = original.query_fusion(c, masks[k], padded, sizes[k], (h, w), IS_THING, OBJECT_MASK, OVERLAP,
                                            own_mask=own_mask)
                assert seg.id_map.dtype == pan.dtype and torch.equal(seg.id_map, pan)
                assert _as_detectron2(seg) == info
                scores, labels = F.softmax(c, -1).max(-1)
                kept = int((labels.ne(K) & (scores > OBJECT_MASK)).sum())
                segments += len(info)
                dropped += kept - len(info)  # merged into a stuff segment, or failing the overlap test
            assert F.softmax(cls[k], -1)[6].max() == torch.tensor(OBJECT_MASK)  # query 6: at the threshold
    assert segments >= 10 and dropped >= 5  # the random outputs exercise segments, stuff merging, the overlap test
    cls, masks, hw = _overlap_at_threshold()
    pan, info = inference(cls, masks, hw, hw, *hw, THINGS, OBJECT_MASK, OVERLAP)
    seg = original.query_fusion(cls, masks, hw, hw, hw, IS_THING, OBJECT_MASK, OVERLAP, own_mask=own_mask)
    assert torch.equal(seg.id_map, pan) and _as_detectron2(seg) == info
    assert [s["category_id"] for s in info] == [0, 4]  # 8 / 10 is not below 0.8: query 0 kept


def test_eomt_query_fusion_is_its_per_pixel_panoptic_predictions() -> None:
    """``query_fusion`` (own_mask, the padded square) against EoMT's eval step: ``F.interpolate`` to the square,
    ``revert_resize_and_pad_logits_instance_panoptic``, ``to_per_pixel_preds_panoptic`` (segment ids from 0 per
    pixel, -1 none; a class per pixel, K none), on batches of two images."""
    p = _protocol("eomt")
    gen = torch.Generator().manual_seed(2)
    stuff = [c for c in range(K) if c not in THINGS]
    segments = 0
    for batch in [SIZES[0:2], SIZES[3:5]]:
        sizes = [original.resized_size(p, h, w) for w, h in batch]
        targets = [(h, w) for w, h in batch]
        padded = original.padded_size(p, [EOMT_SQUARE] * len(batch))
        assert padded == EOMT_SQUARE
        cls = torch.stack([_class_logits(gen, QUERIES, OBJECT_MASK) for _ in batch])
        masks = torch.stack([_mask_logits(gen, QUERIES, _mask_hw(padded)) for _ in batch])
        none = cls.clone()
        none[..., K] = 30.0
        reverted = originals.eomt_revert(masks, targets, EOMT_SQUARE)
        for c in (cls, none):
            preds = originals.eomt_panoptic(reverted, c, stuff, K, OBJECT_MASK, OVERLAP)
            for k in range(len(batch)):
                seg = original.query_fusion(c[k], masks[k], padded, sizes[k], targets[k], IS_THING, OBJECT_MASK,
                                            OVERLAP, own_mask=True)
                assert torch.equal(seg.id_map.long() - 1, preds[k][..., 1])  # EoMT's ids: panbench's less 1
                classes = torch.full(targets[k], K, dtype=torch.long)
                for s in seg.info:
                    classes[seg.id_map == s["id"]] = s["label_id"]
                assert torch.equal(classes, preds[k][..., 0])
                assert all(s["isthing"] == (s["label_id"] in THINGS) for s in seg.info)
                segments += len(seg.info)
    assert segments >= 10


def _detr_as_original(seg: original.OriginalOutput) -> list[dict[str, Any]]:
    return [{"id": s["id"], "isthing": s["isthing"], "category_id": s["label_id"], "area": s["area"]}
            for s in seg.info]


def _spikes(gen: torch.Generator, masks: torch.Tensor, queries: Sequence[int], hw: tuple[int, int]) -> None:
    """Queries whose masks rise at one point of the image alone, by different heights: small segments, some of 4
    pixels or fewer at the target size."""
    for n, k in enumerate(queries):
        y = int(torch.randint(0, hw[0], (1,), generator=gen))
        x = int(torch.randint(0, hw[1], (1,), generator=gen))
        masks[k] = -30.0
        masks[k, y, x] = 12.0 + 6.0 * n


DETR_BATCHES = {"random": [[(640, 480)], [(333, 517)], [(640, 360)]],
                "duplicate_stuff": [[(480, 640)], [(640, 427)], [(517, 333)]],
                "small": [[(640, 480)], [(333, 517)], [(517, 333)]],
                "batch": [[(640, 480), (480, 640)]]}


@pytest.mark.parametrize("case", list(DETR_BATCHES))
def test_detr_fusion_is_its_post_process_panoptic(case: str) -> None:
    """``detr_fusion`` against DETR's ``PostProcessPanoptic(threshold=0.85)`` (the padded batch's masks resized to
    the image's processed size, no crop; the argmax; duplicate stuff queries merged; segments of 4 pixels or fewer
    dropped, the argmax taken again): id maps from 0, areas, no query kept."""
    p = _protocol("detr")
    gen = torch.Generator().manual_seed({"random": 3, "duplicate_stuff": 4, "small": 5, "batch": 6}[case])
    is_thing_map = dict(enumerate(IS_THING))
    dropped = merged = 0
    for n, batch in enumerate(DETR_BATCHES[case]):
        sizes = [original.resized_size(p, h, w) for w, h in batch]
        padded = original.padded_size(p, sizes)
        q = 12
        for k, (w, h) in enumerate(batch):
            cls = _class_logits(gen, q, DETR_THRESHOLD)
            masks = _mask_logits(gen, q, _mask_hw(padded), scale=4.0)
            if case != "duplicate_stuff":
                cls[2, 5] -= 40.0  # query 2 no longer of query 1's stuff class
            if case == "small":
                cls[8:11] = -10.0
                cls[8:11, 0] = 10.0  # three confident thing queries
                _spikes(gen, masks, [8, 9, 10], _mask_hw(sizes[k]))
            none = cls.clone()
            none[:, K] = 30.0
            for c in (cls, none) if n == k == 0 else (cls,):
                ids, info = originals.detr_panoptic(c, masks, sizes[k], (h, w), is_thing_map, DETR_THRESHOLD)
                seg = original.detr_fusion(c, masks, sizes[k], (h, w), IS_THING, DETR_THRESHOLD)
                assert torch.equal(seg.id_map.long(), ids)
                assert _detr_as_original(seg) == info
                scores, labels = F.softmax(c, -1).max(-1)
                keep = labels.ne(K) & (scores > DETR_THRESHOLD)
                dropped += int(keep.sum()) - len(info)
                merged += int(keep[1] and keep[2] and labels[1] == labels[2] == 5)
    if case == "small":
        assert dropped >= 3  # segments of 4 pixels or fewer dropped
    if case == "duplicate_stuff":
        assert merged >= 2


# ---- end to end ----

def _lookup(ids: np.ndarray, value: dict[int, int]) -> np.ndarray:
    """Each pixel's ``value`` of its id (0 for an id not in it)."""
    lut = np.zeros(int(ids.max(initial=0)) + 1, np.int64)
    for i, v in value.items():
        if i < len(lut):
            lut[i] = v
    return lut[ids.astype(np.int64)]


def test_mask2former_end_to_end_is_its_forward_with_the_same_network(tmp_path: Path, images: list[Path]) -> None:
    """A tiny transformers Mask2Former (tests/hf_tiny.py) with the COCO sample's categories, loaded by panbench:
    its pipeline, forward and segments against Mask2Former's ``MaskFormer.forward`` with the same network on
    detectron2's inputs (the COCO JPEGs as one batch, an EXIF-turned JPEG alone): the same
    partition of the pixels into segments, the same category on every pixel."""
    import hf_tiny  # tests/hf_tiny.py
    from conftest import COCO_SAMPLE

    cats = json.loads((COCO_SAMPLE / "annotations" / "panoptic_val2017.json").read_text())["categories"]
    d = hf_tiny.build("mask2former", [c["name"] for c in cats], tmp_path / "m2f")
    categories = SimpleNamespace(names=[c["name"] for c in cats], ids=[c["id"] for c in cats],
                                 isthing=[bool(c["isthing"]) for c in cats])
    built = load_hf_model(str(d), categories, "cpu", cfg_options=None)
    model = built.model
    assert isinstance(model, HFPanoptic) and model.protocol is not None  # --pipeline original, the default
    things = {k for k, c in enumerate(cats) if c["isthing"]}
    by_name = {p.name: p for p in images}
    batches = [[p for p in images if p.parent == COCO_SAMPLE / "val2017"], [by_name["exif6.jpg"]]]
    segments = 0
    for batch in batches:
        with torch.no_grad():
            ours = model.forward([model.pipeline({"img_path": str(p)}) for p in batch], "cpu", None)
        theirs = originals.mask2former_forward(model.model, [originals.d2_input(p) for p in batch], things,
                                               len(cats), D2_MEAN, D2_STD, DIVISIBILITY["mask2former"],
                                               OBJECT_MASK, OVERLAP)
        for out, r in zip(ours, theirs):
            ids, segs = model.to_segments(out)
            pan, info = r["panoptic_seg"]
            assert ids.shape == tuple(pan.shape)
            ours_cat = _lookup(ids, {s["id"]: s["category_id"] for s in segs})
            pan_np = pan.numpy().astype(np.int64)
            their_cat = _lookup(pan_np, {s["id"]: cats[s["category_id"]]["id"] for s in info})  # label -> COCO id
            assert np.array_equal(ours_cat, their_cat)  # the same category (0: VOID) on every pixel
            pairs = np.unique(np.stack([ids.ravel().astype(np.int64), pan_np.ravel().astype(np.int64)]), axis=1)
            assert len(set(pairs[0])) == len(set(pairs[1])) == pairs.shape[1]  # one segment for one segment
            assert np.array_equal(ids == 0, pan_np == 0)
            assert len(segs) == len(info)
            segments += len(info)
    assert segments >= 3  # the tiny network's queries are confident (hf_tiny's _confident)
