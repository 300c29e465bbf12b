"""The C fast path (panbench.pq._native + libdeflate) against the general decoders and the numpy twin of its pixel
pass (tests/kernel_references.py).

PNGs are built here byte by byte so that every PNG filter type (None, Sub, Up, Average, Paeth),
RGB and RGBA, split IDAT chunks and each kind of damage are covered, whatever PIL would choose.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from kernel_references import Twin, pair_counts
from PIL import Image

from panbench.errors import InputError
from panbench.pq import evaluator, kernels, png
from panbench.pq.kernels import rgb2id
from panbench.pq.matching import CategoryTable
from panbench.pq.png import decode_png, read_ids


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(ft: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[ft]
        out[i] = (x - pred) % 256
    return bytes([ft]) + bytes(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(img: np.ndarray, filters: list[int], idat_parts: int = 1, interlace: int = 0, depth: int = 8) -> bytes:
    """A PNG of an HxWx3/4 uint8 image with the given filter type per row."""
    h, w, ch = img.shape
    bpp = ch
    raw, prev = b"", bytes(w * bpp)
    for y in range(h):
        row = img[y].tobytes()
        raw += _filter_row(filters[y % len(filters)], row, prev, bpp)
        prev = row
    z = zlib.compress(raw, 9)
    step = -(-len(z) // idat_parts)
    idats = b"".join(_chunk(b"IDAT", z[i : i + step]) for i in range(0, len(z), step))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, 2 if ch == 3 else 6, 0, 0, interlace)
    return png.PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"tEXt", b"k\0v") + idats + _chunk(b"IEND", b"")


@pytest.fixture(params=[True, False])
def avx2(request: pytest.FixtureRequest):
    """With the AVX2 loops (skipped on a CPU without AVX2) and without; AVX2 back on after the test."""
    c = kernels._native
    if request.param and not c.use_avx2(True):
        pytest.skip("this CPU has no AVX2")
    assert c.use_avx2(request.param) is request.param
    yield request.param
    c.use_avx2(True)


def _panoptic_like(rng: np.random.Generator, h: int, w: int, ch: int) -> np.ndarray:
    """Flat regions (what panoptic PNGs are) plus noise rows (every filter branch)."""
    colors = rng.integers(0, 256, (6, ch), dtype=np.uint8)
    lab = np.zeros((h, w), int)
    lab[:, w // 3 :] = 1
    lab[h // 2 :, : w // 2] = 2
    lab[h // 3 : h // 2, w // 4 : 3 * w // 4] = rng.integers(3, 6)
    img = colors[lab]
    img[h - 2] = rng.integers(0, 256, (w, ch), dtype=np.uint8)
    return img


@pytest.mark.parametrize("ch", [3, 4])
@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4], [4, 4, 3, 1, 2]])
def test_every_filter_type_decodes_like_pil(tmp_path: Path, ch: int, filters: list[int]) -> None:
    rng = np.random.default_rng(len(filters) * 10 + filters[0] + ch)
    img = _panoptic_like(rng, 23, 37, ch)
    p = tmp_path / "x.png"
    p.write_bytes(make_png(img, filters, idat_parts=3))
    expect = rgb2id(img[..., :3])
    assert np.array_equal(read_ids(p, "test"), expect)
    assert np.array_equal(np.asarray(Image.open(p).convert("RGB")), img[..., :3])  # the PNG itself is valid


@pytest.mark.parametrize("ch", [3, 4])
@pytest.mark.parametrize("ft", [0, 1, 2, 3, 4])
def test_every_filter_type_decodes_noise_and_flat_runs_at_every_width(tmp_path: Path, ch: int, ft: int,
                                                                       avx2: bool) -> None:
    """Widths 1..40 (the four- and eight-pixel blocks and their scalar tails), random alpha (it must not
    reach the ids), rows of noise, flat rows and runs: each filter's flat-pixel shortcut and its exits, with
    the AVX2 loops and without."""
    rng = np.random.default_rng(100 * ch + ft)
    for w in range(1, 41):
        h = int(rng.integers(1, 9))
        img = rng.integers(0, 256, (h, w, ch), dtype=np.uint8)  # rows 0, 4: noise
        img[1::4] = img[1::4, :1]  # flat rows
        img[2::4] = img[2::4, :1]
        img[2::4, w // 3 :, 2] += 1  # a flat row whose blue byte alone steps, below a flat row
        img[3::4, : w // 2] = img[0, :1]  # a run, then noise
        if ch == 4:
            img[..., 3] = rng.integers(0, 256, (h, w), dtype=np.uint8)
        p = tmp_path / f"{w}.png"
        p.write_bytes(make_png(img, [ft]))
        assert np.array_equal(read_ids(p, "t", slot="gt"), rgb2id(img[..., :3])), w


@pytest.mark.parametrize("ch", [3, 4])
def test_paeth_blocks_with_scattered_changed_pixels_decode_every_pixel(tmp_path: Path, ch: int, avx2: bool) -> None:
    """Flat regions with single pixels changed here and there: blocks of eight holding several pixels that are
    not flat between flat ones (each flat one repeats the changed pixel to its left), on Paeth rows."""
    rng = np.random.default_rng(40 + ch)
    for w in (9, 16, 23, 40, 67):
        img = np.empty((14, w, ch), np.uint8)
        img[:] = rng.integers(0, 256, ch, dtype=np.uint8)
        img[:, w // 2 :] = rng.integers(0, 256, ch, dtype=np.uint8)
        for y, x in zip(rng.integers(0, 14, w), rng.integers(0, w, w)):
            img[y, x, :3] = rng.integers(0, 256, 3, dtype=np.uint8)
            if rng.random() < 0.5 and x + 1 < w:  # two changed pixels side by side
                img[y, x + 1, :3] = rng.integers(0, 256, 3, dtype=np.uint8)
        p = tmp_path / f"{w}.png"
        p.write_bytes(make_png(img, [4]))
        assert np.array_equal(read_ids(p, "t", slot="gt"), rgb2id(img[..., :3])), w


def test_pil_written_pngs_match_the_general_decoder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate([(1, 1), (480, 640), (17, 5), (5, 300)]):
        img = _panoptic_like(rng, h, w, 3) if h > 2 else rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        p = tmp_path / f"{k}.png"
        Image.fromarray(img).save(p)
        assert np.array_equal(read_ids(p, "t", slot="gt"), rgb2id(decode_png(p, "t")))


def test_other_png_kinds_take_the_general_decoder(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    pal = tmp_path / "pal.png"
    Image.fromarray(img).quantize(7).save(pal)
    assert pal.read_bytes()[25] == 3  # colour type 3: palette
    assert np.array_equal(read_ids(pal, "t"), rgb2id(np.asarray(Image.open(pal).convert("RGB"))))
    grey = tmp_path / "grey.png"
    Image.fromarray(img[..., 0]).save(grey)
    with pytest.raises(InputError, match="single-channel"):
        read_ids(grey, "image 7")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-20], "truncated or corrupt"),
        (lambda b: b[:40], "truncated or corrupt"),
        (lambda b: b"GIF89a" + b[6:], "no PNG signature"),
        (lambda b: b[:60] + bytes([b[60] ^ 0xFF]) + b[61:], "CRC error"),
        (lambda b: b[:-12], "ends before IEND"),
    ],
)
def test_damaged_png_is_one_input_error(tmp_path: Path, damage, message: str) -> None:
    img = _panoptic_like(np.random.default_rng(2), 20, 30, 3)
    p = tmp_path / "bad.png"
    p.write_bytes(damage(make_png(img, [4, 2])))
    with pytest.raises(InputError, match=message) as e:
        read_ids(p, "image 5")
    assert str(e.value).startswith("image 5: PNG") and "\n" not in str(e.value)


def test_bad_filter_type_is_reported(tmp_path: Path) -> None:
    img = _panoptic_like(np.random.default_rng(3), 4, 4, 3)
    good = make_png(img, [0])
    raw = bytearray(zlib.decompress(good[good.index(b"IDAT") + 4 : good.index(b"IEND") - 8]))
    raw[0] = 7
    z = zlib.compress(bytes(raw))
    png = good[: good.index(b"IDAT") - 4] + _chunk(b"IDAT", z) + _chunk(b"IEND", b"")
    p = tmp_path / "f.png"
    p.write_bytes(png)
    with pytest.raises(InputError, match="unknown PNG filter type 7"):
        read_ids(p, "image 1")


def _cats() -> CategoryTable:
    return CategoryTable([1, 2, 3], ["a", "b", "c"], [True, True, False])


def _paths() -> tuple[object, Twin]:
    """The pixel pass in C (``_native.pair_counts``) and its numpy twin (the rest of ``_native`` unchanged)."""
    return kernels._native, Twin(kernels._native, pair_counts=pair_counts)


@pytest.mark.parametrize("seed", range(20))
def test_native_counts_equal_the_numpy_twin(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 40, 2)
    n_gt, n_pred = rng.integers(0, 6, 2)
    gt_seg = rng.choice(np.arange(1, 2**24), n_gt, replace=False)
    pred_seg = rng.choice(np.arange(1, 2**24), n_pred, replace=False)
    gt = rng.choice(np.concatenate([[0], gt_seg]), (h, w)).astype(np.uint32)
    pred = rng.choice(np.concatenate([[0], pred_seg]), (h, w)).astype(np.uint32)
    pred_seg = [s for s in pred_seg if (pred == s).any()]
    gsi = [{"id": int(s), "category_id": int(rng.integers(1, 4)), "area": int((gt == s).sum()),
            "iscrowd": int(rng.random() < 0.2)} for s in gt_seg]
    psi = [{"id": int(s), "category_id": int(rng.integers(1, 4))} for s in pred_seg]
    fast = evaluator.score_pair(_cats(), gt, gsi, pred, psi, "t").stats
    monkeypatch.setattr(kernels, "_native", _paths()[1])
    slow = evaluator.score_pair(_cats(), gt, gsi, pred, psi, "t").stats
    for f in ("tp_cats", "tp_ious", "fn_cats", "fp_cats", "sem_gt", "sem_pred", "sem_px"):
        assert np.array_equal(getattr(fast, f), getattr(slow, f), equal_nan=True), f


def _table(gt: np.ndarray, gsi: list, pred: np.ndarray, psi: list) -> np.ndarray:
    """The intersection table of two id maps (through whichever path ``kernels._native`` selects)."""
    from panbench.pq.coco_format import parse_segments

    g, p = parse_segments(gsi, _cats(), "gt", gt=True), parse_segments(psi, _cats(), "pred", gt=False)
    return evaluator.intersection_table(gt, g, pred, p, "i")


def test_native_counts_of_blocky_maps_equal_the_numpy_twin(monkeypatch: pytest.MonkeyPatch, avx2: bool) -> None:
    """Runs of every length across the 4- and 8-pixel blocks (the AVX2 and the SSE2 loop), and ids in no
    segment on either side at the first, a middle and the last pixel."""
    rng = np.random.default_rng(7)
    ids = rng.choice(np.arange(1, 2**24), 9, replace=False)
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 33, 200, 1001):
        runs = rng.integers(1, 12, n)
        gt = np.repeat(rng.choice(np.concatenate([[0], ids[:4]]), n), runs)[:n].reshape(1, -1).astype(np.uint32)
        pred = np.repeat(rng.choice(np.concatenate([[0], ids[4:8]]), n), runs[::-1])[:n].reshape(1, -1)
        pred = pred.astype(np.uint32)
        gsi = [{"id": int(s), "category_id": 1 + k % 3, "area": int((gt == s).sum())}
               for k, s in enumerate(ids[:4])]
        psi = [{"id": int(s), "category_id": 1 + k % 3} for k, s in enumerate(ids[4:8]) if (pred == s).any()]
        for where in (0, n // 2, n - 1):
            for side, arr in (("gt", gt), ("pred", pred)):
                bad = arr.copy()
                bad[0, where] = ids[8]
                args = (bad, pred) if side == "gt" else (gt, bad)
                messages = []
                for native in _paths():
                    monkeypatch.setattr(kernels, "_native", native)
                    with pytest.raises(InputError) as e:
                        evaluator.score_pair(_cats(), args[0], gsi, args[1], psi, "i", strict=True)
                    messages.append(str(e.value))
                monkeypatch.undo()
                assert messages[0] == messages[1] and str(ids[8]) in messages[0]
        out = []
        for native in _paths():
            monkeypatch.setattr(kernels, "_native", native)
            out.append(_table(gt, gsi, pred, psi))
        monkeypatch.undo()
        assert np.array_equal(out[0], out[1]), n


@pytest.mark.parametrize("side", ["gt", "pred"])
def test_native_unknown_id_errors_match_the_numpy_twin(monkeypatch: pytest.MonkeyPatch, side: str) -> None:
    """A predicted id in no segment is refused; a ground-truth one with ``strict`` (else it is scored)."""
    gt = np.array([[5, 5, 0], [9, 9, 9]], np.uint32)
    pred = np.array([[7, 7, 0], [7, 8, 8]], np.uint32)
    gsi = [{"id": 5, "category_id": 1, "area": 2}, {"id": 9, "category_id": 3, "area": 3}]
    psi = [{"id": 7, "category_id": 1}, {"id": 8, "category_id": 3}]
    if side == "gt":
        gsi = gsi[:1]
    else:
        psi = psi[:1]
    messages = []
    for native in _paths():
        monkeypatch.setattr(kernels, "_native", native)
        with pytest.raises(InputError) as e:
            evaluator.score_pair(_cats(), gt, gsi, pred, psi, "image 3", strict=True)
        messages.append(str(e.value))
    assert messages[0] == messages[1] and ("9" if side == "gt" else "8") in messages[0]


@pytest.mark.parametrize("strict", [False, True])
def test_the_first_unknown_id_in_pixel_order_is_reported_by_both_paths(strict: bool) -> None:
    """Unknown ids on both sides: the one at the first such pixel is reported, the ground truth's where both are at
    one pixel (with ``strict``; without it the ground truth's unknown ids are scored), by C and by the twin."""
    rng = np.random.default_rng(5)
    for _ in range(60):
        gt = rng.choice(np.array([1, 2, 99], np.uint32), size=(4, 5), p=[0.45, 0.45, 0.1])
        pred = rng.choice(np.array([3, 4, 98], np.uint32), size=(4, 5), p=[0.45, 0.45, 0.1])
        keys = np.array([1, 2], np.int64), np.array([3, 4], np.int64)
        got = []
        for ext in _paths():
            inter = np.zeros((4, 3), np.int64)
            bad = ext.pair_counts(gt, pred, *keys, inter, strict)
            got.append((bad, inter if bad is None else None))
        assert got[0][0] == got[1][0], (gt, pred)
        if got[0][0] is None:
            assert np.array_equal(got[0][1], got[1][1])


def test_native_unlisted_ground_truth_ids_score_as_the_numpy_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    gt = np.array([[5, 5, 0], [9, 9, 9]], np.uint32)  # 9 is in no segment of segments_info
    pred = np.array([[7, 7, 0], [7, 8, 8]], np.uint32)
    gsi = [{"id": 5, "category_id": 1, "area": 2}]
    psi = [{"id": 7, "category_id": 1}, {"id": 8, "category_id": 3}]
    out = []
    for native in _paths():
        monkeypatch.setattr(kernels, "_native", native)
        out.append(evaluator.score_pair(_cats(), gt, gsi, pred, psi, "image 3").stats)
    for f in ("tp_cats", "tp_ious", "fn_cats", "fp_cats", "sem_gt", "sem_pred", "sem_px", "unlisted_px"):
        assert np.array_equal(getattr(out[0], f), getattr(out[1], f), equal_nan=True), f
    assert out[0].unlisted_px.tolist() == [3] and out[0].tp_ious.tolist() == [2 / 3]  # union 3: id 9's pixel stays


def test_wide_integer_id_maps_are_checked_not_wrapped() -> None:
    gt = np.array([[1, 1]], np.int64)
    pred = np.array([[2**32 + 1, 1]], np.int64)  # would wrap to 1 as uint32
    gsi = [{"id": 1, "category_id": 1, "area": 2}]
    psi = [{"id": 1, "category_id": 1}]
    with pytest.raises(InputError, match="4294967297"):
        evaluator.score_pair(_cats(), gt, gsi, pred, psi, "image 1")


def test_a_png_that_grows_after_its_size_was_read_is_read_to_the_end(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    img = _panoptic_like(np.random.default_rng(4), 30, 40, 3)
    p = tmp_path / "x.png"
    p.write_bytes(make_png(img, [4, 2]))

    class Small:
        st_size = 20  # as if the file had 20 bytes when its size was read
        st_mode = 0o100644  # a regular file

    monkeypatch.setattr(png.os, "fstat", lambda fd: Small())
    assert np.array_equal(read_ids(p, "t"), rgb2id(img))


def test_pngs_of_changing_sizes_decode_into_one_reused_buffer_per_slot(tmp_path: Path) -> None:
    """COCO's images come in many sizes: each slot keeps one buffer, grown when an image needs more, and every
    image reads as PIL decodes it."""
    rng = np.random.default_rng(11)
    seen = []
    for k, (h, w) in enumerate([(40, 60), (37, 61), (20, 20), (41, 64), (33, 50)]):
        img = _panoptic_like(rng, h, w, 3)
        path = tmp_path / f"{k}.png"
        Image.fromarray(img).save(path)
        ids = read_ids(path, "image", "reuse-test")
        assert ids.shape == (h, w)
        assert np.array_equal(ids, rgb2id(img))
        seen.append(ids.__array_interface__["data"][0] if ids.base is None else ids.base.__array_interface__["data"][0])
    assert len(set(seen[:3])) == 1  # the first image's buffer serves the two smaller ones
    assert len([a for a in kernels._LOCAL.buffers if a[0] == "reuse-test"]) == 1


def test_each_thread_decodes_into_buffers_of_its_own(tmp_path: Path) -> None:
    """``score`` decodes on threads: a slot's buffer is the thread's own, so two threads never share one."""
    import threading

    rng = np.random.default_rng(12)
    path = tmp_path / "a.png"
    Image.fromarray(_panoptic_like(rng, 30, 40, 3)).save(path)
    here = read_ids(path, "image", "thread-test")
    there: list[np.ndarray] = []
    t = threading.Thread(target=lambda: there.append(read_ids(path, "image", "thread-test")))
    t.start()
    t.join()
    assert np.array_equal(here, there[0]) and not np.shares_memory(here, there[0])
