"""No silent wait: each command a user waits on (doctor, speed with its warm-up and iterations, data demo, viz,
report, plot) run for real on the demo set, its stdout and stderr read line by line as they come (a line ends at
a newline or, for a progress bar, a carriage return): no gap of more than 2 s between two lines, nor before the
first or after the last (the phase lines of panbench/announce.py; which waits announce themselves is read from the
code by tests/test_announce.py in `make test`). The 2 s hold on an idle machine where a bare `import torch` (the
one wait no announcement can split) takes 1.5 s or less: where it takes longer the limit grows in proportion, and
on a loaded machine with the 1-minute load average per core (timed, so a `system` test)."""

from __future__ import annotations

import functools
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

GAP_S = 2.0  # at idle, where a bare import torch takes at most TORCH_S
TORCH_S = 1.5
MODEL = "demo-panoptic-fpn"


def longest_gap(args: list[str], timeout: float = 300) -> tuple[float, str, subprocess.CompletedProcess[str]]:
    """Run ``panbench ARGS``; the longest time without a line on stdout or stderr (from the start, between lines,
    to the exit), the line that ended it, and the finished process with all it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "panbench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    assert p.stdout is not None and p.stderr is not None
    sel = selectors.DefaultSelector()
    for f in (p.stdout, p.stderr):
        os.set_blocking(f.fileno(), False)
        sel.register(f, selectors.EVENT_READ)
    texts = {p.stdout: b"", p.stderr: b""}
    worst, after, last = 0.0, "", start
    while sel.get_map():
        assert time.monotonic() - start < timeout, f"panbench {' '.join(args)}: still running after {timeout} s"
        for key, _ in sel.select(timeout=1):
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fileobj)
                continue
            now, old = time.monotonic(), texts[key.fileobj]
            texts[key.fileobj] = old + data
            ends = data.count(b"\n") + data.count(b"\r")
            if ends:
                if now - last > worst:
                    worst, after = now - last, (old + data).decode(errors="replace").replace("\r", "\n")
                last = now
    p.wait()
    if time.monotonic() - last > worst:
        worst, after = time.monotonic() - last, "(the exit)"
    out = subprocess.CompletedProcess(p.args, p.returncode, texts[p.stdout].decode(), texts[p.stderr].decode())
    return worst, after.strip().splitlines()[-1] if after.strip() else after, out


def _seconds(code: str) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.monotonic() - start


@functools.cache
def torch_import_s() -> float:
    """A bare ``import torch`` in a fresh interpreter on this machine, less the interpreter's own start (the
    shorter of two tries)."""
    return min(_seconds("import torch") - _seconds("pass") for _ in range(2))


def limit() -> float:
    """:data:`GAP_S`, times this machine's ``import torch`` over :data:`TORCH_S` where that is longer, and the load
    per core where the machine is busier than one process per core."""
    return (GAP_S * max(1.0, torch_import_s() / TORCH_S)
            * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1)))


@pytest.fixture(scope="module")
def results(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder with one eval run of the demo set (4 images) and a speed record, as the reporting reads."""
    folder = tmp_path_factory.mktemp("results")
    r = subprocess.run([sys.executable, "-m", "panbench", "eval", "--model", MODEL, "--dataset", "demo",
                        "--data-root", str(demo_root), "--limit", "4", "--no-progress", "--results", str(folder)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return folder


def commands(demo_root: Path, results: Path, tmp: Path) -> dict[str, list[str]]:
    on_demo = ["--model", MODEL, "--dataset", "demo", "--data-root", str(demo_root), "--results", str(results)]
    return {"doctor": ["doctor", "--data-root", str(demo_root)],
            "speed": ["speed", *on_demo, "--limit", "4", "--warmup-iters", "2", "--iters", "6"],
            "data demo": ["data", "demo", "--root", str(tmp / "demo"), "--force"],
            "viz": ["viz", *on_demo, "--image", "2000"],
            "plot": ["plot", "--results", str(results)],
            "report": ["report", "--results", str(results)]}


@pytest.mark.parametrize("command", ["doctor", "speed", "data demo", "viz", "plot", "report"])
def test_no_wait_over_two_seconds_without_a_line(command: str, demo_root: Path, results: Path,
                                                 tmp_path: Path) -> None:
    args = commands(demo_root, results, tmp_path)[command]
    worst, after, r = longest_gap(args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "panbench: " in r.stderr  # its phases announced themselves
    assert worst <= limit(), (f"panbench {command}: {worst:.1f} s without a line (limit {limit():.1f} s at load "
                              f"{os.getloadavg()[0]:.1f}, import torch {torch_import_s():.1f} s) before: {after}")


def test_the_gap_reader_sees_a_silent_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader itself: a program that prints, sleeps, then prints is caught (a stand-in ``panbench`` package
    first on the path)."""
    (tmp_path / "panbench").mkdir()
    (tmp_path / "panbench" / "__main__.py").write_text("import time\nprint('a', flush=True)\ntime.sleep(1.5)\n"
                                                       "print('b', flush=True)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    worst, after, r = longest_gap([])
    assert r.stdout == "a\nb\n" and 1.4 <= worst < 3 and after == "b"
