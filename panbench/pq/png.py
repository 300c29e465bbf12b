"""Panoptic PNGs to segment ids, validated before anything is inflated: signature, header, colour type, size (a small
file cannot declare a huge image), chunk structure.  Every problem is an :class:`InputError` naming the file and the
fix.  numpy, zlib (or libdeflate), the C kernels."""

from __future__ import annotations

import os
import stat
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from panbench.errors import InputError
from panbench.pq import native
from panbench.pq.diagnosis import input_size
from panbench.pq.kernels import rgb2id, workspace
from panbench.pq.paths import EMPTY, HEAD_BYTES, content_kind, link_fix, path_kind

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The most pixels a PNG may declare (2^28: 16384 x 16384), checked before anything is inflated, so that a small file
# declaring a huge image cannot make panbench allocate gigabytes; PANBENCH_MAX_PIXELS raises (or lowers) it.
MAX_PIXELS = 2**28
# a chunk's CRC: libdeflate's (about 10x faster than zlib's on IDAT data) where it is installed
_crc32 = native.deflate().crc32 if native.deflate() is not None else zlib.crc32
# IHDR (colour type -> name, allowed bit depths); panoptic ids need 8-bit RGB, RGBA or palette
_COLOR_TYPES = {0: ("single-channel grey", (1, 2, 4, 8, 16)), 2: ("RGB", (8, 16)), 3: ("palette", (1, 2, 4, 8)),
                4: ("grey+alpha", (8, 16)), 6: ("RGBA", (8, 16))}


# opened without blocking: a pipe at a PNG's path is refused, not waited for (a regular file reads the same)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _read_png(path: Path, where: str) -> bytes:
    """The file's bytes: one open, fstat and read (``Path.read_bytes`` costs twice as much per small file); what is
    there instead of a file named (:func:`_not_a_file`)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        png = Path(path).with_suffix(".png")
        if Path(path).suffix.lower() != ".png" and png.is_file():  # the image's name given for its PNG's
            raise InputError(f"{where}: PNG {path} not found, but {png.name} is beside it: the JSON's file_name "
                             f"names the image ({Path(path).name}), not its PNG; give file_name '{png.name}'") from None
        raise _not_a_file(path, where) from None
    except OSError as e:  # a symbolic link loop, a path that cannot be read
        raise _not_a_file(path, where, e) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_a_file(path, where)
        size = st.st_size
        data = os.read(fd, size + 1)
        if len(data) == size:  # the usual case: all of it, and the file did not grow
            return data
        parts = [data]  # a short read or a growing file: read on to the end
        while part := os.read(fd, 1 << 20):
            parts.append(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def _not_a_file(path: Path, where: str, err: OSError | None = None) -> InputError:
    """The error of a PNG's path at which no regular file is: what is there (:func:`~panbench.pq.paths.path_kind`),
    that nothing is, or that it cannot be read (``err``)."""
    kind = path_kind(path)
    if err is not None and not isinstance(err, PermissionError) and os.path.isfile(path):  # a file is there: the
        # open failed for another reason (too many open files, an I/O error)
        return InputError(f"{where}: PNG {path} cannot be read ({err.strerror or err}); check the file and the "
                          "machine (open files, disk)")
    if kind is None:
        return InputError(f"{where}: PNG {path} not found; the JSON's file_name must name a file of that folder")
    if isinstance(err, PermissionError) or "cannot be read" in kind:
        return InputError(f"{where}: PNG {path} cannot be read ({err.strerror if err else kind}); check its "
                          "permissions")
    fix = link_fix(kind, "PNG file") or "the JSON's file_name must name the image's PNG file in the folder of PNGs"
    return InputError(f"{where}: PNG {path} is {kind}, not a PNG file; {fix}")


def _no_signature(data: bytes, path: Path, where: str) -> InputError:
    """The error of a PNG without PNG's signature: what it is by its first bytes where they say
    (:func:`~panbench.pq.paths.content_kind`), else truncated or corrupt."""
    kind = content_kind(data[:HEAD_BYTES])
    if kind == EMPTY:
        return InputError(f"{where}: PNG {path} is {kind}; re-export it (a file of 0 bytes holds no image)")
    if kind is None:
        return InputError(f"{where}: PNG {path} is truncated or corrupt (no PNG signature); re-export it")
    if kind == "a JPEG image":  # lossy: its colours are no longer the ids
        fix = ("write the ids as an 8-bit RGB PNG (id = R + 256G + 256^2B) again: JPEG's lossy compression changes "
               "them, so converting this file does not recover them")
    elif kind.endswith(" image"):
        fix = ("convert it to an 8-bit RGB PNG (id = R + 256G + 256^2B) where it is stored lossless (its colours "
               "then kept), else write the ids as one again")
    else:
        fix = "the JSON's file_name must name the image's PNG file"
    return InputError(f"{where}: PNG {path} is {kind}, not a PNG (no PNG signature); {fix}")


class PngHeader(NamedTuple):
    """The IHDR fields that panbench uses."""

    width: int
    height: int
    depth: int
    color: int
    interlace: int


def max_pixels() -> int:
    """:data:`MAX_PIXELS`, or the value of PANBENCH_MAX_PIXELS when set."""
    if (env := os.environ.get("PANBENCH_MAX_PIXELS")) is None:
        return MAX_PIXELS
    if not env.isdigit() or int(env) < 1:
        raise InputError(f"PANBENCH_MAX_PIXELS={env!r} is not a positive integer; unset it or set e.g. {MAX_PIXELS}")
    return int(env)


def png_header(data: bytes, path: Path, where: str) -> PngHeader:
    """The IHDR chunk (the first chunk, 13 bytes, CRC checked) of the PNG in ``data``."""
    corrupt = f"{where}: PNG {path} is truncated or corrupt"
    if data[:8] != PNG_SIGNATURE:
        raise _no_signature(data, path, where)
    if len(data) < 16:
        raise InputError(f"{corrupt} (ends before IHDR); re-export it")
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR":
        raise InputError(f"{corrupt} (first chunk is {kind.decode('latin-1')}, not IHDR); re-export it")
    if length != 13:
        raise InputError(f"{corrupt} (IHDR chunk is {length} bytes, 13 expected); re-export it")
    if len(data) < 33:
        raise InputError(f"{corrupt} (IHDR chunk cut short); re-export it")
    if zlib.crc32(data[12:29]) != struct.unpack_from(">I", data, 29)[0]:
        raise InputError(f"{corrupt} (CRC error in IHDR); re-export it")
    w, h, depth, color, method, filt, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    kind_ok = color in _COLOR_TYPES and depth in _COLOR_TYPES[color][1]
    if not (0 < w < 2**31 and 0 < h < 2**31) or not kind_ok or method or filt or interlace > 1:
        raise InputError(f"{corrupt} (invalid IHDR: {w}x{h}, bit depth {depth}, colour type {color}); re-export it")
    return PngHeader(w, h, depth, color, interlace)


# what a PNG of each role is checked against, and the fix when its size differs
_SIZE_RULE = {"prediction": ("its ground truth is", "predict at the original image size"),
              "ground truth": ("the ground-truth JSON's 'images' entry says",
                               "re-download the annotations (or correct that entry)")}


def check_png(data: bytes, path: Path, where: str, shape: tuple[int, ...] | None = None,
              role: str = "prediction") -> PngHeader:
    """The PNG's header, checked before anything is inflated: the declared size against ``shape`` (that of the PNG
    of ``role``) and :func:`max_pixels`, and the kind (8-bit RGB, RGBA or palette: the others carry no ids)."""
    hdr = png_header(data, path, where)
    w, h = hdr.width, hdr.height
    if shape is not None and (h, w) != tuple(shape[:2]):
        against, fix = _SIZE_RULE[role]
        found = input_size((h, w), (shape[0], shape[1])) if role == "prediction" else None
        raise InputError(f"{where}: {role} {path} is {w}x{h} but {against} {shape[1]}x{shape[0]}; "
                         f"{found.message if found else fix}")
    limit = max_pixels()
    if w * h > limit:
        raise InputError(f"{where}: PNG {path} declares {w}x{h} = {w * h} pixels, above the limit of {limit}; "
                         "re-export it at the image size (or raise PANBENCH_MAX_PIXELS for larger images)")
    if hdr.color != 3 and (hdr.depth != 8 or hdr.color not in (2, 6)):
        name = ("16-bit " if hdr.depth == 16 else "") + _COLOR_TYPES[hdr.color][0]
        raise InputError(f"{where}: PNG {path} is {name}; panoptic PNGs are 8-bit RGB, RGBA or palette "
                         "(id = R + 256G + 256^2B): re-export it as 8-bit RGB")
    return hdr


def read_ids(path: Path, where: str, slot: str | None = None, shape: tuple[int, ...] | None = None,
             role: str = "prediction") -> np.ndarray:
    """Segment ids ``R + 256 G + 256^2 B`` (HxW uint32) of a panoptic PNG, its header (:func:`check_png`) and chunks
    (:func:`png_idat`) checked first.  8-bit RGB(A) PNGs are unfiltered straight to ids in C, the
    others decoded (:func:`_decode`).  With ``slot``: in :func:`~panbench.pq.kernels.workspace` ``slot``'s buffer."""
    data = _read_png(path, where)
    hdr = check_png(data, path, where, shape, role)
    idat = png_idat(data, path, where)
    if hdr.depth == 8 and hdr.color in (2, 6) and not hdr.interlace:
        raw, w, h, ch = png_scanlines(idat, path, where, hdr)  # on both paths (libspng ignores extra data)
        out = workspace(slot, (h, w), np.uint32)
        try:
            native.pixels().unfilter_ids(raw, w, h, ch, out)
        except ValueError as e:
            raise InputError(f"{where}: PNG {path} is truncated or corrupt ({e}); re-export it") from e
        return out
    return rgb2id(_decode(data, path, where), slot)


def png_idat(data: bytes, path: Path, where: str) -> bytes | memoryview:
    """The zlib stream of the PNG (its IDAT chunks joined), the chunk structure checked: IDAT CRCs, one IHDR, an
    IEND at the end."""
    corrupt = f"{where}: PNG {path} is truncated or corrupt"
    mv = memoryview(data)
    pos, end, idat = 33, len(data), []  # after the signature and IHDR (checked by png_header)
    while True:
        if pos + 12 > end:
            raise InputError(f"{corrupt} (ends before IEND); re-export it")
        length, kind = struct.unpack_from(">I4s", data, pos)
        stop = pos + 8 + length
        if stop + 4 > end:
            raise InputError(f"{corrupt} ({kind.decode('latin-1')} chunk cut short); re-export it")
        if kind == b"IDAT":
            if _crc32(mv[pos + 4 : stop]) != struct.unpack_from(">I", data, stop)[0]:
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


def png_scanlines(idat: bytes | memoryview, path: Path, where: str,
                  hdr: PngHeader) -> tuple[bytes | bytearray, int, int, int]:
    """The inflated, still filtered scanlines of an 8-bit RGB(A) non-interlaced PNG with its width, height and
    channels; the zlib checksum verified, nothing inflated beyond the size IHDR declares."""
    corrupt = f"{where}: PNG {path} is truncated or corrupt"
    w, h, ch = hdr.width, hdr.height, 3 if hdr.color == 2 else 4
    size = h * (w * ch + 1)
    try:
        raw = native.deflate().zlib_decompress(idat, size) if native.deflate() is not None else _inflate(idat, size)
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
    """An RGB(A) or palette PNG as an HxWx3 uint8 array (pyspng, else PIL), its header checked first."""
    data = _read_png(path, where)
    check_png(data, path, where)
    png_idat(data, path, where)
    return _decode(data, path, where)


def _decode(data: bytes, path: Path, where: str) -> np.ndarray:
    try:
        import pyspng

        arr = pyspng.load(data)
    except ImportError:  # pragma: no cover - pyspng is installed by make setup
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
    except Exception as e:  # libspng reports truncated and corrupt files as errors
        raise InputError(f"{where}: PNG {path} is truncated or corrupt ({e}); re-export it") from e
    if arr.ndim == 2:
        raise InputError(f"{where}: PNG {path} is single-channel; panoptic PNGs are RGB (id = R + 256G + 256^2B)")
    return arr[..., :3]
