"""scripts/install_mmcv.sh (step 4 of the compiled-mmcv opt-in, `make setup-mmcv`; the default `make setup`
installs mmcv-lite and compiles nothing of mmcv) against a local wheel index served on 127.0.0.1:
OpenMMLab's prebuilt wheel for the torch/CUDA pair is downloaded and installed instead of compiling;
with none published for the pair (or one for another Python) it falls back to compiling, saying how
long that takes first.  PANBENCH_SETUP_DRY_RUN=1 prints the install and compile commands instead of
running them (the test venv is never changed); the download itself is real."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from panbench.package import REPO_ROOT

pytestmark = pytest.mark.system  # the set-up's mmcv step run for real, with the mmcv wheel this machine cached

CACHED = sorted((Path.home() / ".cache" / "panbench" / "wheels").glob("mmcv-2.1.0-cp311-*/mmcv-2.1.0-*.whl"))
PREBUILT = "mmcv-2.1.0-cp311-cp311-manylinux1_x86_64.whl"  # the name OpenMMLab's wheels have


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []

    def log_message(self, *args: object) -> None:
        _Quiet.requested.append(self.path)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An empty wheel index folder served over HTTP on 127.0.0.1 (like download.openmmlab.com/mmcv/dist)."""
    root = tmp_path / "index"
    root.mkdir()
    _Quiet.requested = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def publish(root: Path, pair: str, wheel_name: str) -> None:
    """Put a renamed copy of the cached mmcv wheel in ``root/<pair>/`` with an index.html linking it."""
    if not CACHED:
        pytest.skip("no mmcv wheel in ~/.cache/panbench/wheels (make setup caches one)")
    d = root / pair
    d.mkdir(parents=True)
    shutil.copyfile(CACHED[0], d / wheel_name)
    (d / "index.html").write_text(f'<html><body><a href="{wheel_name}">{wheel_name}</a></body></html>\n')


def install_mmcv(tmp_path: Path, url: str, tag: str = "cp311-torch2.13.0-cpu") -> tuple[str, Path]:
    wheeldir = tmp_path / "cache" / "wheels" / f"mmcv-2.1.0-{tag}"
    env = {**os.environ, "PANBENCH_SETUP_DRY_RUN": "1", "PANBENCH_MMCV_INDEX": url}
    r = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install_mmcv.sh"), sys.executable, str(wheeldir), tag,
                        "MMCV_WITH_OPS=1", "MAX_JOBS=2"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout, wheeldir


def test_prebuilt_wheel_is_installed_instead_of_compiling(tmp_path: Path, index: tuple[str, Path]) -> None:
    url, root = index
    publish(root, "cpu/torch2.13", PREBUILT)
    out, wheeldir = install_mmcv(tmp_path, url)
    assert f"looking for OpenMMLab's prebuilt mmcv 2.1.0 wheel: {url}/cpu/torch2.13/index.html" in out
    assert f"found {PREBUILT}: installing it (no compiling)" in out
    assert f"--force-reinstall --no-deps {wheeldir / PREBUILT}" in out  # the install command (dry run)
    assert (wheeldir / PREBUILT).is_file()  # downloaded into the wheel cache: the next set-up uses it
    assert "compiling mmcv" not in out and "pip wheel" not in out
    assert "/cpu/torch2.13/index.html" in _Quiet.requested
    out, _ = install_mmcv(tmp_path, url)  # a second set-up: the cached wheel, no lookup
    assert f"using cached wheel {wheeldir / PREBUILT}" in out and "looking for" not in out


def test_no_prebuilt_wheel_for_the_pair_compiles(tmp_path: Path, index: tuple[str, Path]) -> None:
    url, root = index
    publish(root, "cpu/torch2.1", PREBUILT)  # another torch: not for this pair
    publish(root, "cu128/torch2.13", PREBUILT.replace("cp311", "cp310"))  # this pair, another Python
    out, wheeldir = install_mmcv(tmp_path, url)
    assert "none published for torch 2.13 / cpu: compiling" in out
    assert "compiling mmcv from source: this takes about 12 min with 2 parallel jobs" in out
    assert f"MMCV_WITH_OPS=1 MAX_JOBS=2 {sys.executable} -m pip wheel --no-build-isolation --no-deps mmcv==2.1.0 " \
           f"-w {wheeldir}" in out
    assert not list(wheeldir.glob("*.whl"))
    out, _ = install_mmcv(tmp_path, url, tag="cp311-torch2.13.0-cu12.8")
    assert f"{url}/cu128/torch2.13/index.html" in out and "none published for torch 2.13 / cu128" in out
    assert "compiling mmcv with its CUDA ops: this takes long" in out
