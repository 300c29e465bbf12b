"""On CI (CI=true) the report's browser test and the LaTeX compile checks run or the run fails.

``.ci/run`` is run for real with a PATH that has no chromium and an ``apt-get`` that fails (a
stand-in for an install that does not work, e.g. no network), and a ``make`` that only says that
it ran (the test suite itself is not run again).  The browser test itself is run in a child
pytest with a PATH without chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from panbench.package import REPO_ROOT


def _fake_path(tmp_path: Path) -> Path:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("dirname", "id", "cat"):
        (bin_ / tool).symlink_to(shutil.which(tool))
    (bin_ / "apt-get").write_text("#!/bin/sh\necho 'E: Unable to locate package chromium' >&2\nexit 100\n")
    (bin_ / "make").write_text("#!/bin/sh\necho \"make $* ran\"\n")
    for f in ("apt-get", "make"):
        (bin_ / f).chmod(0o755)
    return bin_


def _ci_run(tmp_path: Path, ci: str | None, have: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``.ci/run`` with the commands ``have`` present (stand-ins) and every apt-get install failing."""
    bin_ = _fake_path(tmp_path)
    for cmd in have:
        (bin_ / cmd).write_text("#!/bin/sh\nexit 0\n")
        (bin_ / cmd).chmod(0o755)
    env = {"PATH": str(bin_), "HOME": str(tmp_path)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([shutil.which("bash"), str(REPO_ROOT / ".ci" / "run")], capture_output=True, text=True,
                          env=env, timeout=60)


def test_failed_chromium_install_fails_the_ci_run(tmp_path) -> None:
    r = _ci_run(tmp_path, "true")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "could not install chromium" in r.stderr and "make test ran" not in r.stdout


def test_failed_chromium_install_is_a_note_off_ci(tmp_path) -> None:
    r = _ci_run(tmp_path, None)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "browser test will be skipped" in r.stdout and "make test ran" in r.stdout
    # the package's tests, the machine's (make test-system), then the second tier (.venv-vision)
    made = [line for line in r.stdout.splitlines() if line.startswith("make ")]
    assert made == ["make lint ran", "make test ran", "make test-system ran", "make test-vision ran"], r.stdout


def test_failed_pdflatex_install_fails_the_ci_run(tmp_path) -> None:
    r = _ci_run(tmp_path, "true", have=("chromium",))
    assert r.returncode != 0, r.stdout + r.stderr
    assert "could not install pdflatex" in r.stderr and "make test ran" not in r.stdout
    (tmp_path / "off").mkdir()
    r = _ci_run(tmp_path / "off", None, have=("chromium",))
    assert r.returncode == 0 and "LaTeX table checks will be skipped" in r.stdout and "make test ran" in r.stdout


def _child_pytest(tests: list[str], empty_dir: Path, ci: str) -> subprocess.CompletedProcess:
    """The tests in one child pytest whose PATH is an empty folder (no chromium, no pdflatex); ``-rA`` lists each
    test's outcome on its own line, skip reasons included. Its temporary folders lie under ``empty_dir``: with
    pytest's default base folder, each child deletes all but the three newest sessions' folders (the workers'
    step of the running ``make test`` among them): 13-15 s of this test in a ``make test`` run."""
    env = {**os.environ, "PATH": str(empty_dir), "CI": ci, "COLUMNS": "1000"}  # summary lines not cut short
    base = empty_dir / f"basetemp-{ci}"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           f"--basetemp={base}", *tests],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)


# each test with its outcome on CI and the message that says which tool is missing
LATEX = "tests/reporting/test_tables.py::test_latex_escapes_and_compiles"
# the browser test fails in its set-up (an error), before the demo evaluation that it needs
BROWSER = "tests/reporting/test_report.py::test_report_renders_in_headless_chromium"
TOOL_TESTS = {LATEX: ("FAILED", "pdflatex not installed"), BROWSER: ("ERROR", "chromium is not installed")}


def test_a_tool_missing_on_ci_fails_the_test_instead_of_skipping(tmp_path) -> None:
    """Both tool tests in one child pytest per CI value: each one's own summary line says how it ended and why."""
    r = _child_pytest(list(TOOL_TESTS), tmp_path, "true")
    lines = r.stdout.splitlines()
    assert r.returncode == 1 and "1 failed" in r.stdout and "1 error" in r.stdout, r.stdout[-2000:]
    for test, (outcome, message) in TOOL_TESTS.items():
        assert any(x.startswith(f"{outcome} {test} ") and message in x for x in lines), r.stdout[-2000:]
    r = _child_pytest(list(TOOL_TESTS), tmp_path, "false")
    assert r.returncode == 0 and "2 skipped" in r.stdout, r.stdout[-2000:]
    for _, message in TOOL_TESTS.values():  # each test's skip line (where it skipped: the test or its helper)
        assert any(x.startswith("SKIPPED [1] ") and message in x for x in r.stdout.splitlines()), r.stdout[-2000:]
