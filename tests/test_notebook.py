"""The Colab notebook runs headless (nbclient) with the demo dataset on CPU; a model that fails does
not stop the others."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from panbench import REPO_ROOT

pytestmark = pytest.mark.slow


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
