"""Downloads with a progress bar and resume, and file digests (the COCO download, the checkpoint cache).  Standard
library only."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from panbench.errors import PanbenchError


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The file's sha256 hex digest, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, progress: bool = True, instead: str = "download it yourself") -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part``; ``instead``: the error's fix without the network."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        resp = urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # the range starts at the end: the partial file is already whole
            os.replace(part, dest)
            return dest
        raise PanbenchError(f"{url}: download failed ({e}); check the URL, or {instead}") from e
    except OSError as e:
        raise PanbenchError(f"{url}: download failed ({e}); check the network, or {instead}") from e
    with resp:
        if start and resp.status != 206:  # server ignored the range: start over
            start = 0
        total = int(resp.headers.get("Content-Length", 0)) + start
        done = start
        with open(part, "ab" if start else "wb") as f:
            try:
                while block := resp.read(1 << 20):
                    f.write(block)
                    done += len(block)
                    if progress and total:
                        pct = 100 * done / total
                        sys.stderr.write(f"\r  {dest.name}: {done / 2**20:7.1f} / {total / 2**20:.1f} MiB "
                                         f"({pct:5.1f}%)")
            except (OSError, http.client.HTTPException) as e:
                raise PanbenchError(f"{url}: download interrupted after {done / 2**20:.1f} MiB ({e}); run again to "
                                    f"resume it ({part} is kept)") from e
        if total and done < total:
            raise PanbenchError(f"{url}: download ended after {done} of {total} bytes; run again to resume it "
                                f"({part} is kept)")
        if progress:
            sys.stderr.write("\n")
    os.replace(part, dest)
    return dest
