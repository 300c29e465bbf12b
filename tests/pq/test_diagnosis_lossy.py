"""A prediction PNG whose colours a lossy codec or a palette changed (the COCO sample's own ground truth through a
JPEG or lossy WebP round trip, PIL's web palette, or a palette of 256 colours over a map of more) holds ids that no
segment lists, inside every segment as well as on its borders: its refusal names lossy compression or a palette and
says to save a lossless RGB PNG, not to list every segment.  A palette PNG that holds every id's colour exactly
scores as the RGB one; segments left out of segments_info, random ids and a relabelled map get no such finding.
``score`` on the files, the Python API on arrays."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from test_diagnosis_resized import OLD_ADVICE, _rgb, _sample, resized

from panbench.cli import main
from panbench.errors import InputError
from panbench.pq.diagnosis import lossy_colors
from panbench.pq.png import read_ids

LOSSY = "the PNG's colours were changed by lossy compression or a palette (JPEG, lossy WebP, a 'P'-mode or quantised " \
        "PNG); save the id map as a lossless RGB PNG (PIL: Image.fromarray(rgb, 'RGB').save('x.png'), with no " \
        "quantize() or convert('P'))"

NEAR = "lie within 8 levels per RGB channel of a listed id's colour"  # a codec's evidence
WEB = "are web-palette colours near listed ids' colours, and the map holds 0 of the"  # the web palette's


def _ids(im: Image.Image) -> np.ndarray:
    rgb = np.asarray(im.convert("RGB")).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def through(ids: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    """``ids`` saved in ``fmt`` (JPEG, WEBP) at ``quality`` and read back."""
    buf = io.BytesIO()
    Image.fromarray(_rgb(ids)).save(buf, fmt, quality=quality)
    return _ids(Image.open(buf))


def _jpeg_quantized(ids: np.ndarray, how: str) -> Image.Image:
    """A map of more than 256 colours (``ids`` through JPEG at 90: thousands) in a palette of 256 (PIL's median cut)."""
    im = Image.fromarray(_rgb(through(ids, "JPEG", 90)))
    return im.quantize(256) if how == "quantize" else im.convert("P", palette=Image.Palette.ADAPTIVE)


CHANGED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg-95": lambda ids: through(ids, "JPEG", 95),
    "jpeg-75": lambda ids: through(ids, "JPEG", 75),
    "webp-lossy": lambda ids: through(ids, "WEBP", 80),
    "web-palette": lambda ids: _ids(Image.fromarray(_rgb(ids)).convert("P")),  # convert('P'), back to RGB
    "web-palette-undithered": lambda ids: _ids(Image.fromarray(_rgb(ids)).convert("P", dither=Image.Dither.NONE)),
}


def score_saved(coco_sample: Path, tmp: Path, capsys, save: Callable[[np.ndarray, Path], None]) -> tuple[int, str,
                                                                                                        str]:
    """``score`` of the ground truth as its own prediction, each PNG written by ``save`` (ids, path): the exit code,
    standard output and standard error."""
    ann = coco_sample / "annotations"
    gt = json.loads((ann / "panoptic_val2017.json").read_text())
    (tmp / "pred").mkdir()
    for a in gt["annotations"]:
        save(read_ids(ann / "panoptic_val2017" / a["file_name"], "").astype(np.int64), tmp / "pred" / a["file_name"])
    (tmp / "pred.json").write_text(json.dumps({"annotations": [
        {"image_id": a["image_id"], "file_name": a["file_name"], "segments_info": a["segments_info"]}
        for a in gt["annotations"]]}))
    code = main(["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
                 "--pred-json", str(tmp / "pred.json"), "--pred-dir", str(tmp / "pred"), "--no-analysis", "--json"])
    out, err = capsys.readouterr()
    return code, out, err.strip()


@pytest.mark.parametrize("how", ["jpeg-95", "jpeg-75", "webp-lossy", "web-palette"])
def test_a_prediction_with_lossy_colours_is_told_to_save_a_lossless_rgb_png(how: str, coco_sample: Path,
                                                                             tmp_path: Path, capsys) -> None:
    """Each map changed by ``how`` and written as an RGB PNG (re-saved after the round trip)."""
    def save(ids: np.ndarray, path: Path) -> None:
        Image.fromarray(_rgb(CHANGED[how](ids))).save(path)

    code, _, err = score_saved(coco_sample, tmp_path, capsys, save)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "is absent from segments_info; the map's " in err and err.endswith(LOSSY), err
    assert (WEB if how == "web-palette" else NEAR) in err and OLD_ADVICE not in err


@pytest.mark.parametrize("palette", ["web", "quantize", "adaptive"])
def test_a_prediction_saved_as_a_p_mode_png_of_changed_colours_is_named(palette: str, coco_sample: Path,
                                                                        tmp_path: Path, capsys) -> None:
    """The 'P'-mode file itself: PIL's default web palette (dithered), or 256 colours (quantize(256), convert('P',
    palette=ADAPTIVE)) over a map of more."""
    def save(ids: np.ndarray, path: Path) -> None:
        im = Image.fromarray(_rgb(ids)).convert("P") if palette == "web" else _jpeg_quantized(ids, palette)
        assert im.mode == "P"
        im.save(path)

    code, _, err = score_saved(coco_sample, tmp_path, capsys, save)
    assert code == 2 and err.endswith(LOSSY) and (WEB if palette == "web" else NEAR) in err, err


@pytest.mark.parametrize("palette", ["quantize", "adaptive"])
def test_a_p_mode_png_holding_every_colour_exactly_scores_as_the_rgb_one(palette: str, coco_sample: Path,
                                                                         tmp_path: Path, capsys) -> None:
    """The sample's maps hold under 256 colours: a palette of 256 (quantize(256), convert('P', palette=ADAPTIVE))
    keeps each one, so the prediction is the ground truth: PQ 100, no finding."""
    def save(ids: np.ndarray, path: Path) -> None:
        im = Image.fromarray(_rgb(ids))
        im = im.quantize(256) if palette == "quantize" else im.convert("P", palette=Image.Palette.ADAPTIVE)
        im.save(path)

    code, out, err = score_saved(coco_sample, tmp_path, capsys, save)
    assert code == 0, err
    result = json.loads(out)
    assert result["PQ"] == 100.0 and "diagnosis" not in result, result


@pytest.mark.parametrize("how", ["jpeg-75", "web-palette", "web-palette-undithered"])
def test_the_python_api_names_lossy_colours_on_arrays(how: str, coco_sample: Path) -> None:
    from panbench.metrics import PanopticQuality

    categories, ids, segs = _sample(coco_sample)
    with pytest.raises(InputError) as e:
        PanopticQuality(categories).update(CHANGED[how](ids), segs, ids, segs, image_id=1)
    assert "ids absent from segments_info" in str(e.value) and str(e.value).endswith(LOSSY), e.value
    assert (NEAR if how.startswith("jpeg") else WEB) in str(e.value), e.value


def test_segments_left_out_random_ids_a_relabelled_or_resized_map_get_no_lossy_finding(coco_sample: Path) -> None:
    """Random ids on 1% of the pixels, or ids a few levels off their segment's on 1% (a codec changes most of the
    map), one segment left out, the smallest and largest 1, 3 or 6 left out, the two largest in web-palette colours
    (the others' listed ids in the map), every id +1 or segments_info renumbered 1..n (one colour a segment), a
    resize or a heavy blur (the ``resized`` finding's): no finding."""
    _, ids, segs = _sample(coco_sample)
    listed = [s["id"] for s in segs]
    assert lossy_colors(through(ids, "JPEG", 95), listed) is not None
    rng = np.random.default_rng(0)
    noisy = ids.copy()
    where = rng.random(ids.shape) < 0.01
    noisy[where] = rng.integers(1, 1 << 24, int(where.sum()))
    by_area = sorted(listed, key=lambda i: int((ids == i).sum()))
    for n in (1, 3, 6):
        assert lossy_colors(ids, by_area[n:-n]) is None, n
    assert lossy_colors(noisy, listed) is None
    off = np.where(where & (ids > 0), ids + rng.integers(0, 4, (*ids.shape, 3)) @ np.array([1, 256, 65536]), ids)
    assert len(np.setdiff1d(off, listed)) > 64 and lossy_colors(off, listed) is None
    assert lossy_colors(ids, listed[1:]) is None
    assert lossy_colors(np.where(ids > 0, ids + 1, 0), listed) is None
    assert lossy_colors(ids, range(1, len(listed) + 1)) is None
    web = ids.copy()
    for i in by_area[-2:]:
        rgb = (_rgb(np.array([i]))[0].astype(np.int64) + 25) // 51 * 51
        web[ids == i] = rgb @ np.array([1, 256, 65536])
    assert (~np.isin(web, [*listed, 0])).mean() > 0.5 and lossy_colors(web, listed) is None
    assert lossy_colors(resized(ids, "bilinear"), listed) is None
    heavy = _ids(Image.fromarray(_rgb(ids)).filter(ImageFilter.GaussianBlur(10)))
    assert lossy_colors(heavy, listed) is None


def test_many_segments_relabelled_or_left_out_with_nearby_ids_get_no_lossy_finding() -> None:
    """A map of 100 segments (10 x 10 tiles) whose ids are all +1 (one colour a segment, 100 unlisted ids), and one
    of 20 instances whose ids lie within 3 levels of each other, 15 of them left out of segments_info: no finding."""
    rng = np.random.default_rng(1)
    tiles = np.arange(100).reshape(10, 10).repeat(8, axis=0).repeat(8, axis=1)
    ids = rng.choice(np.arange(1, 1 << 24, 7), 100, replace=False)
    assert lossy_colors(ids[tiles] + 1, ids) is None
    near = 0x808080 + np.array([r + 256 * g + 65536 * b for r in range(3) for g in range(3) for b in range(3)])[:20]
    assert lossy_colors(near[tiles % 20], near[:5]) is None
