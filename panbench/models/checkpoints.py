"""Checkpoints: download with progress and resume, sha256 verification, safe loading.  The cache is torch hub's
``checkpoints`` folder (mmengine's too); docs/checkpoints.md says which digest each file is checked against."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any, TypeVar

from panbench.downloads import download, sha256_file
from panbench.errors import PanbenchError
from panbench.locks import exclusive

# The zoo's published names: <config stem>_<YYYYMMDD>_<HHMMSS>-<first 8 hex of sha256>.pth
HASH_IN_NAME = re.compile(r"_(?:19|20)\d{6}_\d{6}-([0-9a-f]{8})\.pth$")
_T = TypeVar("_T")
MANIFEST = "MANIFEST.json"  # beside committed weights: {"<model>": {"file": ..., "sha256": ...}}


def cache_dir() -> Path:
    """Where checkpoints live (``$TORCH_HOME/hub/checkpoints``, shared with mmengine)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME",
                                                                          os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def expected_prefix(path_or_url: str) -> str | None:
    """The sha256 prefix a zoo file name carries, if any (none without the zoo's date and time stamp)."""
    m = HASH_IN_NAME.search(path_or_url.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def expected_digest(path: Path) -> str | None:
    """What ``path`` must hash to: its sha256 in a ``MANIFEST.json`` beside it, else a zoo name's prefix, else None."""
    path = Path(path)
    manifest = path.parent / MANIFEST
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text())
        except (OSError, ValueError) as e:
            raise PanbenchError(f"{manifest}: not readable JSON ({e}); restore it from git") from e
        for entry in entries.values() if isinstance(entries, dict) else []:
            if isinstance(entry, dict) and entry.get("file") == path.name and entry.get("sha256"):
                return str(entry["sha256"])
    return expected_prefix(path.name)


def verify(path: Path, prefix: str | None) -> str:
    """Return the sha256 of ``path``; refuse it when it does not start with ``prefix``."""
    digest = sha256_file(path)
    if prefix and not digest.startswith(prefix):
        shown = prefix if len(prefix) <= 16 else prefix[:16] + "..."
        raise PanbenchError(f"{path}: sha256 {digest[:12]}... does not match the expected {shown}; the file is "
                            "corrupt or truncated: delete it and run again to re-download")
    return digest


def fetch(url: str, prefix: str | None = None, any_rank: Callable[[bool], bool] | None = None) -> tuple[Path, str]:
    """The cached checkpoint for ``url`` (downloaded if absent: :func:`on_local_rank0`) and its verified sha256."""
    dest = cache_dir() / url.rsplit("/", 1)[-1]
    prefix = prefix or expected_prefix(url)

    def get() -> None:
        if not dest.exists():  # one download at a time (an hour's wait at most)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with exclusive(dest.with_suffix(dest.suffix + ".lock"), 3600.0, f"downloading {dest.name}"):
                if not dest.exists():  # another run may have finished it while this one waited
                    print(f"downloading {url}", file=sys.stderr)
                    download(url, dest, instead=f"download it elsewhere and put it at {dest} (checked against "
                             f"its sha256 prefix {prefix}), or pass --checkpoint PATH for this one model")

    on_local_rank0(get, any_rank, f"{url}: the download on local rank 0 failed (its message is in its log); "
                   "fix that and rerun, or pass --checkpoint PATH")
    if not dest.is_file():
        raise PanbenchError(f"{dest}: not found after local rank 0's download; if the nodes share this folder, "
                            "download the checkpoint once and pass --checkpoint PATH")
    return dest, verify(dest, prefix)


def on_local_rank0(download: Callable[[], _T], any_rank: Callable[[bool], bool] | None, failed: str) -> _T | None:
    """``download()`` on local rank 0 of each node only; under torchrun the others stop with ``failed`` if it failed."""
    error: PanbenchError | None = None
    result = None
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        try:
            result = download()
        except PanbenchError as e:
            error = e
    if any_rank is not None and any_rank(error is not None) and error is None:
        raise PanbenchError(failed)
    if error is not None:
        raise error
    return result


def _numpy_safe_globals() -> list[Any]:
    """numpy array/scalar reconstruction: plain data that zoo checkpoints carry in their meta."""
    import numpy as np

    out: list[Any] = [np.ndarray, np.dtype]
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        with suppress(ImportError, AttributeError):
            m = __import__(mod, fromlist=["_reconstruct", "scalar"])
            out += [m._reconstruct, m.scalar]
            break
    out += [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                                        "bool", "str", "bytes")]
    return out


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since torch 1.6
PICKLE_MAGIC = 0x80  # the legacy format (mmdet's publish_model writes it): a pickle, protocol >= 2


def load_checkpoint(path: Path, trust: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state_dict, meta)`` loaded with ``weights_only=True``; full unpickling only with ``trust``."""
    import pickle

    import torch

    if not Path(path).is_file():
        raise PanbenchError(f"{path}: checkpoint not found; check --checkpoint")
    with open(path, "rb") as f:  # neither of torch.save's formats: refused before anything unpickles it
        head = f.read(4)
    if head != ZIP_MAGIC and not (len(head) >= 2 and head[0] == PICKLE_MAGIC and 2 <= head[1] <= 5):
        what = "is empty" if not head else f"starts with {head!r}, neither a zip archive nor a pickle"
        raise PanbenchError(f"{path}: not a PyTorch checkpoint (the file {what}); pass the .pth file that "
                            "torch.save or the model zoo wrote")
    try:
        with nullcontext() if trust else torch.serialization.safe_globals(_numpy_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:200]
        if trust:
            raise PanbenchError(f"{path}: cannot be unpickled ({first}); the file is not a torch checkpoint") from e
        raise PanbenchError(f"{path}: refused by torch.load(weights_only=True): it holds pickled objects beyond "
                            f"tensors ({first}); if you trust its source, pass --trust-checkpoint to load it with full "
                            "unpickling") from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise PanbenchError(f"{path}: not a readable checkpoint ({msg}); the file is truncated or corrupt") from e
    meta: dict[str, Any] = {}
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        meta = ckpt.get("meta") or {}
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict):
        raise PanbenchError(f"{path}: holds a {type(ckpt).__name__}, not a state_dict; save model.state_dict()")
    return ckpt, meta if isinstance(meta, dict) else {}
