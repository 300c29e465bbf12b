"""The Colab notebook runs headless (nbclient) with the demo dataset on CPU; a model that fails does
not stop the others.  Its set-up cell, run by a Python that has torch installed beforehand (as Colab's
does), installs panbench with pip and keeps that torch; with the placeholder REPO_URL it stops in one line.
The run in a kernel and the stand-in for Colab's Python are marked ``system`` (``make test-system``), the single
cells are not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from panbench import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.mark.system
def test_notebook_executes_on_the_demo_dataset(tmp_path: Path) -> None:
    nb = nbformat.read(REPO_ROOT / "notebooks" / "panbench_colab.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += (f'\nDATASET = "demo"\nRESULTS = "{tmp_path}"\nLIMIT = 6\n'
                      'MODELS = "panoptic-fpn,maskformer,no-such-model,mask2former"\n')  # one that fails
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    outputs = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                      for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "demo-mask2former" in outputs and "demo-panoptic-fpn" in outputs and "demo-maskformer" in outputs
    assert "=== no-such-model FAILED (exit 2): panbench: error: unknown model" in outputs
    assert "done: 3 of 4 models evaluated; failed: no-such-model" in outputs
    assert "eval demo" in outputs  # the progress bar reached the cell while the model ran
    assert (tmp_path / "runs.csv").is_file() and (tmp_path / "notebook_pq_bars.png").stat().st_size > 5000


# ---- the set-up cell on a simulated Colab: pip into a Python whose torch was installed beforehand ----

def _cells(nb, *tags: str) -> str:
    return "\n".join(next(c.source for c in nb.cells if tag in c.metadata.get("tags", [])) for tag in tags)


def _colab_python(root: Path) -> Path:
    """A stand-in for Colab's Python: a venv with this torch installed into it before anything else (from the
    package indexes pip is configured with; torch's CPU wheel on the development machine)."""
    import venv

    import torch

    venv.EnvBuilder(with_pip=True).create(root)
    python = root / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
                    f"torch=={torch.__version__}"], check=True, capture_output=True, text=True, timeout=600)
    return python


def _torch_of(python: Path) -> list[str]:
    return subprocess.run([str(python), "-c", "import torch; print(torch.__version__, torch.__file__)"],
                          capture_output=True, text=True, check=True).stdout.split()


def _source_repo(root: Path) -> Path:
    """This checkout's files (committed or not) as a git repository to clone, like the user's REPO_URL."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for f in files:
        if (REPO_ROOT / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / f, root / f)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(git + cmd, check=True, capture_output=True)
    return root


def test_notebook_setup_stops_in_one_line_while_repo_url_is_the_placeholder(tmp_path: Path) -> None:
    nb = nbformat.read(REPO_ROOT / "notebooks" / "panbench_colab.ipynb", as_version=4)
    script = _cells(nb, "parameters") + f'\nSETUP = "pip"\nPANBENCH_DIR = "{tmp_path / "panbench"}"\n' + \
        _cells(nb, "setup")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and r.stderr == ("set REPO_URL in the parameters cell to the git URL of your clone of "
                                              "panbench, then run again\n"), r.stderr
    assert not (tmp_path / "panbench").exists()


@pytest.mark.system
def test_notebook_setup_cell_keeps_the_preinstalled_torch(tmp_path: Path) -> None:
    python = _colab_python(tmp_path / "colab")
    before = _torch_of(python)
    src = _source_repo(tmp_path / "src")
    nb = nbformat.read(REPO_ROOT / "notebooks" / "panbench_colab.ipynb", as_version=4)
    clone = tmp_path / "content" / "panbench"
    script = _cells(nb, "parameters") + (f'\nSETUP = "pip"\nREPO_URL = "{src}"\nPANBENCH_DIR = "{clone}"\n') + \
        _cells(nb, "setup", "doctor")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for run in (1, 2):  # the cells run again on the clone they made
        r = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                           timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert f"keeping torch=={before[0]}" in r.stdout
        assert ("using the clone in" in r.stdout) == (run == 2)
        assert ("panbench already installed from" in r.stdout) == (run == 2)
        assert ("pip installed" in r.stdout) == (run == 1)  # what pip added and changed is listed, once
        assert "all required parts work" in r.stdout and "panbench doctor: exit" not in r.stdout, r.stdout[-3000:]
        assert f"panbench in {clone}; python" in r.stdout
    assert _torch_of(python) == before  # the same torch: version and file
    versions = subprocess.run([str(python), "-c", "import importlib.metadata as md; print(md.version('mmcv-lite'))"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert versions == ["2.1.0"]


def _notebook() -> nbformat.NotebookNode:
    return nbformat.read(REPO_ROOT / "notebooks" / "panbench_colab.ipynb", as_version=4)


def test_notebook_setup_says_in_one_line_that_the_clone_failed_and_names_private_repositories(tmp_path: Path) -> None:
    script = _cells(_notebook(), "parameters") + (f'\nSETUP = "pip"\nREPO_URL = "{tmp_path / "no-such-repo"}"\n'
                                                  f'PANBENCH_DIR = "{tmp_path / "panbench"}"\n') + \
        _cells(_notebook(), "setup")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"git clone {tmp_path / 'no-such-repo'} failed (exit 128): ")
    assert "a private repository needs a token in the URL" in r.stderr and r.stderr.count("\n") == 1


def _run_cells(nb, index: int, names: dict) -> tuple[dict, str]:
    """Run one code cell (by position) with the given names defined, as the kernel would; returns its names
    and what it printed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(nb.cells[index].source, f"cell {index}", "exec"), names)  # noqa: S102
    return names, out.getvalue()


def test_notebook_doctor_checks_the_demo_root_in_demo_mode_and_the_eval_offers_no_resume(tmp_path: Path) -> None:
    nb = _notebook()
    doctor = next(i for i, c in enumerate(nb.cells) if "doctor" in c.metadata.get("tags", []))
    base = {"PANBENCH": ["echo"], "REPO": tmp_path, "DATA_ROOT": tmp_path / "coco", "subprocess": subprocess}
    _, printed = _run_cells(nb, doctor, {**base, "DATASET": "demo"})
    assert printed.startswith(f"doctor --data-root {tmp_path / 'data' / 'demo'}\n"), printed
    _, printed = _run_cells(nb, doctor, {**base, "DATASET": "coco"})
    assert printed.startswith(f"doctor --data-root {tmp_path / 'coco'}\n"), printed
    evaluate = doctor + 2
    assert "run_streaming" in nb.cells[evaluate].source
    names = {**base, "sys": sys, "DATASET": "demo", "MODELS": "mask2former", "RESULTS": str(tmp_path), "LIMIT": None}
    _, printed = _run_cells(nb, evaluate, {**names, "RESUME": False})
    assert "--no-resume" in printed and "set RESUME = False" not in printed
    _, printed = _run_cells(nb, evaluate, {**names, "RESUME": True})
    assert "--no-resume" not in printed and "set RESUME = False in the parameters cell" in printed


def test_notebook_table_shows_this_runs_models_and_says_when_runs_csv_is_missing(tmp_path: Path) -> None:
    import pandas as pd

    nb = _notebook()
    table = next(i for i, c in enumerate(nb.cells) if "runs.csv" in c.source and "read_csv" in c.source)
    names = {"Path": Path, "RESULTS": str(tmp_path), "DATASET": "demo", "RUN_STARTED": "2026-01-02T00:00:00+00:00"}
    with pytest.raises(SystemExit, match=f"no {tmp_path / 'runs.csv'}: no model was evaluated into RESULTS yet"):
        _run_cells(nb, table, dict(names))
    cols = ["PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st", "images_per_s", "device"]
    rows = [{"model": m, "dataset": "demo", "date": d, **dict.fromkeys(cols, 1.0)}
            for m, d in [("old-model", "2026-01-01T00:00:00+00:00"), ("demo-mask2former", "2026-01-02T00:00:05+00:00")]]
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    got, _ = _run_cells(nb, table, dict(names))
    assert list(got["table"].index) == ["demo-mask2former"]
