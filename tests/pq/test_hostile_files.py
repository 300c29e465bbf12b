"""Hostile and unusual files through `panbench score`: a small PNG that declares a huge image, broken
or unusual PNG headers, ground-truth areas smaller than the segment, and per-category IoU sums
beyond the range of one int64.  Each is one line naming the file or image, exit 2, no traceback,
bounded memory, on the C kernels and on their numpy twins (tests/kernel_references.py) alike.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from kernel_references import numpy_kernels
from PIL import Image

from panbench.cli import main
from panbench.data.synth import coco_like_categories, perturb, random_image, write_panoptic
from panbench.errors import InputError
from panbench.pq.matching import ImageStats
from panbench.pq.png import PNG_SIGNATURE, read_ids
from panbench.pq.sums import IOU_SCALE, PQStats, pq_summary

CATS = coco_like_categories()
PATHS = ["native", "numpy"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w: int, h: int, idat: bytes, depth: int = 8, color: int = 2, ihdr: bytes | None = None) -> bytes:
    """A PNG from its parts (IHDR fields, an already compressed IDAT stream)."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0) if ihdr is None else ihdr
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def zero_bomb(w: int, h: int) -> bytes:
    """A valid, all-black w x h 8-bit RGB PNG, built without ever holding its pixels: the zlib
    stream of h * (3w + 1) zero bytes is one compressed 8 MiB block of zeros (self-contained after
    a full flush) repeated, a tail, and the Adler-32 of n zeros, which is (n mod 65521) << 16 | 1."""
    total = h * (3 * w + 1)
    block = 1 << 23
    reps, tail = divmod(total, block)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    seg = co.compress(bytes(block)) + co.flush(zlib.Z_FULL_FLUSH)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = co.compress(bytes(tail)) + co.flush(zlib.Z_FINISH)
    adler = ((total % 65521) << 16) | 1
    return png(w, h, b"\x78\xda" + seg * reps + last + struct.pack(">I", adler))


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Path]:
    """One 640x427 image (the size of a COCO image) and a perturbed prediction of it."""
    rng = np.random.default_rng(0)
    gt = [(1, random_image(rng, 427, 640, CATS))]
    pred = [(1, perturb(rng, gt[0][1], CATS))]
    gj, gd = write_panoptic(tmp_path, "gt", gt, CATS)
    pj, pd = write_panoptic(tmp_path, "pred", pred, CATS)
    return {"gt_json": gj, "gt_dir": gd, "pred_json": pj, "pred_dir": pd,
            "gt_png": gd / "000000000001.png", "pred_png": pd / "000000000001.png"}


def args(c: dict[str, Path]) -> list[str]:
    return ["score", "--gt-json", str(c["gt_json"]), "--gt-dir", str(c["gt_dir"]),
            "--pred-json", str(c["pred_json"]), "--pred-dir", str(c["pred_dir"])]


CHILD = """import sys
sys.path.insert(0, sys.argv[3])
import pytest
from kernel_references import numpy_kernels
from panbench.cli import main
if sys.argv[2] == "numpy":
    from panbench.pq import batch
    m = pytest.MonkeyPatch()
    numpy_kernels(m)
    m.setattr(batch, "available", lambda: False)
try:
    rc = main(sys.argv[4:])
except SystemExit as e:
    rc = e.code
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1]
open(sys.argv[1], "w").write(hwm)
sys.exit(rc)
"""


def run_cli(c: dict[str, Path], path: str, tmp_path: Path) -> tuple[int, str, int]:
    """`panbench score` in a child process: exit code, stderr, and the child's peak RSS in bytes.

    The peak is the child's own VmHWM, read at its end: ``ru_maxrss`` would also count the pages of
    the test process at the fork (Linux carries the pre-exec high-water mark into it), which after the
    model tests of a full run is gigabytes."""
    hwm = tmp_path / "vmhwm.txt"
    tests = str(Path(__file__).parents[1])
    proc = subprocess.run([sys.executable, "-c", CHILD, str(hwm), path, tests, *args(c)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=os.environ)
    return proc.returncode, proc.stderr, int(hwm.read_text()) * 1024


def test_the_bomb_is_a_valid_png(tmp_path: Path) -> None:
    """The builder itself: a small one decodes to zeros (PIL), and the large one is small on disk."""
    p = tmp_path / "b.png"
    p.write_bytes(zero_bomb(3000, 1500))  # 13.5 MB of pixels: more than one 8 MiB block
    with Image.open(p) as im:
        assert im.size == (3000, 1500) and not np.asarray(im).any()
    assert len(zero_bomb(30000, 30000)) < 3_000_000


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("side", ["pred", "gt"])
def test_small_png_declaring_a_huge_image_is_refused_in_bounded_memory(case, tmp_path: Path, side: str,
                                                                       path: str) -> None:
    """2.6 MB on disk, 30000x30000 declared (2.7 GB of scanlines, 3.6 GB of ids if inflated)."""
    case[f"{side}_png"].write_bytes(zero_bomb(30000, 30000))
    rc, err, peak = run_cli(case, path, tmp_path)
    assert rc == 2, err
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line and str(case[f"{side}_png"]) in line
    if side == "pred":
        assert "is 30000x30000 but its ground truth is 640x427; predict at the original image size" in line
    else:  # the ground truth's JSON gives its image's size: checked before the pixel limit
        assert "ground truth" in line
        assert "is 30000x30000 but the ground-truth JSON's 'images' entry says 640x427" in line
    assert peak < 1 << 30, f"peak RSS {peak / 2**20:.0f} MiB"


def test_a_ground_truth_png_of_another_size_than_its_image_is_blamed_not_the_prediction(case, capsys) -> None:
    """The ground truth is checked against the size its JSON's 'images' entry gives; the prediction then against
    the ground truth: each message names the file that is wrong and its own fix."""
    with Image.open(case["gt_png"]) as im:
        im.resize((320, 213), Image.NEAREST).save(case["gt_png"])
    assert main(args(case)) == 2
    err = capsys.readouterr().err.strip()
    assert f"ground truth {case['gt_png']} is 320x213 but the ground-truth JSON's 'images' entry says 640x427; " \
           "re-download the annotations" in err and str(case["pred_png"]) not in err
    data = json.loads(case["gt_json"].read_text())
    for im in data["images"]:
        im.pop("height"), im.pop("width")  # no size given: the ground truth is the prediction's reference
    case["gt_json"].write_text(json.dumps(data))
    assert main(args(case)) == 2
    err = capsys.readouterr().err.strip()
    assert f"prediction {case['pred_png']} is 640x427 but its ground truth is 320x213; predict at the" in err


def test_the_pixel_limit_applies_to_every_png_and_can_be_raised(case, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PANBENCH_MAX_PIXELS", str(640 * 427 - 1))
    assert main(args(case)) == 2
    err = capsys.readouterr().err.strip()
    assert "declares 640x427 = 273280 pixels, above the limit of 273279" in err and str(case["gt_png"]) in err
    monkeypatch.setenv("PANBENCH_MAX_PIXELS", str(640 * 427))
    assert main(args(case)) == 0
    monkeypatch.setenv("PANBENCH_MAX_PIXELS", "lots")
    assert main(args(case)) == 2 and "PANBENCH_MAX_PIXELS='lots' is not a positive integer" in capsys.readouterr().err


def _rows16(w: int, h: int, channels: int) -> bytes:
    return b"".join(b"\0" + bytes(2 * channels * w) for _ in range(h))


def _save_pil(mode: str) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new(mode, (640, 427)).save(buf, format="PNG")
    return buf.getvalue()


def _second_ihdr(c: dict[str, Path]) -> bytes:
    """A valid first IHDR, then a second one that declares 30000x30000 (the one a lax reader uses)."""
    data = c["pred_png"].read_bytes()
    big = _chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    return data[:33] + big + data[33:]


HOSTILE = {
    # name: (new prediction PNG bytes, the message)
    "short_ihdr": (lambda c: png(640, 427, zlib.compress(b""), ihdr=struct.pack(">II", 640, 427)[:5]),
                   "IHDR chunk is 5 bytes, 13 expected"),
    "ihdr_cut_short": (lambda c: c["pred_png"].read_bytes()[:20], "IHDR chunk cut short"),
    "idat_cut_short": (lambda c: c["pred_png"].read_bytes()[:60], "(IDAT chunk cut short)"),
    "no_ihdr": (lambda c: c["pred_png"].read_bytes()[:12], "ends before IHDR"),
    "ihdr_crc": (lambda c: c["pred_png"].read_bytes()[:20] + b"\xff" + c["pred_png"].read_bytes()[21:],
                 "CRC error in IHDR"),
    "zero_width": (lambda c: png(0, 427, zlib.compress(b"")), "invalid IHDR: 0x427"),
    "ihdr_not_first": (lambda c: PNG_SIGNATURE + _chunk(b"tEXt", b"k\0v") + c["pred_png"].read_bytes()[8:],
                       "(first chunk is tEXt, not IHDR)"),
    "second_ihdr": (_second_ihdr, "a second IHDR chunk"),
    "rgb16": (lambda c: png(640, 427, zlib.compress(_rows16(640, 427, 3)), depth=16), "is 16-bit RGB;"),
    "rgba16": (lambda c: png(640, 427, zlib.compress(_rows16(640, 427, 4)), depth=16, color=6), "is 16-bit RGBA;"),
    "grey_alpha": (lambda c: _save_pil("LA"), "is grey+alpha;"),
    "grey": (lambda c: _save_pil("L"), "is single-channel grey;"),
    "inflates_past_ihdr": (lambda c: png(640, 427, zlib.compress(bytes(428 * 1921))), "truncated or corrupt"),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_unusual_png_is_one_line_exit_2(case, capsys, monkeypatch, name: str, path: str) -> None:
    make, expected = HOSTILE[name]
    case["pred_png"].write_bytes(make(case))
    if path == "numpy":
        numpy_kernels(monkeypatch)
    assert main(args(case)) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err, err
    assert "\n" not in err and "Traceback" not in err and str(case["pred_png"]) in err
    assert err.startswith("panbench: error: image 1: ")


def test_16_bit_and_grey_refusals_name_the_fix(case, tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    p.write_bytes(HOSTILE["rgb16"][0](case))
    with pytest.raises(InputError, match="panoptic PNGs are 8-bit RGB, RGBA or palette .*re-export it"):
        read_ids(p, "image 4")


@pytest.mark.parametrize("path", PATHS)
def test_ground_truth_area_smaller_than_its_pixels_is_refused(case, capsys, monkeypatch, path: str) -> None:
    """panopticapi takes `area` as given: here it would sum an IoU above 1 (and PQ above 100)."""
    gt = json.loads(case["gt_json"].read_text())
    seg = gt["annotations"][0]["segments_info"][0]
    true_area, seg["area"] = seg["area"], seg["area"] // 3
    case["gt_json"].write_text(json.dumps(gt))
    if path == "numpy":
        numpy_kernels(monkeypatch)
    assert main(args(case)) == 2
    err = capsys.readouterr().err.strip()
    assert f"segment {seg['id']} has area {seg['area']} in segments_info but {true_area} pixels in the PNG" in err
    assert err.startswith("panbench: error: image 1 (ground truth): ") and "\n" not in err


def test_ground_truth_area_larger_than_its_pixels_is_kept_as_panopticapi_does(case, capsys) -> None:
    gt = json.loads(case["gt_json"].read_text())
    gt["annotations"][0]["segments_info"][0]["area"] += 1000
    case["gt_json"].write_text(json.dumps(gt))
    assert main(args(case)) == 0


def test_iou_sums_past_the_int64_range_of_one_fixed_point_word() -> None:
    """2^23 matches of one category fill an int64 in units of 2^-40; 12 million must still add up.
    (200 images of 60000 matches each; an image has fewer than 65535 segments.)"""
    n_cat, per_image, images = 3, 60_000, 200
    iou = 0.9990234375  # 1023/1024: exact in fixed point, so the expected sum is exact too
    s = ImageStats(np.zeros(per_image, np.int64), np.full(per_image, iou), np.zeros(0, np.int64),
                   np.zeros(0, np.int64))
    a, b = PQStats.zeros(n_cat), PQStats.zeros(n_cat)
    for k in range(images):
        (a if k % 2 else b).add_image(s)
    total = a + b
    expect = images * per_image * iou
    assert expect * IOU_SCALE > 2**63  # one int64 word would have wrapped
    assert total.iou_sum[0] == expect and total.tp[0] == images * per_image
    assert PQStats.from_array(a.to_array() + b.to_array()) == total  # the all-reduce of runner.py
    res = pq_summary(total, [1, 2, 3], [True, False, True])
    assert res["per_class"]["1"]["SQ"] == pytest.approx(100 * iou, abs=1e-12)
    assert res["PQ"] == pytest.approx(100 * iou, abs=1e-12)


def test_fixed_point_sums_are_exact_across_any_split_with_carries() -> None:
    """The fraction carries into the whole part; the representation is unique, so any order of
    additions gives equal stats, and the float sum is the exact sum rounded once."""
    rng = np.random.default_rng(5)
    imgs = []
    for _ in range(50):
        n = int(rng.integers(0, 40))
        imgs.append(ImageStats(rng.integers(0, 4, n), rng.uniform(0.5, 1.0, n), np.zeros(0, np.int64),
                               np.zeros(0, np.int64)))
    one = PQStats.zeros(4)
    for s in imgs:
        one.add_image(s)
    parts = [PQStats.zeros(4) for _ in range(3)]
    for k, s in enumerate(imgs):
        parts[k % 3].add_image(s)
    assert parts[2] + parts[0] + parts[1] == one
    exact = [sum(int(np.rint(v * IOU_SCALE)) for s in imgs for c, v in zip(s.tp_cats, s.tp_ious) if c == k)
             for k in range(4)]
    assert list(one.iou_sum) == [float(e) / IOU_SCALE for e in exact]
    assert np.all((one.iou >= 0) & (one.iou < 2**40))
