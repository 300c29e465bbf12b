"""What a path is, named for the one-line error of a reader that finds there something other than what it reads: a
folder, an empty file, an image of another format or a JSON file (by its first bytes), a symbolic link that loops or
dangles, a device, a pipe, a socket.  :func:`path_kind` asks the file system, :func:`content_kind` reads a file's
first bytes; :func:`not_a_folder` is the folders' check.  The standard library and panbench's errors only."""

from __future__ import annotations

import errno
import os
import stat

from panbench.errors import InputError

# (offset, bytes) that start a file of a format, the formats a panoptic PNG or a JSON is mistaken for; WebP is a RIFF
# file whose form type (bytes 8-11) is WEBP
SIGNATURES: tuple[tuple[tuple[tuple[int, bytes], ...], str], ...] = (
    (((0, b"\x89PNG\r\n\x1a\n"),), "a PNG image"),
    (((0, b"\xff\xd8\xff"),), "a JPEG image"),
    (((0, b"GIF87a"),), "a GIF image"),
    (((0, b"GIF89a"),), "a GIF image"),
    (((0, b"II*\x00"),), "a TIFF image"),
    (((0, b"MM\x00*"),), "a TIFF image"),
    (((0, b"RIFF"), (8, b"WEBP")), "a WebP image"),
    (((0, b"BM"),), "a BMP image"),
    (((0, b"PK\x03\x04"),), "a zip archive"),
    (((0, b"\x1f\x8b"),), "a gzip file"),
)
HEAD_BYTES = 16  # the bytes content_kind reads
EMPTY = "an empty file (0 bytes)"
LOOP = "a symbolic link loop"


def content_kind(head: bytes) -> str | None:
    """What a file starting with ``head`` (its first :data:`HEAD_BYTES` bytes, or all of a shorter file) is: one of
    :data:`SIGNATURES`, JSON text (``{`` or ``[`` first, after white space) or :data:`EMPTY`; None where none fits."""
    if not head:
        return EMPTY
    for marks, name in SIGNATURES:
        if all(head[at:at + len(magic)] == magic for at, magic in marks):
            return name
    return "a JSON file" if head.lstrip()[:1] in (b"{", b"[") else None


def path_kind(path: str | os.PathLike[str]) -> str | None:
    """What is at ``path``: "a folder", a regular file as :func:`content_kind` names it (else "a file"), "a device",
    "a pipe", "a socket", :data:`LOOP`, "a dangling symbolic link (to T)" or "a path that cannot be read (why)";
    None where nothing is (not found)."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return LOOP
        if os.path.islink(path):
            return f"a dangling symbolic link (to {os.readlink(path)}, which does not exist)"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        return f"a path that cannot be read ({e.strerror or e})"
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as e:
        return f"a file that cannot be read ({e.strerror or e})"
    return content_kind(head) or "a file"


def link_fix(kind: str, what: str) -> str | None:
    """The fix of a symbolic link at the path of a ``what`` (a loop or one that dangles); None for any other kind."""
    if kind == LOOP or kind.startswith("a dangling symbolic link"):
        return f"point the link at the {what} (or put the {what} itself there)"
    return None


def not_a_folder(path: str | os.PathLike[str], what: str, fix: str, missing: str | None = None) -> InputError | None:
    """None where ``path`` is a folder (or a link to one), else the one-line error naming what it is instead:
    ``"<path>: <what> is <kind>, not a folder; <fix>"``, or where nothing is ``missing`` (default
    ``"<path>: <what> not found; <fix>"``)."""
    if os.path.isdir(path):
        return None
    if (kind := path_kind(path)) is None:
        return InputError(missing or f"{path}: {what} not found; {fix}")
    return InputError(f"{path}: {what} is {kind}, not a folder; {fix}")
