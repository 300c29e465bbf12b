"""Where a Hugging Face model comes from: a local directory or a hub snapshot (downloaded into
huggingface_hub's cache), and the sha256 of its files that the run records."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from panbench.errors import PanbenchError

WEIGHT_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.model"]  # what a model directory needs from the hub


def resolve_dir(ref: str, any_rank: Callable[[bool], bool] | None = None) -> tuple[Path, str | None]:
    """A local model directory, or the hub snapshot of ``ref`` (downloaded into huggingface_hub's cache when
    online; under torchrun by local rank 0 first).  Returns (directory, hub id or None)."""
    p = Path(ref).expanduser()
    if p.is_dir():
        return p, None
    if p.exists() or ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise PanbenchError(f"{ref}: model directory not found; pass a directory written by save_pretrained "
                            "(config.json, weights, preprocessor_config.json) or a hub id such as "
                            "facebook/mask2former-swin-tiny-coco-panoptic")
    error: PanbenchError | None = None
    d: Path | None = None
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        try:
            d = _snapshot(ref)
        except PanbenchError as e:
            error = e
    if any_rank is not None and any_rank(error is not None) and error is None:
        raise PanbenchError(f"hf:{ref}: the download on local rank 0 failed (its message is in its log)")
    if error is not None:
        raise error
    return (d or _snapshot(ref)), ref


def _snapshot(ref: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise PanbenchError("hf: models need huggingface_hub and transformers: .venv/bin/pip install transformers "
                            "(make setup installs them)") from e
    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported: read it again here
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    try:
        d = Path(snapshot_download(ref, allow_patterns=WEIGHT_PATTERNS, local_files_only=offline))
        if not any(d.glob("*.safetensors")):  # an older repository: PyTorch's pickle format only
            d = Path(snapshot_download(ref, allow_patterns=[*WEIGHT_PATTERNS, "*.bin"], local_files_only=offline))
    except Exception as e:  # offline and not cached, unknown id, gated repository, network errors
        msg = "HF_HUB_OFFLINE is set" if offline else \
            f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:100]}"
        raise PanbenchError(f"hf:{ref}: not in the Hugging Face cache and not downloadable here ({msg}); download it "
                            f"where the hub is reachable (hf download {ref}) or pass a local directory") from e
    return d


def digest(d: Path) -> str:
    """sha256 over the directory's files (names and contents; README and dot files left out)."""
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.name.lower() != "readme.md":
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()
