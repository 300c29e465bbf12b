"""An environment that stays working.

mmengine 0.10.7 imports ``pkg_resources`` to load any config, setuptools 82 does not ship it,
and torch 2.13 requires ``setuptools>=77.0.3``: an unconstrained pip that installs one more
torch-dependent package upgrades setuptools to the newest and breaks every ``panbench eval``.

- ``panbench doctor`` detects that state: a ``sitecustomize`` first on PYTHONPATH makes
  ``pkg_resources`` unimportable in a child process (what setuptools >= 82 leaves); the same
  state makes mmengine's config loading fail, and doctor names it with the fix on one line.
- The set-up's pip configuration (``.venv/pip.conf`` -> ``.venv/panbench-constraints.txt``)
  keeps setuptools below 81 and torch at its installed version when a package needs
  ``setuptools>=77.0.3`` or a newer torch.  The check runs this venv's real pip with ``--dry-run``
  against a local folder of metadata-only wheels (built here, offline: ``setuptools`` 80.9.0 and
  84.0.0, a ``torch`` 99.0, and two packages depending on them); with the venv's configuration
  switched off (``PIP_CONFIG_FILE=/dev/null``) the same command picks setuptools 84 and torch 99,
  which shows what the configuration prevents.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from panbench.cli.doctor import SETUPTOOLS_PIN
from panbench.package import REPO_ROOT

SHADOW = "import sys\nsys.modules['pkg_resources'] = None  # as if setuptools >= 82 were installed\n"


def _shadowed_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(SHADOW)
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_the_shadow_breaks_mmengine_as_setuptools_82_does(tmp_path) -> None:
    code = ("from mmengine.config import Config; "
            f"Config.fromfile({str(REPO_ROOT / 'configs' / 'demo' / 'maskformer.py')!r})")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_shadowed_env(tmp_path))
    assert r.returncode != 0 and "pkg_resources" in r.stderr, r.stderr[-2000:]


def test_doctor_detects_missing_pkg_resources_and_prints_the_fix(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "panbench", "doctor", "--data-root", str(tmp_path)],
                       capture_output=True, text=True, env=_shadowed_env(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(x for x in r.stdout.splitlines() if "pkg_resources" in x and x.startswith("[FAIL]"))
    assert f"fix: .venv/bin/pip install '{SETUPTOOLS_PIN}'" in line
    assert "pkg_resources" in r.stdout.splitlines()[-1]  # the summary names the broken part


def test_doctor_passes_pkg_resources_in_this_environment(tmp_path) -> None:
    from panbench.cli.doctor import pkg_resources_check

    check = pkg_resources_check()
    assert check.ok, check.detail


def _wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A metadata-only wheel: enough for pip's resolver (``--dry-run`` installs nothing)."""
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    wheel = "Wheel-Version: 1.0\nGenerator: panbench-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files = {f"{info}/METADATA": meta, f"{info}/WHEEL": wheel}
    files[f"{info}/RECORD"] = "".join(f"{k},,\n" for k in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        for k, v in files.items():
            z.writestr(k, v)


def _dry_run(tmp_path: Path, package: str, use_venv_config: bool) -> tuple[subprocess.CompletedProcess, dict]:
    index = tmp_path / "index"
    if not index.is_dir():
        index.mkdir()
        _wheel(index, "setuptools", "80.9.0")
        _wheel(index, "setuptools", "84.0.0")
        _wheel(index, "torch", "99.0")
        _wheel(index, "needs_setuptools", "1.0", ("setuptools>=77.0.3",))
        _wheel(index, "needs_newer_torch", "1.0", ("torch>=99",))
    report = tmp_path / f"{package}-{use_venv_config}.json"
    env = {**os.environ}
    env.pop("PIP_CONSTRAINT", None)
    if not use_venv_config:
        env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no configuration file at all
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--disable-pip-version-check",
                        "--no-index", "--find-links", str(index), "--report", str(report), "--upgrade",
                        "--upgrade-strategy", "eager", package], capture_output=True, text=True, env=env)
    chosen = {}
    if r.returncode == 0:
        chosen = {i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    return r, chosen


@pytest.fixture
def venv_pip_conf() -> Path:
    conf = Path(sys.prefix) / "pip.conf"
    if not conf.is_file():
        pytest.fail(f"{conf} missing: the set-up writes it (run make setup)")
    return conf


def test_venv_pip_keeps_setuptools_below_81(tmp_path, venv_pip_conf) -> None:
    r, chosen = _dry_run(tmp_path, "needs_setuptools", use_venv_config=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(chosen.get("setuptools", "80").split(".")[0]) < 81, chosen
    r, chosen = _dry_run(tmp_path, "needs_setuptools", use_venv_config=False)  # without the set-up's config
    assert r.returncode == 0 and chosen.get("setuptools") == "84.0.0", (r.stderr[-2000:], chosen)


def test_venv_pip_refuses_to_replace_the_torch_mmcv_was_built_for(tmp_path, venv_pip_conf) -> None:
    r, _ = _dry_run(tmp_path, "needs_newer_torch", use_venv_config=True)
    assert r.returncode != 0 and "torch" in r.stderr, r.stderr[-2000:]
    r, chosen = _dry_run(tmp_path, "needs_newer_torch", use_venv_config=False)
    assert r.returncode == 0 and chosen.get("torch") == "99.0", (r.stderr[-2000:], chosen)


def _setup_lines(text: str, first: str, last: str) -> str:
    """The lines of scripts/setup.sh from the one starting with ``first`` to the next one starting with ``last``."""
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith(first))
    end = next(k for k in range(start, len(lines)) if lines[k].startswith(last))
    return "\n".join(lines[start:end + 1])


def test_the_setup_pins_each_familys_tested_versions_in_the_constraints(tmp_path) -> None:
    """scripts/setup.sh's own lines (reading Family.tested, writing the constraints) run in bash: every tested
    version but mmcv's (its pin is the set-up's mmcv-lite or mmcv, passed in as step 4 does) is pinned."""
    from panbench.models.families import tested_versions

    text = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    script = "\n".join([
        "set -euo pipefail", f"ROOT={REPO_ROOT}", f"VENV={tmp_path}", f"PY={sys.executable}",
        'CONSTRAINTS="$VENV/panbench-constraints.txt"', 'fail() { echo "$2" >&2; exit 1; }',
        _setup_lines(text, "SETUPTOOLS=", "SETUPTOOLS="), _setup_lines(text, "write_pip_conf() {", "}"),
        _setup_lines(text, "declare -A TESTED", "STACK_PINS="), 'write_pip_conf torch==2.13.0 mmcv-lite==2.1.0'])
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pins = [x for x in (tmp_path / "panbench-constraints.txt").read_text().splitlines() if not x.startswith("#")]
    want = [f"{name}=={v}" for name, v in tested_versions().items() if name != "mmcv"]
    assert pins == [SETUPTOOLS_PIN, "torch==2.13.0", "mmcv-lite==2.1.0", *want]
    assert any(p.startswith("transformers==") for p in want)


def test_the_mmdet_extra_and_the_mmcv_install_name_the_tested_versions() -> None:
    """The versions pip cannot read from Family.tested: the `mmdet` extra of pyproject.toml, and the mmcv 2.1.0
    that scripts/setup.sh and scripts/install_mmcv.sh install (panbench.ops re-implements that version's ops)."""
    import tomllib

    from panbench.models.families import FAMILIES

    tested = dict(FAMILIES["mmdet"].tested)
    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["mmdet"]
    pins = {f"mmcv-lite=={tested['mmcv']}", f"mmengine=={tested['mmengine']}", f"mmdet=={tested['mmdet']}"}
    assert pins <= set(extra)
    for script in ("setup.sh", "install_mmcv.sh"):
        text = (REPO_ROOT / "scripts" / script).read_text()
        assert set(re.findall(r"mmcv(?:-lite)?[=-]=?(\d+\.\d+\.\d+)", text)) == {tested["mmcv"]}, script
