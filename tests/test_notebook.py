"""The Colab notebook runs headless (nbclient) with the demo dataset on CPU; a model that fails does
not stop the others.  Its set-up cell, run by a Python that has torch installed beforehand (as Colab's
does), installs panbench with pip and keeps that torch; outside a checkout, without PANBENCH_FROM (where its
panbench comes from), it stops in one line.  Every cell either runs or stops the notebook with one line, also run
alone or after a cell that stopped.  The runs in a kernel and the stand-in for Colab's Python are marked ``system``
(``make test-system``), the single cells are not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from panbench.package import REPO_ROOT

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
    assert (tmp_path / "runs.csv").is_file() and (tmp_path / "notebook" / "pq_bars.png").stat().st_size > 5000


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
    """This checkout's files (committed or not) as a git repository to clone, like the user's PANBENCH_FROM."""
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


def test_notebook_setup_outside_a_checkout_asks_for_panbench_from_in_one_line(tmp_path: Path) -> None:
    nb = nbformat.read(REPO_ROOT / "notebooks" / "panbench_colab.ipynb", as_version=4)
    script = _cells(nb, "parameters") + f'\nPANBENCH_DIR = "{tmp_path / "panbench"}"\n' + _cells(nb, "setup")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and r.stderr == (
        "set PANBENCH_FROM in the parameters cell to where panbench comes from (the git URL of your clone, a folder "
        "holding a clone, or a wheel): this notebook is in no checkout of it\n"), r.stderr
    assert not (tmp_path / "panbench").exists()
    wheel = tmp_path / "dist" / "panbench-0.0-py3-none-any.whl"
    r = subprocess.run([sys.executable, "-c", script.replace("PANBENCH_FROM = None", f'PANBENCH_FROM = "{wheel}"')],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and r.stderr.startswith(f"no wheel {wheel}: set PANBENCH_FROM") and \
        r.stderr.count("\n") == 1, r.stderr


@pytest.mark.system
def test_notebook_setup_cell_keeps_the_preinstalled_torch(tmp_path: Path) -> None:
    python = _colab_python(tmp_path / "colab")
    before = _torch_of(python)
    src = _source_repo(tmp_path / "src")
    nb = nbformat.read(REPO_ROOT / "notebooks" / "panbench_colab.ipynb", as_version=4)
    clone = tmp_path / "content" / "panbench"
    script = _cells(nb, "parameters") + (f'\nPANBENCH_FROM = "file://{src}"\nPANBENCH_DIR = "{clone}"\n') + \
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
    script = _cells(_notebook(), "parameters") + (f'\nPANBENCH_FROM = "{tmp_path / "no-such-repo"}"\n'
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


def _stop_line(nb, index: int, names: dict) -> str:
    """What a cell that stops the notebook says: the message of its SystemExit, asserted to be one line."""
    with pytest.raises(SystemExit) as stop:
        _run_cells(nb, index, names)
    message = str(stop.value.code)
    assert message and "\n" not in message, message
    return message


def test_every_cell_run_before_the_cells_above_it_stops_in_one_line_naming_them(tmp_path: Path) -> None:
    """Run alone in a fresh kernel (or after the cell above stopped), each code cell but the parameters stops with
    one line that names the cells to run first, never with a NameError."""
    nb = _notebook()
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert "parameters" in nb.cells[code[0]].metadata.get("tags", [])
    for index in code[1:]:
        assert "first" in _stop_line(nb, index, {}), nb.cells[index].source[:200]


def test_the_plot_cell_stops_in_one_line_when_the_table_cell_stopped(tmp_path: Path) -> None:
    nb = _notebook()
    table = next(i for i, c in enumerate(nb.cells) if "runs.csv" in c.source and "read_csv" in c.source)
    names = {"Path": Path, "RESULTS": str(tmp_path), "DATASET": "coco", "RUN_STARTED": "2026-01-02T00:00:00+00:00",
             "table": "a table of an earlier run"}
    assert _stop_line(nb, table, names).startswith(f"no {tmp_path / 'runs.csv'}")
    assert "run the table cell" in _stop_line(nb, table + 1, names)  # not the earlier run's table


def test_the_data_cell_offline_with_coco_stops_in_one_line(tmp_path: Path, monkeypatch, capfd) -> None:
    """`panbench data coco` itself, without a network (a proxy on a closed port): its one-line error, then the cell's
    line that says what to do."""
    nb = _notebook()
    data = next(i for i, c in enumerate(nb.cells) if '["data", DATASET' in c.source)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    names = {"PANBENCH": [sys.executable, "-m", "panbench"], "subprocess": subprocess, "DATASET": "coco",
             "DATA_ROOT": tmp_path / "coco", "REPO": tmp_path}
    line = _stop_line(nb, data, names)
    assert line.startswith("panbench data coco failed (exit 2)") and 'set DATASET = "demo"' in line, line
    assert "download failed" in capfd.readouterr().err


def test_the_plot_cell_draws_panbenchs_pq_bars_of_the_tables_models(tmp_path: Path) -> None:
    """The notebook's bars are `panbench plot`'s (panbench.reporting.plots.pq_bars: the models' colours of
    panbench's figures, the legend under the axes), of the models in the table cell's table."""
    import pandas as pd

    nb = _notebook()
    plot = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "pq_bars" in c.source)
    assert ".legend(" not in nb.cells[plot].source  # the legend is pq_bars' own, under the axes
    (tmp_path / "runs").mkdir()
    shutil.copy(REPO_ROOT / "tests" / "fixtures" / "fixture_record.json", tmp_path / "runs" / "fixture.json")
    names = {"Path": Path, "RESULTS": str(tmp_path), "DATASET": "coco", "RUN_STARTED": "1999-01-01T00:00:00+00:00",
             "table": pd.DataFrame({"PQ": [1.0]}, index=pd.Index(["fixture-model"], name="model"))}
    got, printed = _run_cells(nb, plot, names)
    assert printed.strip().splitlines()[-1] == str(got["bars"]) and got["bars"].stat().st_size > 5000
    assert [r.model for r in got["records"]] == ["fixture-model"]
    names["table"] = pd.DataFrame({"PQ": [1.0]}, index=pd.Index(["another-model"], name="model"))
    assert _stop_line(nb, plot, names).startswith(f"no record under {tmp_path / 'runs'} of the table's models")


@pytest.mark.system
def test_the_notebook_offline_with_coco_stops_at_the_data_in_one_line_and_no_cell_fails_otherwise(
        tmp_path: Path, monkeypatch) -> None:
    """The whole notebook in a kernel with DATASET = "coco" and no network, every cell run even after one stopped
    (as a user running the cells one by one would): each stops with its one line (SystemExit), no other error."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    nb = _notebook()
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    # DRIVE_DIR: COCO, checkpoints and hub models under tmp_path, not in the checkout
    params.source += (f'\nDATASET = "coco"\nRESULTS = "{tmp_path}"\nLIMIT = 2\nDRIVE_DIR = "{tmp_path / "drive"}"\n'
                      'MODELS = "mask2former"\n')  # one model: each fails alike without COCO
    NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    errors = [(k, o) for k, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    shown = [(k, o["ename"], o["evalue"]) for k, o in errors]
    assert errors and {o["ename"] for _, o in errors} == {"SystemExit"}, shown
    assert all("\n" not in o["evalue"] for _, o in errors)
    assert errors[0][1]["evalue"].startswith("panbench data coco failed (exit 2)")
