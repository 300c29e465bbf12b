"""docs/huggingface.md's offline recipe runs as written: its code block makes a tiny model that `panbench eval
--model hf:DIR --dataset demo` evaluates."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from panbench.cli import main  # noqa: E402
from panbench.package import REPO_ROOT  # noqa: E402


def _recipe() -> str:
    text = (REPO_ROOT / "docs" / "huggingface.md").read_text()
    section = text[text.index("## A tiny model, offline"):]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_tiny_model_recipe_runs_and_evaluates(demo_root, tmp_path, monkeypatch) -> None:
    (tmp_path / "data").symlink_to(demo_root.parent)
    monkeypatch.chdir(tmp_path)
    exec(compile(_recipe(), "docs/huggingface.md", "exec"), {})
    assert (tmp_path / "tiny-mask2former" / "config.json").is_file()
    assert main(["eval", "--model", "hf:tiny-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
                 "--limit", "2", "--results", str(tmp_path / "res"), "--workers", "0", "--cpu-procs", "1",
                 "--no-progress", "--flops-images", "0"]) == 0
    rec = json.loads(next((tmp_path / "res" / "runs").glob("*.json")).read_text())
    assert rec["framework"] == "transformers" and rec["n_images"] == 2
