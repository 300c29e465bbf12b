"""Checkpoint safety: sha256 prefix (only in zoo names), truncated files, files that are no checkpoint,
pickled extras, the meta values zoo files carry."""

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
               "state_dict": {"w": torch.ones(2)}}, tmp_path, "m_20230101_000000")
    assert checkpoints.verify(p, checkpoints.expected_prefix(p.name)) == hashlib.sha256(p.read_bytes()).hexdigest()
    state, meta = checkpoints.load_checkpoint(p)
    assert torch.equal(state["w"], torch.ones(2)) and meta["dataset_meta"]["classes"] == ("a", "b")


def test_sha256_mismatch_is_refused(tmp_path) -> None:
    p = save_with_digest({"state_dict": {"w": torch.ones(2)}}, tmp_path, "m_20230101_000000")
    wrong = p.with_name("m_20230101_000000-00000000.pth")
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


# ---- which names carry a digest: the zoo's <config>_<YYYYMMDD>_<HHMMSS>-<8 hex>.pth, and MANIFEST.json ----

ZOO_NAME = "mask2former_r50_8xb2-lsj-50e_coco-panoptic_20230118_125535-54df384a.pth"


@pytest.mark.parametrize("name,prefix", [
    (ZOO_NAME, "54df384a"),
    ("https://download.openmmlab.com/x/panoptic_fpn_r50_fpn_1x_coco_20210821_101153-9668fd13.pth", "9668fd13"),
    ("model-20230101.pth", None),  # 8 decimal digits: a date, not a digest
    ("model_20230101-20230101.pth", None),
    ("model-deadbeef.pth", None),  # hex, but not in the zoo's form
    ("model_20230118_125535-54DF384A.pth", None),  # the zoo writes lowercase hex
    ("model_20230118_125535-54df384a0.pth", None),
])
def test_only_zoo_names_carry_a_digest(name, prefix) -> None:
    assert checkpoints.expected_prefix(name) == prefix


def test_user_checkpoint_named_like_a_date_is_not_checked_against_a_digest(tmp_path) -> None:
    from panbench.models.mmdet.handle import resolve_weights
    from panbench.models.registry import resolve

    p = tmp_path / "model-20230101.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}}, p)
    w = resolve_weights(resolve("demo-mask2former", dataset="demo")[0], str(p))
    assert w.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_committed_demo_weights_are_checked_against_their_manifest(tmp_path) -> None:
    import json
    import shutil

    from panbench.package import REPO_ROOT

    demo = REPO_ROOT / "checkpoints" / "demo"
    manifest = json.loads((demo / "MANIFEST.json").read_text())
    for entry in manifest.values():
        p = demo / entry["file"]
        assert checkpoints.expected_digest(p) == entry["sha256"]
        assert checkpoints.verify(p, checkpoints.expected_digest(p)) == entry["sha256"]
    # a committed file that changed is refused (a copy with its MANIFEST.json, one byte changed)
    entry = next(iter(manifest.values()))
    shutil.copy(demo / "MANIFEST.json", tmp_path / "MANIFEST.json")
    data = bytearray((demo / entry["file"]).read_bytes())
    data[-30] ^= 1
    (tmp_path / entry["file"]).write_bytes(bytes(data))
    with pytest.raises(PanbenchError, match=f"does not match the expected {entry['sha256'][:16]}"):
        checkpoints.verify(tmp_path / entry["file"], checkpoints.expected_digest(tmp_path / entry["file"]))


# ---- files that are not checkpoints: refused before anything unpickles them, without --trust-checkpoint ----

@pytest.mark.parametrize("content", [b"# panbench\n\nA README, not a checkpoint.\n", b"", b"\x80",
                                     b"PK\x05\x06" + bytes(18)])
def test_a_file_that_is_not_a_checkpoint_is_not_offered_trust(tmp_path, content) -> None:
    p = tmp_path / "README.md"
    p.write_bytes(content)
    for trust in (False, True):
        with pytest.raises(PanbenchError, match="not a PyTorch checkpoint") as e:
            checkpoints.load_checkpoint(p, trust=trust)
        assert "--trust-checkpoint" not in str(e.value) and "\n" not in str(e.value)


def test_legacy_pickle_format_loads(tmp_path) -> None:
    p = tmp_path / "legacy.pth"
    torch.save({"meta": {"CLASSES": ("a",)}, "state_dict": {"w": torch.ones(2)}}, p,
               _use_new_zipfile_serialization=False)
    assert p.read_bytes()[:2] == b"\x80\x02"
    state, meta = checkpoints.load_checkpoint(p)
    assert torch.equal(state["w"], torch.ones(2)) and meta["CLASSES"] == ("a",)


def test_meta_values_of_zoo_files_load_with_weights_only(tmp_path) -> None:
    """numpy scalars (an mmcv 1.x EvalHook's best_score), numpy string arrays, palettes as lists of tuples,
    configs and environment as text: all plain data, loaded without --trust-checkpoint."""
    import numpy as np

    meta = {"CLASSES": np.array(["person", " truck"]), "palette": [(220, 20, 60), (119, 11, 32)],
            "hook_msgs": {"last_ckpt": "work_dirs/x/epoch_12.pth", "best_score": np.float64(0.4),
                          "best_ckpt": "work_dirs/x/best.pth"},
            "config": "model = dict(type='PanopticFPN')", "env_info": "sys.platform: linux", "time": "Tue Aug 17",
            "iters": np.int64(3), "flags": np.array([True, False]), "half": np.float16(1.5)}
    for legacy in (False, True):
        p = tmp_path / f"m{legacy}.pth"
        torch.save({"meta": meta, "state_dict": {"w": torch.ones(1)}}, p, _use_new_zipfile_serialization=not legacy)
        _, got = checkpoints.load_checkpoint(p)
        assert list(got["CLASSES"]) == ["person", " truck"] and got["hook_msgs"]["best_score"] == 0.4
        assert got["palette"][1] == (119, 11, 32) and got["config"].startswith("model")


# ---- download: progress, resume of a partial file, sha256 check (a local HTTP server with Range support) ----

import http.server  # noqa: E402
import threading  # noqa: E402


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    requests_seen: list[str | None] = []
    cut_after: int | None = None  # send only this many bytes of the body, then close (a dropped connection)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        rng = self.headers.get("Range")
        RangeHandler.requests_seen.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if RangeHandler.cut_after is not None:
            body, self.close_connection = body[:RangeHandler.cut_after], True
        self.wfile.write(body)

    def log_message(self, *a) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # polled every 50 ms for the shutdown (the default, 0.5 s, is waited out by each test's teardown)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
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


def test_a_dropped_connection_is_one_line_and_the_partial_file_resumes(server, tmp_path, monkeypatch) -> None:
    root, url = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    p = save_with_digest({"state_dict": {"w": torch.arange(100000.0)}}, root, "zoo_model_20230101_000000")
    RangeHandler.cut_after = 5000
    try:
        with pytest.raises(PanbenchError, match="run again to resume it"):
            checkpoints.fetch(f"{url}/{p.name}")
    finally:
        RangeHandler.cut_after = None
    part = checkpoints.cache_dir() / (p.name + ".part")
    assert part.stat().st_size == 5000 and not (checkpoints.cache_dir() / p.name).exists()
    path, _ = checkpoints.fetch(f"{url}/{p.name}")  # resumes from byte 5000
    assert path.read_bytes() == p.read_bytes()


def test_download_with_wrong_hash_is_refused(server, tmp_path, monkeypatch) -> None:
    root, url = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    p = save_with_digest({"state_dict": {"w": torch.ones(3)}}, root, "m_20230101_000000")
    bad = root / "m_20230101_000000-12345678.pth"
    p.rename(bad)
    with pytest.raises(PanbenchError, match="does not match the expected 12345678"):
        checkpoints.fetch(f"{url}/{bad.name}")


def test_unreachable_url_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PanbenchError) as e:
        checkpoints.fetch("http://127.0.0.1:9/none_20230101_000000-abcdef12.pth")
    dest = checkpoints.cache_dir() / "none_20230101_000000-abcdef12.pth"
    assert f"put it at {dest} (checked against its sha256 prefix abcdef12)" in str(e.value)
    assert "--checkpoint PATH for this one model" in str(e.value)
