"""Reliability: bad input (exit 2, one line, results intact), determinism, a cache of another checkpoint not
reused, and a bad image in a forked process.  Real processes where the process is the subject (forked processes);
the command in-process (``panbench.cli.main``) where the test is about what it computes or says.  On the first
``N`` demo images.  A SIGKILL mid-run then a resume: tests/evaluation/test_user_evaluator.py; forked CPU processes
and torchrun (gloo) matching one process: tests/evaluation/test_eval_analysis.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import save_zoo_style_checkpoint

from panbench.cli import main
from panbench.data.demo import make_split
from panbench.models.registry import resolve
from panbench.package import REPO_ROOT

pytestmark = pytest.mark.slow
PY = sys.executable
N = 8  # demo images of each run


def eval_cmd(results: Path, *extra: str, model: str = "mask2former") -> list[str]:
    return [PY, "-m", "panbench", "eval", "--model", model, "--dataset", "demo", "--data-root",
            str(REPO_ROOT / "data" / "demo"), "--results", str(results), "--workers", "0", "--no-progress",
            "--limit", str(N), "--device", "cpu", *extra]  # cpu: the same on a GPU (forked processes, gloo, exact)


def in_process(cmd: list[str]) -> int:
    """``cmd`` (``python -m panbench ...``) run by ``panbench.cli.main`` in this process; its exit code."""
    assert cmd[:3] == [PY, "-m", "panbench"]
    return main(cmd[3:])


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, **kw)


def metrics_of(results: Path) -> tuple[dict, dict, int]:
    rec = json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())
    return rec["metrics"], rec["per_class"], rec["n_images"]


@pytest.fixture(scope="module")
def clean_run(demo_root, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("clean")
    assert in_process(eval_cmd(results, "--no-resume", "--cpu-procs", "1")) == 0  # the single-process reference
    return results


def test_two_runs_give_identical_metrics(clean_run, tmp_path) -> None:
    assert in_process(eval_cmd(tmp_path, "--no-resume", "--cpu-procs", "1")) == 0
    assert metrics_of(tmp_path) == metrics_of(clean_run)


def test_cache_of_another_checkpoint_is_not_reused(clean_run, tmp_path, capsys) -> None:
    ckpt = save_zoo_style_checkpoint(resolve("demo-mask2former", dataset="demo")[0], tmp_path / "ck")
    shutil.copytree(clean_run / "cache", tmp_path / "res" / "cache")
    assert in_process(eval_cmd(tmp_path / "res", "--checkpoint", str(ckpt), "--cpu-procs", "1")) == 0
    assert "resuming" not in capsys.readouterr().err
    assert metrics_of(tmp_path / "res")[0] != metrics_of(clean_run)[0]


def test_bad_image_in_a_forked_process_is_one_line(tmp_path) -> None:
    root = tmp_path / "data"
    make_split(root, "val2017", 6, seed=3)
    images = json.loads((root / "annotations" / "panoptic_val2017.json").read_text())["images"]
    (root / "val2017" / images[1]["file_name"]).write_bytes(b"not a jpeg")  # image 1: the forked process's shard
    ckpt = save_zoo_style_checkpoint(resolve("demo-mask2former", dataset="demo")[0], tmp_path / "ck")
    r = run([PY, "-m", "panbench", "eval", "--model", "mask2former", "--dataset", "demo", "--data-root", str(root),
             "--results", str(tmp_path / "res"), "--no-progress", "--checkpoint", str(ckpt), "--cpu-procs", "2",
             "--device", "cpu"])
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "cannot be decoded" in lines[0] and images[1]["file_name"] in lines[0], r.stderr


# ---- bad input: exit 2, one line naming the file and the fix, no traceback, earlier results intact ----

@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """Three generated images, a checkpoint, and a results folder with one run of them: made once."""
    base = tmp_path_factory.mktemp("small")
    make_split(base / "data", "val2017", 3, seed=7)
    save_zoo_style_checkpoint(resolve("demo-mask2former", dataset="demo")[0], base / "ck")
    assert main(_small_cmd(base)[3:]) == 0
    return base


def _small_cmd(base: Path) -> list[str]:
    ckpt = next((base / "ck").glob("*.pth"))
    return [PY, "-m", "panbench", "eval", "--model", "mask2former", "--dataset", "demo", "--data-root",
            str(base / "data"), "--results", str(base / "results"), "--workers", "0", "--no-progress",
            "--cpu-procs", "1", "--checkpoint", str(ckpt)]


@pytest.fixture
def small(small_run, tmp_path) -> dict:
    """A copy of :func:`small_run`'s folder of this test's own, to break."""
    base = tmp_path / "small"
    shutil.copytree(small_run, base)
    return {"root": base / "data", "results": base / "results", "cmd": _small_cmd(base),
            "ckpt": next((base / "ck").glob("*.pth")), "ann": base / "data" / "annotations" / "panoptic_val2017.json"}


def _refused(cmd: list[str], capsys) -> str:
    """``cmd`` run in-process: exit code 2 and one line on stderr, which is returned."""
    capsys.readouterr()
    assert in_process(cmd) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _edit_json(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def _first_image(s) -> Path:
    return sorted((s["root"] / "val2017").glob("*.jpg"))[0]


BAD = {
    "corrupt_image": (lambda s: _first_image(s).write_bytes(b"not a jpeg at all"), "cannot be decoded"),
    "truncated_image": (lambda s: _first_image(s).write_bytes(_first_image(s).read_bytes()[:300]),
                        "cannot be decoded"),
    "missing_ground_truth": (lambda s: sorted((s["root"] / "annotations" / "panoptic_val2017").glob("*.png"))[0]
                             .unlink(), "not found; re-download the dataset"),
    "missing_field": (lambda s: _edit_json(s["ann"], lambda d: d["annotations"][0]["segments_info"][0].pop("area")),
                      "missing field 'area'"),
    "escaping_name": (lambda s: _edit_json(s["ann"], lambda d: d["images"][0].update(file_name="../../x.jpg")),
                      "points outside"),
    "unknown_category": (lambda s: _edit_json(s["ann"], lambda d: d["annotations"][0]["segments_info"][0].update(
        category_id=999)), "unknown category_id 999"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_dataset_input(small, name, capsys) -> None:
    breaker, expected = BAD[name]
    csv_before = (small["results"] / "runs.csv").read_text()
    breaker(small)
    assert expected in _refused(small["cmd"] + ["--no-resume"], capsys)
    assert (small["results"] / "runs.csv").read_text() == csv_before
    assert all(json.loads(p.read_text())["n_images"] == 3 for p in (small["results"] / "runs").glob("*.json"))


def test_checkpoint_of_another_architecture(small, tmp_path, capsys) -> None:
    other = save_zoo_style_checkpoint(resolve("demo-maskformer", dataset="demo")[0], tmp_path / "ck2")
    cmd = [c if c != str(small["ckpt"]) else str(other) for c in small["cmd"]]
    assert "does not fit the model" in _refused(cmd, capsys)


@pytest.mark.parametrize("body,expected", [
    (f"_base_ = '{REPO_ROOT / 'configs' / 'demo' / 'mask2former.py'}'\nmodel = dict(type='NoSuchNet')\n",
     "model does not build"),
    ("_base_ = 'mmdet::no/such_config.py'\n", "config does not load"),
    ("this is not python(\n", "not valid Python"),
])
def test_config_that_does_not_build(small, tmp_path, body, expected, capsys) -> None:
    cfg = tmp_path / "bad_config.py"
    cfg.write_text(body)
    cmd = [c if c != "mask2former" else str(cfg) for c in small["cmd"]]
    assert expected in _refused(cmd, capsys)
