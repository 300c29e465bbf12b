"""The batch path of `panbench score` (C reads, decodes, counts and matches chunks of images on threads) gives
the numbers and the errors of the per-image path, bit for bit: on generated and real COCO PNGs, on any number of
threads, and for every unusual or damaged file, which it leaves to the per-image path."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from panbench.data.synth import coco_like_categories, id2rgb, perturb, random_image, write_panoptic
from panbench.errors import InputError
from panbench.pq import accumulator, batch, native, score
from panbench.pq.coco_format import parse_segments
from panbench.pq.matching import RES_HEADER
from panbench.pq.png import read_ids
from panbench.pq.result import join_columns, results_to_columns
from panbench.pq.score import Scoring, load_pairs, read_truth, score_stream
from tests.pq.test_hostile_files import HOSTILE, _chunk

pytestmark = pytest.mark.skipif(not batch.available(),
                                reason="libdeflate's entry points are not found (or PANBENCH_PER_IMAGE=1)")

CATS = coco_like_categories()
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco-panoptic-val2017-sample" / "annotations"


def _set(tmp_path: Path, n: int = 12, h: int = 96, w: int = 128) -> dict[str, Path]:
    rng = np.random.default_rng(3)
    gt = [(i, random_image(rng, h, w, CATS)) for i in range(1, n + 1)]
    pred = [(i, perturb(rng, g, CATS)) for i, g in gt]
    gj, gd = write_panoptic(tmp_path, "gt", gt, CATS)
    pj, pd = write_panoptic(tmp_path, "pred", pred, CATS)
    return {"gt_json": gj, "gt_dir": gd, "pred_json": pj, "pred_dir": pd}


FALLBACKS: list[str] = []  # the images the last _score sent to the per-image path


def _score(c: dict[str, Path], batch_path: bool, monkeypatch: pytest.MonkeyPatch, workers: int = 1,
           strict: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    FALLBACKS.clear()
    with monkeypatch.context() as m:
        if not batch_path:
            m.setattr(batch, "available", lambda: False)
        one = score._score_one

        def counted_one(cats, gt_dir, pred_dir, how, pair, tables=None):  # noqa: ANN001, ANN202
            FALLBACKS.append(pair[0]["file_name"])
            return one(cats, gt_dir, pred_dir, how, pair, tables)

        m.setattr(score, "_score_one", counted_one)
        ev, _ = score_stream(read_truth(c["gt_json"]), c["gt_dir"], c["pred_json"], c["pred_dir"], workers,
                             Scoring(strict=strict, keep_images=True))
    return ev.evaluate(), {**ev.columns()[1], "conf": ev.stats.conf, "unlisted": ev.stats.unlisted}


def _same(a: tuple[dict, dict[str, np.ndarray]], b: tuple[dict, dict[str, np.ndarray]]) -> None:
    assert a[0] == b[0]
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        assert a[1][k].dtype == b[1][k].dtype and np.array_equal(a[1][k], b[1][k], equal_nan=True), k


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batch_path_gives_the_per_image_numbers_bit_for_bit(tmp_path: Path, monkeypatch, workers: int) -> None:
    c = _set(tmp_path, n=21)  # 21 images: chunks of 8, 8 and 5
    ref = _score(c, False, monkeypatch)
    assert len(FALLBACKS) == 21  # the reference: every image on the per-image path
    _same(_score(c, True, monkeypatch, workers), ref)
    assert FALLBACKS == []  # every image counted in C
    _same(_score(c, True, monkeypatch, workers, strict=True), _score(c, False, monkeypatch, strict=True))


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="the COCO sample is not beside the checkout")
@pytest.mark.parametrize("workers", [1, 2])
def test_batch_path_on_cocos_own_pngs(tmp_path: Path, monkeypatch, workers: int) -> None:
    """COCO's two annotation PNGs as ground truth and as a prediction of each other's image: the same numbers."""
    gj = SAMPLE / "panoptic_val2017.json"
    d = json.loads(gj.read_text())
    pred = {**d, "annotations": [{**a, "segments_info": [{k: v for k, v in s.items() if k != "area"}
                                                         for s in a["segments_info"]]} for a in d["annotations"]]}
    pj = tmp_path / "pred.json"
    pj.write_text(json.dumps(pred))
    c = {"gt_json": gj, "gt_dir": SAMPLE / "panoptic_val2017", "pred_json": pj, "pred_dir": SAMPLE / "panoptic_val2017"}
    res = _score(c, True, monkeypatch, workers)
    assert res[0]["PQ"] == 100.0 and FALLBACKS == []
    _same(res, _score(c, False, monkeypatch))


def _pred_png(c: dict[str, Path], k: int = 1) -> Path:
    return c["pred_dir"] / f"{k:012d}.png"


def _rewrite(c: dict[str, Path], k: int, make) -> None:  # noqa: ANN001
    p = _pred_png(c, k)
    ids = read_ids(p, "test").copy()
    p.write_bytes(make(ids, p.read_bytes()))


def _palette(ids: np.ndarray, _: bytes) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(id2rgb(ids)).quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, format="PNG")
    return buf.getvalue()


def _rgba(ids: np.ndarray, _: bytes) -> bytes:
    rgba = np.dstack([id2rgb(ids), np.full(ids.shape, 200, np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _split_idat(_: np.ndarray, data: bytes) -> bytes:
    """The same image with its zlib stream cut into IDAT chunks of 7 bytes (and an empty one)."""
    pos, idat, rest = 33, b"", []
    while pos < len(data):
        n, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        else:
            rest.append((kind, data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    chunks = [_chunk(b"IDAT", idat[i:i + 7]) for i in range(0, len(idat), 7)] + [_chunk(b"IDAT", b"")]
    return data[:33] + b"".join(chunks) + b"".join(_chunk(k, v) for k, v in rest if k != b"IDAT")


def _interlaced(ids: np.ndarray, _: bytes) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(id2rgb(ids)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())  # PIL cannot write Adam7: the flag alone, with a fixed CRC, is refused later
    data[28] = 1
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _idat_crc(_: np.ndarray, data: bytes) -> bytes:
    """The IDAT chunk's CRC wrong, its data intact (it would inflate)."""
    i = data.index(b"IDAT")
    crc = i + 4 + struct.unpack_from(">I", data, i - 4)[0]
    return data[:crc] + bytes([data[crc] ^ 1]) + data[crc + 1:]


READABLE = {"palette": _palette, "rgba": _rgba, "split_idat": _split_idat,
            "data_after_iend": lambda ids, data: data + b"trailing bytes"}
DAMAGED = {"interlaced": _interlaced, "idat_crc": _idat_crc}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_unusual_but_valid_pngs_give_the_per_image_numbers(tmp_path: Path, monkeypatch, name: str) -> None:
    c = _set(tmp_path)
    for k in (1, 5, 12):
        _rewrite(c, k, READABLE[name])
    got = _score(c, True, monkeypatch, 2)
    assert FALLBACKS == (["000000000001.png", "000000000005.png", "000000000012.png"] if name == "palette" else [])
    _same(got, _score(c, False, monkeypatch))


@pytest.mark.parametrize(("workers", "limit"), [(1, ("ADD_EVERY", 12)), (2, ("ADD_EVERY", 12)), (2, ("ADD_BYTES", 1))])
def test_results_gathered_in_several_parts_are_the_per_image_numbers(tmp_path: Path, monkeypatch, workers: int,
                                                                     limit: tuple[str, int]) -> None:
    """Once 12 images are done (after the second chunk of 8), or after every chunk (a byte budget any res passes),
    the results become columns and are added; the parts' columns are joined with their images counted on; a
    palette PNG in a later part goes through the per-image path and into the same columns."""
    c = _set(tmp_path, n=23)
    for k in (2, 17):
        _rewrite(c, k, _palette)
    monkeypatch.setattr(batch, *limit)
    parts = []
    join = accumulator.join_columns  # the parts are added to score's accumulator and joined there
    monkeypatch.setattr(accumulator, "join_columns", lambda p, **k: parts.append(len(p)) or join(p, **k))
    got = _score(c, True, monkeypatch, workers)
    joined = list(parts)
    assert FALLBACKS == ["000000000002.png", "000000000017.png"]
    _same(got, _score(c, False, monkeypatch))
    assert got[1]["tp_img"][-1] == 22 and sorted(set(got[1]["gt_img"])) == list(range(23))
    assert joined == [2 if limit[0] == "ADD_EVERY" else 3]  # 23 images: parts of 16 and 7, or of 8, 8 and 7


def _error(c: dict[str, Path], batch_path: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    """The error of scoring ``c`` on 2 threads, by the batch path or the per-image path (each raises the first
    error in the images' order)."""
    with pytest.raises(InputError) as e:
        _score(c, batch_path, monkeypatch, 2)
    return str(e.value)


@pytest.mark.parametrize("name", sorted(DAMAGED) + sorted(HOSTILE))
def test_a_damaged_png_gets_the_per_image_error(tmp_path: Path, monkeypatch, name: str) -> None:
    c = _set(tmp_path, h=427, w=640) if name in HOSTILE else _set(tmp_path)
    if name in HOSTILE:
        p = _pred_png(c, 6)
        p.write_bytes(HOSTILE[name][0]({"pred_png": p}))
    else:
        _rewrite(c, 6, DAMAGED[name])
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and err.startswith("image 6")


def test_errors_come_in_the_images_order(tmp_path: Path, monkeypatch) -> None:
    """A missing PNG at image 3 and an unknown category at image 9 (prepared first): image 3's error."""
    c = _set(tmp_path)
    (c["gt_dir"] / "000000000003.png").unlink()
    pred = json.loads(c["pred_json"].read_text())
    pred["annotations"][8]["segments_info"][0]["category_id"] = 9999
    c["pred_json"].write_text(json.dumps(pred))
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and err.startswith("image 3") and "not found" in err


@pytest.mark.parametrize("side", ["gt", "pred"])
def test_an_id_in_no_segment_gets_the_per_image_error(tmp_path: Path, monkeypatch, side: str) -> None:
    c = _set(tmp_path)
    js = json.loads(c[f"{side}_json"].read_text())
    del js["annotations"][4]["segments_info"][0]
    c[f"{side}_json"].write_text(json.dumps(js))
    if side == "gt":  # without --strict the ground truth's unlisted pixels are scored as panopticapi does
        _same(_score(c, True, monkeypatch, 2), _score(c, False, monkeypatch))
        with pytest.raises(InputError) as a:
            _score(c, True, monkeypatch, 2, strict=True)
        with pytest.raises(InputError) as b:
            _score(c, False, monkeypatch, strict=True)
        assert str(a.value) == str(b.value) and "absent from segments_info" in str(a.value)
    else:
        err = _error(c, True, monkeypatch)
        assert err == _error(c, False, monkeypatch) and "absent from segments_info" in err


def test_a_prediction_of_another_size_gets_the_per_image_error(tmp_path: Path, monkeypatch) -> None:
    c = _set(tmp_path)
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(_pred_png(c, 2))
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and "predict at the original image size" in err


def test_pair_tables_counts_what_pair_counts_counts_and_leaves_the_rest(tmp_path: Path) -> None:
    c = _set(tmp_path, n=3)
    cats, pairs = load_pairs(read_truth(c["gt_json"]), c["pred_json"])
    _rewrite(c, 2, _palette)
    (c["gt_dir"] / "000000000003.png").unlink()
    items, tables, want = [], [], []
    for gt_ann, pred_ann in pairs:
        gt = parse_segments(gt_ann["segments_info"], cats, "x", gt=True)
        pred = parse_segments(pred_ann["segments_info"], cats, "x", gt=False)
        inter = np.full((len(gt) + 2, len(pred) + 1), -7, np.int64)
        g, p = c["gt_dir"] / gt_ann["file_name"], c["pred_dir"] / pred_ann["file_name"]
        items.append((bytes(g), bytes(p), -1, -1, gt.ids, pred.ids, inter, False))
        tables.append(inter)
        if g.exists():
            ref = np.empty_like(inter)
            native.pixels().pair_counts(read_ids(g, "x").copy(), read_ids(p, "x").copy(), gt.ids, pred.ids, ref,
                                        False)
            want.append(ref)
    status = native.pixels().pair_tables(items, 2**28)
    assert list(status) == [0, 1, 1]  # a palette PNG and a missing file: the per-image path's
    assert np.array_equal(tables[0], want[0])
    assert (tables[2] == -7).all()
    assert list(native.pixels().pair_tables(items[:1], 100)) == [1]  # above the pixel limit


def test_a_header_that_declares_another_size_than_the_json_is_left_to_python(tmp_path: Path, monkeypatch) -> None:
    c = _set(tmp_path)
    gt = json.loads(c["gt_json"].read_text())
    gt["images"][3]["height"] += 1
    c["gt_json"].write_text(json.dumps(gt))
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and "the ground-truth JSON's 'images' entry says" in err


def _scanlines(data: bytes) -> bytes:
    """The inflated scanlines of a PNG (its IDAT chunks joined)."""
    pos, idat = 33, b""
    while pos < len(data):
        n, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return zlib.decompress(idat)


def _with_scanlines(data: bytes, raw: bytes) -> bytes:
    """The PNG's signature and IHDR with ``raw`` as its one IDAT chunk (CRCs right)."""
    return data[:33] + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _filter_type(data: bytes, row: int, value: int) -> bytes:
    """The PNG with the filter byte of one row set to ``value``."""
    w = struct.unpack_from(">I", data, 16)[0]
    raw = bytearray(_scanlines(data))
    raw[row * (w * (3 if data[25] == 2 else 4) + 1)] = value
    return _with_scanlines(data, bytes(raw))


def _short_stream(data: bytes) -> bytes:
    """A zlib stream one row short of the height IHDR declares."""
    h = struct.unpack_from(">I", data, 20)[0]
    raw = _scanlines(data)
    return _with_scanlines(data, raw[: (h - 1) * (len(raw) // h)])


GT_DAMAGE = {
    "signature": lambda d: b"\x89PNX" + d[4:],
    "filter_type_5": lambda d: _filter_type(d, 3, 5),
    "filter_type_255_first_row": lambda d: _filter_type(d, 0, 255),
    "one_row_short": _short_stream,
    "empty_file": lambda d: b"",
    "data_after_iend": None,  # valid: counted (below)
}


@pytest.mark.parametrize("side", ["gt", "pred"])
@pytest.mark.parametrize("name", [k for k, v in GT_DAMAGE.items() if v is not None])
def test_damage_on_either_side_gets_the_per_image_error(tmp_path: Path, monkeypatch, side: str, name: str) -> None:
    c = _set(tmp_path)
    p = c[f"{side}_dir"] / "000000000007.png"
    p.write_bytes(GT_DAMAGE[name](p.read_bytes()))
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and err.startswith("image 7") and str(p) in err


def test_a_folder_where_a_png_should_be_gets_the_per_image_error(tmp_path: Path, monkeypatch) -> None:
    c = _set(tmp_path)
    p = c["gt_dir"] / "000000000004.png"
    p.unlink()
    p.mkdir()
    with pytest.raises((InputError, OSError)) as a:
        _score(c, True, monkeypatch, 2)
    with pytest.raises((InputError, OSError)) as b:
        _score(c, False, monkeypatch)
    assert type(a.value) is type(b.value) and str(a.value) == str(b.value)


def _status(c: dict[str, Path], k: int = 1) -> int:
    """pair_tables' status for image k of the set as it is on disk."""
    cats, pairs = load_pairs(read_truth(c["gt_json"]), c["pred_json"])
    gt_ann, pred_ann = pairs[k - 1]
    gt = parse_segments(gt_ann["segments_info"], cats, "x", gt=True)
    pred = parse_segments(pred_ann["segments_info"], cats, "x", gt=False)
    inter = np.empty((len(gt) + 2, len(pred) + 1), np.int64)
    item = (bytes(c["gt_dir"] / gt_ann["file_name"]), bytes(c["pred_dir"] / pred_ann["file_name"]),
            gt_ann.get("height", -1), gt_ann.get("width", -1), gt.ids, pred.ids, inter, False)
    return native.pixels().pair_tables([item], 2**28)[0]


@pytest.mark.parametrize("name", ["rgba", "split_idat", "data_after_iend", "rgb"])
def test_the_batch_path_counts_valid_rgb_and_rgba_pngs_itself(tmp_path: Path, name: str) -> None:
    """Not left to the per-image path (the equality tests above would pass if C counted nothing)."""
    c = _set(tmp_path, n=2)
    if name == "data_after_iend":
        p = _pred_png(c, 1)
        p.write_bytes(p.read_bytes() + b"trailing bytes")
    elif name != "rgb":
        _rewrite(c, 1, READABLE[name])
    assert _status(c) == 0


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="the COCO sample is not beside the checkout")
def test_the_batch_decoder_decodes_cocos_own_pngs_as_read_ids(tmp_path: Path) -> None:
    for png in sorted((SAMPLE / "panoptic_val2017").glob("*.png")):
        assert native.pixels().decode_ids([bytes(png)], 2**28)[0] == int(read_ids(png, "x").sum(dtype=np.uint64))


@pytest.mark.parametrize("size", [(-1, -1), (0, 96), (96.0, 128.0), (2**63, 128), ("96", "128")])
def test_an_images_entry_of_no_usable_size_gets_the_per_image_result(tmp_path: Path, monkeypatch, size) -> None:
    c = _set(tmp_path)
    gt = json.loads(c["gt_json"].read_text())
    for a in gt["annotations"]:  # no 'images' entry: the annotation's own size is read
        a["height"], a["width"] = size
    gt["images"] = []
    c["gt_json"].write_text(json.dumps(gt))
    try:
        ref: object = _score(c, False, monkeypatch)
    except Exception as e:  # noqa: BLE001 - whatever the per-image path raises, the batch path raises too
        with pytest.raises(type(e)) as got:
            _score(c, True, monkeypatch, 2)
        assert str(got.value) == str(e)
    else:
        _same(_score(c, True, monkeypatch, 2), ref)  # type: ignore[arg-type]


def test_the_pixel_limit_of_the_environment_applies_to_the_batch_path(tmp_path: Path, monkeypatch) -> None:
    c = _set(tmp_path)
    monkeypatch.setenv("PANBENCH_MAX_PIXELS", str(96 * 128 - 1))
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and "above the limit of 12287" in err
    monkeypatch.setenv("PANBENCH_MAX_PIXELS", "lots")
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and "PANBENCH_MAX_PIXELS='lots'" in err


def test_decode_ids_decodes_as_read_ids_and_leaves_the_rest(tmp_path: Path) -> None:
    """The decode floor of scripts/bench_pq.py decodes what the batch path decodes: every id, summed."""
    c = _set(tmp_path, n=3)
    _rewrite(c, 2, _palette)
    files = [_pred_png(c, k) for k in (1, 2, 3)] + [tmp_path / "missing.png"]
    sums = native.pixels().decode_ids([bytes(f) for f in files], 2**28)
    assert sums[1] is None and sums[3] is None
    for k in (0, 2):
        assert sums[k] == int(read_ids(files[k], "x").sum(dtype=np.uint64))


def _c_results(c: dict[str, Path], res_words=batch.res_words,  # noqa: ANN001
               boundary: bool = False) -> tuple[list, list, bytes]:
    """Each image's (res, n_pred) and pair_tables' status, the match in C asked for (with boundary PQ's); and its
    inputs."""
    cats, pairs = load_pairs(read_truth(c["gt_json"]), c["pred_json"])
    kept, items, inputs = [], [], []
    for pair in pairs:
        (res, n_pred), item = batch._prepare(cats, c["gt_dir"], c["pred_dir"], pair, False, boundary)
        res = np.full(res_words(len(item[10]), n_pred, None, boundary), -3, np.int64)
        items.append((*item[:12], res, *item[13:]))  # its res in place of the one _prepare sized
        kept.append((res, n_pred))
        inputs.append(item)
    return kept, inputs, native.pixels().pair_tables(items, 2**28)


def test_the_match_in_the_threads_is_table_results_field_for_field(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the numpy match and fold (``table_result`` on the numpy twins of tests/kernel_references.py, not the
    C it shares with the threads)."""
    from kernel_references import numpy_kernels

    from panbench.pq.evaluator import table_result
    from panbench.pq.matching import Segments

    numpy_kernels(monkeypatch)

    c = _set(tmp_path)
    kept, inputs, status = _c_results(c)
    assert list(status) == [0] * 12
    for (res, n_pred), item in zip(kept, inputs):
        i64 = [np.frombuffer(item[k], np.int64) for k in (4, 5, 8, 9, 11)]  # the buffers pair_tables read
        gt = Segments(i64[0], i64[2], np.frombuffer(item[10], np.bool_), i64[3])
        pred = Segments(i64[1], i64[4], np.zeros(len(i64[1]), bool), np.zeros(len(i64[1]), np.int64))
        want = table_result(item[6], gt, pred)
        assert len(want.match.tp_cats) and len(want.match.fp_cats) and len(want.match.fn_cats)
        _same_columns(batch.res_columns([(res, n_pred)]), results_to_columns([want]))
    both = batch.res_columns(kept)  # every image at once: the same as one by one
    _same_columns(both, join_columns([(1, batch.res_columns([k])) for k in kept]))
    assert both["fn_img"][-1] == len(kept) - 1


def _same_columns(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=True), k


def test_a_result_packed_as_c_writes_it_gives_its_columns(tmp_path: Path) -> None:
    """The per-image path's results (the fallbacks of a chunk) go through the same columns as C's."""
    c = _set(tmp_path, n=4)
    cats, pairs = load_pairs(read_truth(c["gt_json"]), c["pred_json"])
    results = [score._score_one(cats, c["gt_dir"], c["pred_dir"], score.Scoring(), p) for p in pairs]
    results[1].unlisted_px = np.array([7], np.int64)  # an image with unlisted ground-truth pixels
    results[2].match.fp_matched[:] = True
    _same_columns(batch.res_columns([batch.packed(r) for r in results]), results_to_columns(results))


def test_a_res_too_small_for_its_match_leaves_the_image_to_python(tmp_path: Path) -> None:
    _, _, status = _c_results(_set(tmp_path, n=2), res_words=lambda g, p, *_: RES_HEADER + p)
    assert list(status) == [1, 1]


def test_pair_tables_refuses_match_inputs_of_the_wrong_size(tmp_path: Path) -> None:
    c = _set(tmp_path, n=1)
    cats, pairs = load_pairs(read_truth(c["gt_json"]), c["pred_json"])
    item = batch._prepare(cats, c["gt_dir"], c["pred_dir"], pairs[0], False)[1]
    with pytest.raises(ValueError, match="the match needs"):
        native.pixels().pair_tables([(*item[:8], item[8][:-1], *item[9:])], 2**28)


@pytest.mark.parametrize("side", ["gt_larger", "pred_absent"])
def test_an_area_that_does_not_add_up_gets_the_per_image_error(tmp_path: Path, monkeypatch, side: str) -> None:
    c = _set(tmp_path)
    key = "gt_json" if side == "gt_larger" else "pred_json"
    d = json.loads(c[key].read_text())
    seg = d["annotations"][4]["segments_info"][0]
    if side == "gt_larger":
        seg["area"] -= 1  # the PNG holds one pixel more
    else:
        d["annotations"][4]["segments_info"].append({**seg, "id": 16777214})  # listed, in no pixel
    c[key].write_text(json.dumps(d))
    err = _error(c, True, monkeypatch)
    assert err == _error(c, False, monkeypatch) and err.startswith("image 5")
    assert ("pixels in the PNG" if side == "gt_larger" else "is absent from the PNG") in err


def test_a_res_holds_no_more_fold_cells_than_the_image_has_pixels() -> None:
    """Thousands of segments: the fold is bounded by the pixels, not by the table's cells."""
    assert batch.res_words(5000, 5000, 640 * 480) < 3 * 640 * 480 + 100_000 < batch.res_words(5000, 5000)
    assert batch.res_words(20, 30, 10**6) == batch.res_words(20, 30)  # few segments: the table is the bound


def test_res_columns_refuses_a_res_that_does_not_hold_its_header(tmp_path: Path) -> None:
    kept, _, status = _c_results(_set(tmp_path, n=2))
    assert list(status) == [0, 0]
    res, n_pred = kept[1]
    used = RES_HEADER - 1  # PB_RES_USED: the header's last entry
    for k, value in ((0, int(res[used])), (used, int(res[used]) - 1), (used, len(res) + 1), (1, -1),
                     (7, len(res) + 1)):  # rows, used, boundary PQ's rows
        bad = res.copy()
        bad[k] = value
        with pytest.raises(ValueError, match="res 1 does not hold the match its header describes"):
            native.pixels().res_columns([kept[0][0], bad], [kept[0][1], n_pred])
    with pytest.raises(ValueError, match="one n_pred per res"):
        native.pixels().res_columns([res], [])
    for n_pred in (-1, 2**63 - 1, 2**63 - 8, len(res) - 7):  # where the match would start: before or past the end
        with pytest.raises(ValueError, match="does not hold"):
            native.pixels().res_columns([res], [n_pred])
