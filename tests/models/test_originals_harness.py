"""tests/models/originals.py, the harness that runs the original repositories' test-time code (detectron2,
Mask2Former, MaskFormer, OneFormer, DETR, EoMT at the commits of ../shared/vendor, unpacked once for the session):
each of its functions runs on images and tensors of COCO's shapes and gives well-formed output, and Mask2Former's
steps given one by one (:func:`originals.mask2former_panoptic`) equal its whole ``forward`` with a transformers
network in it.  Runs in the torchvision tier (``make test-vision``)."""

from __future__ import annotations

import json
from pathlib import Path

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
from PIL import Image  # noqa: E402

#: (width, height): COCO's common shapes and an odd one
SIZES = [(640, 480), (480, 640), (640, 427), (333, 517)]
MEAN, STD = [123.675, 116.280, 103.530], [58.395, 57.120, 57.375]  # Mask2Former's COCO configs' PIXEL_MEAN/STD
K = 8  # classes; K is "no object"
THINGS = {0, 1, 2, 3}


@pytest.fixture(scope="session", autouse=True)
def original_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The originals unpacked once into a temporary folder, on sys.path for the session."""
    if missing := originals.missing_tarballs():
        pytest.skip(f"{', '.join(missing)} not in {originals.VENDOR} (../shared/vendor)")
    return originals.sources(tmp_path_factory.mktemp("originals"))


def _image(tmp_path: Path, w: int, h: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = tmp_path / f"{w}x{h}.png"
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _resized(h: int, w: int, short: int = 800, longest: int = 1333) -> tuple[int, int]:
    """ResizeShortestEdge's output size, as its docstring states it."""
    scale = short / min(h, w)
    if max(h, w) * scale > longest:
        scale = longest / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_d2_input_is_the_mappers_dict_of_the_image_resized_to_800_on_its_short_side(tmp_path: Path, size) -> None:
    w, h = size
    d = originals.d2_input(_image(tmp_path, w, h))
    assert d["image"].dtype == torch.uint8 and tuple(d["image"].shape) == (3, *_resized(h, w))
    assert (d["height"], d["width"], d["image_id"]) == (h, w, 0)
    small = originals.d2_input(_image(tmp_path, w, h), 320, 512)
    assert tuple(small["image"].shape[1:]) == _resized(h, w, 320, 512)


def test_d2_batch_normalises_each_image_and_pads_the_batch_to_a_multiple_of_32(tmp_path: Path) -> None:
    images = [originals.d2_input(_image(tmp_path, w, h))["image"] for w, h in SIZES]
    x, sizes = originals.d2_batch(images, MEAN, STD, 32)
    assert sizes == [tuple(img.shape[1:]) for img in images]
    hp, wp = (-(-max(s[i] for s in sizes) // 32) * 32 for i in range(2))
    assert tuple(x.shape) == (len(images), 3, hp, wp) and x.dtype == torch.float32
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    for k, (img, (h, w)) in enumerate(zip(images, sizes)):
        assert torch.equal(x[k, :, :h, :w], (img - mean) / std)
        assert not x[k, :, h:].any() and not x[k, :, :, w:].any()  # padding 0, after the normalisation
    alone, _ = originals.d2_batch(images[:1], MEAN, STD, 0)
    assert tuple(alone.shape[-2:]) == sizes[0]  # SIZE_DIVISIBILITY 0 (MaskFormer's COCO configs): no padding


def _head_outputs(h: int, w: int, mask_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of 7 queries over ``mask_hw`` (the mask features of a padded batch whose image is ``h`` x ``w`` at
    mask resolution): six confident queries, each a vertical stripe of the image (thing classes 0 and 2, stuff
    class 5 twice, stuff 6, thing 3), and a "no object" query."""
    classes = [0, 2, 5, 5, 6, 3, K]
    mask_cls = torch.zeros(len(classes), K + 1)
    mask_cls[torch.arange(len(classes)), torch.tensor(classes)] = 12.0
    mask_pred = torch.full((len(classes), *mask_hw), -8.0)
    edges = np.linspace(0, w, 7).astype(int)
    for q in range(6):
        mask_pred[q, :h, edges[q]:edges[q + 1]] = 8.0
    mask_pred[6, :h, :w] = 8.0 * (torch.rand(h, w) > 0.5)
    return mask_cls, mask_pred


def _check_detectron2_panoptic(pan: torch.Tensor, info: list[dict], height: int, width: int) -> None:
    assert pan.dtype == torch.int32 and tuple(pan.shape) == (height, width)
    assert [s["id"] for s in info] == list(range(1, len(info) + 1))
    assert set(pan.unique().tolist()) <= {0} | {s["id"] for s in info}
    for s in info:
        assert (pan == s["id"]).any() and 0 <= s["category_id"] < K and s["isthing"] == (s["category_id"] in THINGS)
    stuff = [s["category_id"] for s in info if not s["isthing"]]
    assert len(stuff) == len(set(stuff))  # a stuff class is one segment


PANOPTIC = {"mask2former": originals.mask2former_panoptic, "maskformer": originals.maskformer_panoptic,
            "oneformer": originals.oneformer_panoptic}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", PANOPTIC)
def test_the_mask_classification_panoptic_inferences_give_a_map_of_the_original_size_and_its_segments(
        kind: str, size) -> None:
    w, h = size
    image_size = _resized(h, w)
    padded = tuple(-(-s // 32) * 32 for s in image_size) if kind != "maskformer" else image_size
    mask_cls, mask_pred = _head_outputs(image_size[0] // 4, image_size[1] // 4, (padded[0] // 4, padded[1] // 4))
    pan, info = PANOPTIC[kind](mask_cls, mask_pred, padded, image_size, h, w, THINGS)
    _check_detectron2_panoptic(pan, info, h, w)
    assert sorted(s["category_id"] for s in info) == [0, 2, 3, 5, 6]  # the two queries of stuff 5: one segment
    none = torch.zeros_like(mask_cls)
    none[:, K] = 12.0
    pan, info = PANOPTIC[kind](none, mask_pred, padded, image_size, h, w, THINGS)
    assert info == [] and tuple(pan.shape) == (h, w) and not pan.any()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detr_preprocess_is_its_val_transform(size) -> None:
    w, h = size
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8))
    x = originals.detr_preprocess(img)
    # the short side 800, the long one truncated (detectron2's ResizeShortestEdge rounds: 1067 for 640x480)
    long = int(800 * max(h, w) / min(h, w))
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, *((800, long) if h < w else (long, 800)))
    assert -2.2 < x.min() < -1.5 and 2.0 < x.max() < 2.7  # ImageNet-normalised [0, 1]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detr_panoptic_gives_an_id_map_from_0_of_the_target_size_and_areas_that_count_its_pixels(size) -> None:
    w, h = size
    processed = _resized(h, w)
    mask_cls, mask_pred = _head_outputs(processed[0] // 4, processed[1] // 4, (processed[0] // 4, processed[1] // 4))
    is_thing = {c: c in THINGS for c in range(K + 1)}
    ids, info = originals.detr_panoptic(mask_cls, mask_pred, processed, (h, w), is_thing)
    assert tuple(ids.shape) == (h, w) and not ids.is_floating_point()
    assert [s["id"] for s in info] == list(range(len(info))) and len(info) >= 4  # ids from 0: 0 is a segment
    for s in info:
        assert s["area"] == int((ids == s["id"]).sum()) and s["isthing"] == is_thing[s["category_id"]]
    assert sum(s["area"] for s in info) == h * w  # every pixel is a segment's (the argmax of the kept masks)
    none = torch.zeros_like(mask_cls)
    none[:, K] = 12.0
    ids, info = originals.detr_panoptic(none, mask_pred, processed, (h, w), is_thing)
    assert info == [] and tuple(ids.shape) == (h, w) and not ids.any()  # no query kept: zeros, no segment


def test_eomt_resizes_pads_reverts_and_segments_per_pixel() -> None:
    rng = np.random.default_rng(2)
    images = [torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8)) for w, h in SIZES]
    img_size = (640, 640)
    batch = originals.eomt_resize_and_pad(images, img_size)
    assert batch.dtype == torch.uint8 and tuple(batch.shape) == (len(images), 3, *img_size)
    for k, img in enumerate(images):
        h, w = img.shape[1:]
        f = min(640 / h, 640 / w)
        sh, sw = round(h * f), round(w * f)
        assert batch[k, :, :sh, :sw].float().std() > 20  # the image (noise, smoothed by the resize)
        assert not batch[k, :, sh:].any() and not batch[k, :, :, sw:].any()  # padding 0, bottom and right
    norm = originals.eomt_normalise(batch)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert norm.dtype == torch.float32 and torch.allclose(norm, (batch / 255.0 - mean) / std)

    sizes = [tuple(img.shape[1:]) for img in images]
    logits = []
    class_logits = torch.zeros(len(images), 7, K + 1)
    for k, (h, w) in enumerate(sizes):  # the network's masks at 1/4 of img_size, the image in its top left corner
        f = min(640 / h, 640 / w)
        cls, m = _head_outputs(round(h * f) // 4, round(w * f) // 4, (160, 160))
        logits.append(m)
        class_logits[k] = cls
    reverted = originals.eomt_revert(torch.stack(logits), sizes, img_size)
    assert [tuple(r.shape) for r in reverted] == [(7, *s) for s in sizes]
    stuff = [c for c in range(K) if c not in THINGS]
    preds = originals.eomt_panoptic(reverted, class_logits, stuff, K)
    for p, (h, w) in zip(preds, sizes):
        assert p.dtype == torch.long and tuple(p.shape) == (h, w, 2)
        cls, seg = p[..., 0], p[..., 1]
        assert torch.equal(seg == -1, cls == K)  # no segment: (num_classes, -1)
        segs = sorted(set(seg.unique().tolist()) - {-1})
        assert segs == list(range(len(segs))) and len(segs) == 5  # ids from 0; stuff 5's two queries: one segment
        assert sorted(int(cls[seg == s][0]) for s in segs) == [0, 2, 3, 5, 6]
        assert all(cls[seg == s].unique().numel() == 1 for s in segs)
    none = torch.zeros_like(class_logits)
    none[..., K] = 12.0
    for p in originals.eomt_panoptic(reverted, none, stuff, K):
        assert (p[..., 0] == K).all() and (p[..., 1] == -1).all()


@pytest.fixture(scope="module")
def tiny_mask2former(tmp_path_factory: pytest.TempPathFactory, coco_sample_root: Path):
    """A random-init transformers Mask2Former (tests/hf_tiny.py) with COCO's 133 labels."""
    import hf_tiny  # tests/hf_tiny.py
    from transformers import Mask2FormerForUniversalSegmentation

    cats = json.loads((coco_sample_root / "annotations" / "panoptic_val2017.json").read_text())["categories"]
    out = hf_tiny.build("mask2former", [c["name"] for c in cats], tmp_path_factory.mktemp("mask2former"))
    return Mask2FormerForUniversalSegmentation.from_pretrained(out).eval(), cats


@pytest.fixture(scope="module")
def coco_sample_root() -> Path:
    from conftest import COCO_SAMPLE

    if not (COCO_SAMPLE / "annotations" / "panoptic_val2017.json").is_file():
        pytest.skip(f"COCO sample not found at {COCO_SAMPLE} (set PANBENCH_COCO_SAMPLE)")
    return COCO_SAMPLE


def test_mask2formers_forward_runs_a_transformers_network_and_equals_its_steps_one_by_one(
        tiny_mask2former, coco_sample_root: Path, tmp_path: Path) -> None:
    network, cats = tiny_mask2former
    things = {k for k, c in enumerate(cats) if c["isthing"]}
    paths = sorted((coco_sample_root / "val2017").glob("*.jpg")) + [_image(tmp_path, w, h) for w, h in SIZES]
    inputs = [originals.d2_input(p) for p in paths]
    segments = 0
    for batch in (inputs[:2], inputs[2:]):
        results = originals.mask2former_forward(network, batch, things, len(cats), MEAN, STD)
        x, sizes = originals.d2_batch([d["image"] for d in batch], MEAN, STD, 32)
        with torch.no_grad():
            out = network(pixel_values=x)
        for k, (d, r) in enumerate(zip(batch, results)):
            pan, info = r["panoptic_seg"]
            assert pan.dtype == torch.int32 and tuple(pan.shape) == (d["height"], d["width"])
            assert [s["id"] for s in info] == list(range(1, len(info) + 1))
            assert all(0 <= s["category_id"] < len(cats) and s["isthing"] == (s["category_id"] in things)
                       for s in info)
            assert set(pan.unique().tolist()) <= {0} | {s["id"] for s in info}
            step_pan, step_info = originals.mask2former_panoptic(
                out.class_queries_logits[k], out.masks_queries_logits[k], x.shape[-2:], sizes[k], d["height"],
                d["width"], things)
            assert torch.equal(step_pan, pan) and step_info == info
            segments += len(info)
    assert segments  # the random network predicts segments (tests/hf_tiny.py makes its queries confident)
