"""The resume cache removes, when it is opened, the temporary files that processes killed while writing a chunk
left (``chunk-*.npz.tmp<PID>@<host>``), and keeps those of processes alive or of other machines."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from panbench.evaluation.storage import STALE_S, StatsCache, _host, cached_images


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_opening_the_cache_removes_the_temporary_files_of_dead_processes(tmp_path) -> None:
    run = tmp_path / "demo-mask2former-demo-0123456789abcdef"
    run.mkdir()
    dead, host = _dead_pid(), _host()
    old = time.time() - STALE_S - 60
    files = {
        "dead": f"chunk-r0-{dead}-000001.npz.tmp{dead}@{host}",  # a process killed while writing
        "alive": f"chunk-r0-{os.getpid()}-000002.npz.tmp{os.getpid()}@{host}",  # one writing now
        "init": "chunk-r0-1-000001.npz.tmp1@" + host,  # PID 1 runs (another user's, or this container's init)
        "elsewhere": f"chunk-r1-{dead}-000001.npz.tmp{dead}@another-node",  # another machine sharing the folder
        "elsewhere_old": f"chunk-r1-{dead}-000002.npz.tmp{dead}@another-node",
        "no_host_old": f"timing-r0.json.tmp{dead}",  # an older panbench's
        "no_host": f"key.json.tmp{dead}",
    }
    for key, name in files.items():
        (run / name).write_bytes(b"half a chunk")
        if key.endswith("_old"):
            os.utime(run / name, (old, old))
    (run / "chunk-r0-7-000001.npz").write_bytes(b"not a temporary file")
    StatsCache(run, tag="r0")
    left = {p.name for p in run.iterdir()}
    gone = {"dead", "elsewhere_old", "no_host_old"}
    assert left == {n for k, n in files.items() if k not in gone} | {"chunk-r0-7-000001.npz"}
    assert cached_images() == 0  # an unreadable chunk holds no image


def test_the_cache_writes_through_temporary_files_of_this_process_and_machine(tmp_path, monkeypatch) -> None:
    import panbench.evaluation.storage as cache

    seen: list = []
    write = cache.atomic_write
    monkeypatch.setattr(cache, "atomic_write", lambda path, data, tmp: seen.append(tmp.name) or write(path, data, tmp))
    run = tmp_path / "run"
    StatsCache(run, tag="r0", key_parts={"a": 1})
    cache._write_chunk(run / "chunk-r0-1-000001.npz", [])
    cache.write_timing(run, "r0", {"device": "cpu", "timed_images": 1, "wall_s": 1.0})
    tag = f"tmp{os.getpid()}@{_host()}"
    assert seen == [f"key.json.{tag}", f"chunk-r0-1-000001.npz.{tag}", f"timing-r0.json.{tag}"]
    assert sorted(p.name for p in run.iterdir()) == ["chunk-r0-1-000001.npz", "key.json", "timing-r0.json"]
