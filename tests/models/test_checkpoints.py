"""Checkpoint safety: sha256 prefix, truncated files, pickled extras, wrong architecture."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
import torch
from helpers import save_with_digest

from panbench.errors import PanbenchError
from panbench.models import checkpoints


class NotATensor:  # a pickled extra that weights_only loading must refuse
    def __init__(self) -> None:
        self.x = 1


def test_good_checkpoint_loads_with_meta_and_numpy(tmp_path) -> None:
    import numpy as np

    p = save_with_digest({"meta": {"dataset_meta": {"classes": ("a", "b")}, "arr": np.arange(3)},
               "state_dict": {"w": torch.ones(2)}}, tmp_path, "m")
    assert checkpoints.verify(p, checkpoints.expected_prefix(p.name)) == hashlib.sha256(p.read_bytes()).hexdigest()
    state, meta = checkpoints.load_checkpoint(p)
    assert torch.equal(state["w"], torch.ones(2)) and meta["dataset_meta"]["classes"] == ("a", "b")


def test_sha256_mismatch_is_refused(tmp_path) -> None:
    p = save_with_digest({"state_dict": {"w": torch.ones(2)}}, tmp_path, "m")
    wrong = p.with_name("m-00000000.pth")
    p.rename(wrong)
    with pytest.raises(PanbenchError, match="does not match the expected 00000000.*re-download"):
        checkpoints.verify(wrong, checkpoints.expected_prefix(wrong.name))


def test_truncated_file_is_refused(tmp_path) -> None:
    p = tmp_path / "t.pth"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, p)
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(PanbenchError, match="truncated or corrupt"):
        checkpoints.load_checkpoint(p)


def test_pickled_extras_need_explicit_trust(tmp_path) -> None:
    p = tmp_path / "t.pth"
    torch.save({"meta": {"extra": NotATensor()}, "state_dict": {"w": torch.ones(1)}}, p, pickle_module=pickle)
    with pytest.raises(PanbenchError, match="--trust-checkpoint"):
        checkpoints.load_checkpoint(p)
    state, _ = checkpoints.load_checkpoint(p, trust=True)
    assert "w" in state


# ---- download: progress, resume of a partial file, sha256 check (a local HTTP server with Range support) ----

import http.server  # noqa: E402
import threading  # noqa: E402


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    requests_seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        rng = self.headers.get("Range")
        RangeHandler.requests_seen.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *a) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_and_resumes(server, tmp_path, monkeypatch) -> None:
    root, url = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    p = save_with_digest({"state_dict": {"w": torch.arange(100000.0)}}, root, "zoo_model_20230101_000000")
    path, digest = checkpoints.fetch(f"{url}/{p.name}")
    assert path == checkpoints.cache_dir() / p.name and path.read_bytes() == p.read_bytes()
    assert digest == hashlib.sha256(p.read_bytes()).hexdigest()
    # a partial download is resumed with a Range request, not restarted
    path.unlink()
    part = path.with_suffix(".pth.part")
    part.write_bytes(p.read_bytes()[:1000])
    RangeHandler.requests_seen.clear()
    path2, _ = checkpoints.fetch(f"{url}/{p.name}")
    assert RangeHandler.requests_seen == ["bytes=1000-"] and path2.read_bytes() == p.read_bytes()


def test_download_with_wrong_hash_is_refused(server, tmp_path, monkeypatch) -> None:
    root, url = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    p = save_with_digest({"state_dict": {"w": torch.ones(3)}}, root, "m")
    bad = root / "m-12345678.pth"
    p.rename(bad)
    with pytest.raises(PanbenchError, match="does not match the expected 12345678"):
        checkpoints.fetch(f"{url}/{bad.name}")


def test_unreachable_url_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PanbenchError, match="--checkpoint PATH"):
        checkpoints.fetch("http://127.0.0.1:9/none-abcdef12.pth")
