"""The eval console and messages: post-processing in the header and the summary, every model
and option checked before any model runs, the dataset inferred from the model, the progress bar of a
torchrun job, `panbench data coco` named where COCO is missing, committed demo weights in `ls`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.data.demo import make_split
from panbench.package import REPO_ROOT


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


def test_maskwise_with_all_models_fails_before_any_model_runs(demo_root, tmp_path, capsys) -> None:
    rc = main(["eval", "--model", "all", "--dataset", "demo", "--postprocess", "maskwise", "--results",
               str(tmp_path), "--limit", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "demo-panoptic-fpn" in err and "nothing was run" in err, err
    assert not (tmp_path / "runs").exists()


def test_the_dataset_is_inferred_from_the_model(demo_root, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the default --data-root data/demo is relative
    assert main(["eval", "--model", "demo-mask2former,demo-panoptic-fpn", "--results", str(tmp_path), "--limit", "2",
                 "--workers", "0", "--cpu-procs", "1", "--no-progress"]) == 0  # no --dataset, no --data-root
    recs = _records(tmp_path)
    assert [r["dataset"] for r in recs] == ["demo", "demo"]
    assert recs[0]["provenance"]["dataset"]["root"] == "data/demo"
    assert recs[0]["selection"] == {"limit": 2, "subset": None, "images": 2}
    out = capsys.readouterr().out
    assert "demo-mask2former [default] on demo (2 images" in out  # the header names the post-processing
    head = next(x for x in out.splitlines() if x.startswith("model"))
    row = next(x for x in out.splitlines()[::-1] if x.startswith("demo-panoptic-fpn"))
    assert head.split()[1] == "post-processing" and row.split()[1] == "default"


def test_models_of_two_datasets_need_dataset(tmp_path, capsys) -> None:
    rc = main(["eval", "--model", "demo-mask2former,panoptic-fpn_r50_1x", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "different datasets (coco, demo)" in err and "--dataset" in err


def test_missing_coco_names_panbench_data_coco(tmp_path, capsys) -> None:
    rc = main(["eval", "--model", "panoptic-fpn", "--data-root", str(tmp_path / "nothing"), "--results",
               str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "panbench data coco" in err
    from panbench.cli.doctor import data_check

    data = data_check(tmp_path / "nothing")  # doctor's data line (the whole doctor: tests/test_setup_stack.py)
    assert data.name == "data" and not data.ok and "panbench data coco" in data.line()


def test_ls_says_the_demo_weights_are_committed(capsys) -> None:
    assert main(["ls", "--only-dataset", "demo"]) == 0
    lines = capsys.readouterr().out.split("\n\n")[0].splitlines()  # the table; its notes after a blank line
    col = lines[0].split().index("weights")
    assert [x.split()[col] for x in lines[1:]] == ["committed"] * 3


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun test on Linux")
def test_a_torchrun_bar_counts_every_ranks_images(tmp_path) -> None:
    sys.path.insert(0, str(REPO_ROOT / "tests" / "evaluation"))
    from test_torchrun import two_nodes

    root = tmp_path / "data"
    make_split(root, "val2017", 4, seed=2)
    args = ["--model", "demo-panoptic-fpn", "--data-root", str(root), "--device", "cpu", "--workers", "0"]
    r0, r1 = two_nodes([[*args, "--results", str(tmp_path / "n0")], [*args, "--results", str(tmp_path / "n1")]])
    assert r0.returncode == 0 and r1.returncode == 0, r0.stderr[-2000:] + r1.stderr[-2000:]
    assert "eval demo-panoptic-fpn [default] on demo" in r0.stderr
    assert "4/4" in r0.stderr and "2/2" not in r0.stderr, r0.stderr[-2000:]  # the job's images, not rank 0's
    assert "eval demo-panoptic-fpn" not in r1.stderr  # one bar per job
