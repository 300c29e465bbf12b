"""Reading the COCO panoptic format, validated: every problem is an :class:`InputError` whose
one-line message names the file or image and the fix.

Only numpy and a PNG decoder are imported here, so ``panbench score`` starts fast.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from panbench.errors import InputError
from panbench.pq.matching import CategoryTable, Segments

try:  # the C loops (setup.py builds them); without them the numpy path gives the same numbers
    if os.environ.get("PANBENCH_NO_NATIVE") == "1":  # force the numpy path (benchmarks, debugging)
        raise ImportError("PANBENCH_NO_NATIVE=1")
    from panbench.pq import _native
except ImportError:  # pragma: no cover - exercised by tests that hide the module
    _native = None
try:  # libdeflate: whole-buffer inflate, ~10x faster than zlib on panoptic PNGs
    import deflate as _deflate
except ImportError:  # pragma: no cover
    _deflate = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The most pixels a PNG may declare (2^28: 16384 x 16384), checked before anything is inflated, so
# that a small file declaring a huge image cannot make panbench allocate gigabytes.  The
# environment variable PANBENCH_MAX_PIXELS raises (or lowers) it.
MAX_PIXELS = 2**28
# IHDR (colour type -> name, allowed bit depths); panoptic ids need 8-bit RGB, RGBA or palette
_COLOR_TYPES = {0: ("single-channel grey", (1, 2, 4, 8, 16)), 2: ("RGB", (8, 16)), 3: ("palette", (1, 2, 4, 8)),
                4: ("grey+alpha", (8, 16)), 6: ("RGBA", (8, 16))}

MAX_ID = 256**3
_SENTINEL = np.uint16(0xFFFF)
_LUT: np.ndarray | None = None
_BUFFERS: dict[tuple[str, tuple[int, ...], str], np.ndarray] = {}


def workspace(slot: str | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A reusable per-process array for ``slot`` (a fresh one when ``slot`` is None).

    Reusing image-sized buffers avoids a page fault per 4 KiB on every fresh allocation, which
    otherwise costs as much as the arithmetic.  Scoring is single-threaded per process.
    """
    if slot is None:
        return np.empty(shape, dtype)
    key = (slot, tuple(shape), np.dtype(dtype).str)
    buf = _BUFFERS.get(key)
    if buf is None:
        if len(_BUFFERS) > 64:
            _BUFFERS.clear()
        buf = _BUFFERS[key] = np.empty(shape, dtype)
    return buf


def read_json(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """Load a JSON object, or raise an InputError that names the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: {what} not found; check the path")
    try:
        with open(p, "rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: {what} is not valid JSON ({e}); re-export or re-download it") from e
    if not isinstance(data, dict):
        raise InputError(f"{p}: {what} must be a JSON object with an 'annotations' list")
    return data


def _field(obj: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{where}: missing field '{key}'; every entry needs it (COCO panoptic format)")
    val = obj[key]
    if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
        raise InputError(f"{where}: field '{key}' has the wrong type ({type(val).__name__})")
    return val


def parse_categories(data: dict[str, Any], path: str | os.PathLike[str]) -> CategoryTable:
    """The ``categories`` list of a ground-truth JSON as a :class:`CategoryTable`."""
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise InputError(f"{path}: missing field 'categories'; use the ground-truth panoptic JSON")
    seen: set[int] = set()
    for c in cats:
        cid = _field(c, "id", f"{path}: category", int)
        _field(c, "isthing", f"{path}: category {cid}", int)
        if cid in seen:
            raise InputError(f"{path}: duplicate category id {cid}; category ids must be unique")
        seen.add(cid)
    return CategoryTable.from_coco(cats)


def _segment_ok(s: Any, gt: bool) -> bool:
    return (
        type(s) is dict
        and type(s.get("id")) is int
        and type(s.get("category_id")) is int
        and (not gt or type(s.get("area")) is int)
    )


def parse_annotations(data: dict[str, Any], path: str | os.PathLike[str], gt: bool) -> dict[int, dict[str, Any]]:
    """``annotations`` keyed by image id, with every field scoring needs checked."""
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise InputError(f"{path}: missing field 'annotations'; expected the COCO panoptic format")
    out: dict[int, dict[str, Any]] = {}
    for ann in anns:
        image_id = _field(ann, "image_id", f"{path}: annotation", (int, str))
        where = f"{path}: image {image_id}"
        fname = _field(ann, "file_name", where, str)
        if not fname:
            raise InputError(f"{where}: empty 'file_name'")
        segs = _field(ann, "segments_info", where, list)
        for s in segs:
            if not _segment_ok(s, gt):  # the fast check; _field then names what is wrong
                _field(s, "id", f"{where} segment", int)
                _field(s, "category_id", f"{where} segment {s['id']}", int)
                if gt:
                    _field(s, "area", f"{where} segment {s['id']}", int)
        if image_id in out:
            raise InputError(f"{where}: duplicate image id in 'annotations'; each image must appear once")
        out[image_id] = ann
    return out


def safe_join(folder: str | os.PathLike[str], file_name: str, where: str) -> Path:
    """``folder/file_name``, refusing names that point outside ``folder`` (absolute, or climbing
    out with ``..``).  The check is on the name, so it costs no system call per image; a symbolic
    link inside the folder is followed like any file."""
    norm = os.path.normpath(file_name)
    if os.path.isabs(file_name) or norm in (".", "..") or norm.startswith(".." + os.sep):
        base = Path(folder).resolve()
        raise InputError(f"{where}: file name '{file_name}' points outside {base}; use a plain relative name")
    return Path(os.path.join(folder, norm))


def _read_png(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{where}: PNG {path} not found; check --pred-dir/--gt-dir and file_name") from None


class PngHeader(NamedTuple):
    """The IHDR fields that panbench uses."""

    width: int
    height: int
    depth: int
    color: int
    interlace: int


def max_pixels() -> int:
    """:data:`MAX_PIXELS`, or the value of PANBENCH_MAX_PIXELS when set."""
    env = os.environ.get("PANBENCH_MAX_PIXELS")
    if env is None:
        return MAX_PIXELS
    if not env.isdigit() or int(env) < 1:
        raise InputError(f"PANBENCH_MAX_PIXELS={env!r} is not a positive integer; unset it or set e.g. {MAX_PIXELS}")
    return int(env)


def png_header(data: bytes, path: Path, where: str) -> PngHeader:
    """The IHDR chunk (the first chunk, 13 bytes, CRC checked) of the PNG in ``data``."""
    corrupt = f"{where}: PNG {path} is truncated or corrupt"
    if data[:8] != PNG_SIGNATURE:
        raise InputError(f"{corrupt} (no PNG signature); re-export it")
    if len(data) < 16:
        raise InputError(f"{corrupt} (ends before IHDR); re-export it")
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR":
        raise InputError(f"{corrupt} (first chunk is {kind!r}, not IHDR); re-export it")
    if length != 13:
        raise InputError(f"{corrupt} (IHDR chunk is {length} bytes, 13 expected); re-export it")
    if len(data) < 33:
        raise InputError(f"{corrupt} (IHDR chunk cut short); re-export it")
    if zlib.crc32(data[12:29]) != struct.unpack_from(">I", data, 29)[0]:
        raise InputError(f"{corrupt} (CRC error in IHDR); re-export it")
    w, h, depth, color, method, filt, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    kind_ok = color in _COLOR_TYPES and depth in _COLOR_TYPES[color][1]
    if not (0 < w < 2**31 and 0 < h < 2**31) or not kind_ok or method or filt or interlace > 1:
        raise InputError(
            f"{corrupt} (invalid IHDR: {w}x{h}, bit depth {depth}, colour type {color}); re-export it"
        )
    return PngHeader(w, h, depth, color, interlace)


def check_png(data: bytes, path: Path, where: str, shape: tuple[int, ...] | None = None) -> PngHeader:
    """The PNG's header, checked before anything is inflated: the declared size against
    ``shape`` (the ground truth's height and width, for a prediction) and :func:`max_pixels`, and
    the kind (8-bit RGB, RGBA or palette; grey, grey+alpha and 16-bit carry no panoptic ids)."""
    hdr = png_header(data, path, where)
    w, h = hdr.width, hdr.height
    if shape is not None and (h, w) != tuple(shape[:2]):
        raise InputError(
            f"{where}: prediction {path} is {w}x{h} but the image is {shape[1]}x{shape[0]}; "
            "predict at the original image size"
        )
    limit = max_pixels()
    if w * h > limit:
        raise InputError(
            f"{where}: PNG {path} declares {w}x{h} = {w * h} pixels, above the limit of {limit}; "
            "re-export it at the image size (or raise PANBENCH_MAX_PIXELS for larger images)"
        )
    if hdr.color != 3 and (hdr.depth != 8 or hdr.color not in (2, 6)):
        name = ("16-bit " if hdr.depth == 16 else "") + _COLOR_TYPES[hdr.color][0]
        raise InputError(
            f"{where}: PNG {path} is {name}; panoptic PNGs are 8-bit RGB, RGBA or palette "
            "(id = R + 256G + 256^2B): re-export it as 8-bit RGB"
        )
    return hdr


def read_ids(path: Path, where: str, slot: str | None = None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Segment ids ``R + 256 G + 256^2 B`` (HxW uint32) of a panoptic PNG.

    The header is checked first (:func:`check_png`; ``shape`` is the size the PNG must have), then
    the chunks (:func:`png_idat`), on every path.  8-bit RGB/RGBA PNGs take the fast path
    (libdeflate inflate, C unfilter straight to ids); palette or interlaced PNGs, or a missing C
    extension, go through the general decoder (:func:`decode_png`).
    With ``slot`` the result lives in a reused buffer, valid until the next call with that slot.
    """
    data = _read_png(path, where)
    hdr = check_png(data, path, where, shape)
    idat = png_idat(data, path, where)
    if hdr.depth == 8 and hdr.color in (2, 6) and not hdr.interlace:
        if _native is not None:
            return _fast_ids(idat, hdr, path, where, slot)
        png_scanlines(idat, path, where, hdr)  # the same size check as the fast path (libspng ignores extra data)
    return rgb2id(_decode(data, path, where), slot)


def _fast_ids(idat: bytes | memoryview, hdr: PngHeader, path: Path, where: str, slot: str | None) -> np.ndarray:
    """The fast path of :func:`read_ids` (8-bit RGB(A), non-interlaced)."""
    raw, w, h, ch = png_scanlines(idat, path, where, hdr)
    out = workspace(slot, (h, w), np.uint32)
    try:
        _native.unfilter_ids(raw, w, h, ch, out)
    except ValueError as e:
        raise InputError(f"{where}: PNG {path} is truncated or corrupt ({e}); re-export it") from e
    return out


def png_idat(data: bytes, path: Path, where: str) -> bytes | memoryview:
    """The zlib stream of the PNG (its IDAT chunks joined), with the chunk structure checked: IDAT
    CRCs, one IHDR only, an IEND at the end.  Damage is an InputError naming the file."""
    corrupt = f"{where}: PNG {path} is truncated or corrupt"
    mv = memoryview(data)
    pos, end, idat = 33, len(data), []  # after the signature and IHDR (checked by png_header)
    while True:
        if pos + 12 > end:
            raise InputError(f"{corrupt} (ends before IEND); re-export it")
        length, kind = struct.unpack_from(">I4s", data, pos)
        stop = pos + 8 + length
        if stop + 4 > end:
            raise InputError(f"{corrupt} ({kind!r} chunk cut short); re-export it")
        if kind == b"IDAT":
            if zlib.crc32(mv[pos + 4 : stop]) != struct.unpack_from(">I", data, stop)[0]:
                raise InputError(f"{corrupt} (CRC error in IDAT); re-export it")
            idat.append(mv[pos + 8 : stop])
        elif kind == b"IHDR":
            raise InputError(f"{corrupt} (a second IHDR chunk); re-export it")
        elif kind == b"IEND":
            break
        pos = stop + 4
    if not idat:
        raise InputError(f"{corrupt} (no IDAT chunk); re-export it")
    return idat[0] if len(idat) == 1 else b"".join(idat)


def png_scanlines(idat: bytes | memoryview, path: Path, where: str, hdr: PngHeader) -> tuple[bytes, int, int, int]:
    """The inflated, still filtered scanlines of an 8-bit RGB(A) non-interlaced PNG (``idat``
    from :func:`png_idat`, ``hdr`` from :func:`check_png`) with its width, height and channels.
    The zlib checksum is verified and nothing inflates beyond the size that IHDR declares."""
    corrupt = f"{where}: PNG {path} is truncated or corrupt"
    w, h, ch = hdr.width, hdr.height, 3 if hdr.color == 2 else 4
    size = h * (w * ch + 1)
    try:
        raw = _deflate.zlib_decompress(idat, size) if _deflate is not None else _inflate(idat, size)
    except Exception as e:
        raise InputError(f"{corrupt} (image data does not inflate: {e}); re-export it") from e
    if len(raw) != size:
        raise InputError(f"{corrupt} (image data is {len(raw)} bytes, {size} expected); re-export it")
    return raw, w, h, ch


def _inflate(z: bytes | memoryview, size: int) -> bytes:
    """A zlib stream that must inflate to ``size`` bytes, never inflating more than ``size + 1``."""
    d = zlib.decompressobj()
    raw = d.decompress(z, size + 1)
    if not d.eof and len(raw) <= size:
        raise ValueError("the zlib stream is cut short")
    return raw


def decode_png(path: Path, where: str) -> np.ndarray:
    """Decode an RGB(A) or palette PNG into an HxWx3 uint8 array (pyspng, else PIL); the
    header is checked first (:func:`check_png`)."""
    data = _read_png(path, where)
    check_png(data, path, where)
    png_idat(data, path, where)
    return _decode(data, path, where)


def _decode(data: bytes, path: Path, where: str) -> np.ndarray:
    try:
        import pyspng

        arr = pyspng.load(data)
    except ImportError:  # pragma: no cover - pyspng is installed by make setup
        arr = _decode_fallback(data)
    except Exception as e:  # libspng reports truncated and corrupt files as errors
        raise InputError(f"{where}: PNG {path} is truncated or corrupt ({e}); re-export it") from e
    if arr.ndim == 2:
        raise InputError(f"{where}: PNG {path} is single-channel; panoptic PNGs are RGB (id = R + 256G + 256^2B)")
    return arr[..., :3]


def _decode_fallback(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def rgb2id(rgb: np.ndarray, slot: str | None = None) -> np.ndarray:
    """Segment ids ``R + 256 G + 256^2 B`` as uint32 (one SIMD pass: RGBA viewed as uint32).

    With ``slot`` the result lives in a reused buffer, valid until the next call with that slot.
    """
    import cv2

    if cv2.getNumThreads() != 1:  # OpenCV's thread pool spins after each call and starves numpy
        cv2.setNumThreads(1)
    h, w = rgb.shape[:2]
    rgba = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2RGBA, dst=workspace(slot, (h, w, 4), np.uint8))
    ids = rgba.view("<u4")[..., 0]
    ids &= 0x00FFFFFF
    return ids


def _lut() -> np.ndarray:
    global _LUT
    if _LUT is None:
        _LUT = np.full(MAX_ID, _SENTINEL, np.uint16)
    return _LUT


def index_map(ids: np.ndarray, seg_ids: np.ndarray, step: int = 1, slot: str | None = None) -> np.ndarray:
    """Map segment ids to ``k * step`` for the k-th segment (k = 1..n; VOID stays 0, ids in no
    segment become 0xFFFF), through a reused 2^24-entry table.  ``(n + 1) * step`` must be < 0xFFFF."""
    lut = _lut()
    lut[0] = 0
    lut[seg_ids] = np.arange(1, len(seg_ids) + 1, dtype=np.uint16) * np.uint16(step)
    try:
        return np.take(lut, ids, out=workspace(slot, ids.shape, np.uint16))
    finally:
        lut[seg_ids] = _SENTINEL
        lut[0] = _SENTINEL


def _int64_in(values: list[int], lo: int, hi: int) -> tuple[np.ndarray, int | None]:
    """``values`` as int64 and the position of the first one outside ``lo..hi-1`` (None if all fit)."""
    try:
        arr = np.array(values, np.int64) if values else np.zeros(0, np.int64)
        bad = (arr < lo) | (arr >= hi)
    except OverflowError:  # beyond int64: certainly out of range
        arr, bad = np.zeros(len(values), np.int64), np.array([not lo <= v < hi for v in values])
    return arr, (int(np.argmax(bad)) if bad.any() else None)


def parse_segments(
    segments_info: list[dict[str, Any]], cats: CategoryTable, where: str, gt: bool
) -> Segments:
    """``segments_info`` as arrays; checks ids (unique, 1..2^24-1) and category ids."""
    n = len(segments_info)
    if n >= int(_SENTINEL):
        raise InputError(f"{where}: {n} segments; at most 65534 per image are supported")
    index = cats.index
    ids_list = [s["id"] for s in segments_info]
    cat_list = [index.get(s["category_id"], -1) for s in segments_info]
    ids, bad = _int64_in(ids_list, 1, MAX_ID)
    if bad is not None:
        raise InputError(f"{where}: segment id {ids_list[bad]} is outside 1..16777215 (R + 256G + 256^2B, 0 is VOID)")
    cat_idx = np.array(cat_list, np.int64) if n else np.zeros(0, np.int64)
    areas = np.zeros(n, np.int64)
    if gt:
        area_list = [s["area"] for s in segments_info]
        areas, bad = _int64_in(area_list, 0, 2**62)
        if bad is not None:
            raise InputError(f"{where}: segment {ids_list[bad]} has area {area_list[bad]}; areas are pixel counts")
    if len(set(ids_list)) != n:
        u, c = np.unique(ids, return_counts=True)
        raise InputError(f"{where}: duplicate segment id {int(u[c > 1][0])} in segments_info; ids must be unique")
    if n and cat_idx.min() < 0:
        s = segments_info[int(np.argmax(cat_idx < 0))]
        raise InputError(
            f"{where}: segment {s['id']} has unknown category_id {s['category_id']}; "
            "use the category ids of the ground-truth JSON"
        )
    iscrowd = np.array([s.get("iscrowd", 0) == 1 for s in segments_info], bool) if n else np.zeros(0, bool)
    return Segments(ids, cat_idx, iscrowd, areas)


def intersections(gt_index: np.ndarray, n_gt: int, pred_index: np.ndarray, n_pred: int, gt_step: int = 1) -> np.ndarray:
    """Pixel counts of (ground truth, prediction) index pairs, shape ``(n_gt + 2, n_pred + 1)``.

    ``gt_index`` holds ``g * gt_step`` for g in 0 (VOID), 1..n_gt; with ``gt_step == n_pred + 1``
    (the fast path) the pair index is a plain uint16 sum.
    """
    cols = n_pred + 1
    if gt_step == cols:
        flat = np.add(gt_index.ravel(), pred_index.ravel(), out=workspace("pairs", (gt_index.size,), np.intp))
    else:
        flat = gt_index.ravel().astype(np.intp) * cols + pred_index.ravel()
    return np.bincount(flat, minlength=(n_gt + 2) * cols)[: (n_gt + 2) * cols].reshape(n_gt + 2, cols)
