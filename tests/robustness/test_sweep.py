"""Corrupted runs end to end on the demo set: the same numbers with one process, forked processes and
two gloo ranks; a record that says what was corrupted; an interrupted ``panbench robustness`` sweep that
continues where it stopped and ends with the numbers of an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port

from panbench.cli import main
from panbench.data.demo import make_demo
from panbench.package import REPO_ROOT

pytestmark = pytest.mark.slow
PY = sys.executable
DEMO = REPO_ROOT / "data" / "demo"
# impulse noise (random: a seed that differed between processes would change the numbers) and glass blur
# (random, and the corruption panbench computes with its own pixel loop); neither needs the package
CORRUPTED = ["--model", "panoptic-fpn", "--dataset", "demo", "--data-root", str(DEMO), "--limit", "4",
             "--device", "cpu", "--no-progress", "--no-resume"]


def run_eval(results: Path, *args: str) -> int:
    """``panbench eval`` in this process (its forked processes and loader workers forked from it), on one torch
    thread as the gloo ranks' OMP_NUM_THREADS=1 gives them; its exit code."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(["eval", *CORRUPTED, "--results", str(results), *args])
    finally:
        torch.set_num_threads(threads)


def the_record(results: Path) -> dict:
    (path,) = sorted((results / "runs").glob("*.json"))
    return json.loads(path.read_text())


def two_ranks(args: list[str], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """``panbench eval ARGS`` as two gloo ranks of one node (the environment torchrun gives them)."""
    port = str(free_port())
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
               "GROUP_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([PY, "-m", "panbench", "eval", *args], cwd=REPO_ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.time() + timeout
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.time()))
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.fixture(scope="module")
def clean_record(tmp_path_factory) -> dict:
    """The record of the uncorrupted run on the same images, made once for the module's corrupted runs."""
    make_demo(DEMO)
    folder = tmp_path_factory.mktemp("clean")
    assert run_eval(folder, "--cpu-procs", "1") == 0
    return the_record(folder)


@pytest.mark.parametrize("corruption", ["impulse_noise", "glass_blur"])
def test_a_corrupted_run_gives_the_same_numbers_in_one_process_forked_processes_and_two_gloo_ranks(
        tmp_path, corruption, clean_record) -> None:
    c = ["--corruption", corruption, "--severity", "4"]
    assert run_eval(tmp_path / "one", *c, "--cpu-procs", "1", "--workers", "2") == 0
    assert run_eval(tmp_path / "forked", *c, "--cpu-procs", "2") == 0
    ranks = two_ranks([*CORRUPTED, "--results", str(tmp_path / "ranks"), *c, "--workers", "0"])
    assert all(r.returncode == 0 for r in ranks), ranks[0].stderr[-2000:] + ranks[1].stderr[-2000:]
    a, b, d = (the_record(tmp_path / k) for k in ("one", "forked", "ranks"))
    e = clean_record
    assert b["timings"].get("cpu_procs") == 2 and d["world_size"] == 2
    for other in (b, d):
        assert other["metrics"] == a["metrics"] and other["per_class"] == a["per_class"]
        assert other["dataset"] == f"demo+{corruption}-4"
    assert a["metrics"]["PQ"] != e["metrics"]["PQ"]  # the corruption changed what the model saw
    assert a["corruption"]["name"] == corruption and a["corruption"]["severity"] == 4
    assert a["timings"]["corrupt_images"] == 4 and d["timings"]["corrupt_images"] == 4  # every image, every rank
    assert e["dataset"] == "demo" and "corruption" not in e


def test_an_interrupted_sweep_continues_where_it_stopped_and_ends_with_the_same_numbers(
        tmp_path, monkeypatch, capsys) -> None:
    make_demo(DEMO)
    from panbench.evaluation import run as run_mod

    args = ["robustness", "--model", "panoptic-fpn", "--dataset", "demo", "--data-root", str(DEMO), "--limit", "2",
            "--corruptions", "fog,impulse_noise", "--severities", "1", "--device", "cpu", "--cpu-procs", "1",
            "--workers", "0", "--no-progress", "--no-plots"]
    real = run_mod.evaluate_model
    calls = []

    def interrupted(spec, ds, opts, show=None, handle=None):
        calls.append(opts.corruption)
        if len(calls) == 3:  # clean and impulse_noise-1 are done (noise comes first): stop in fog-1, the last run
            raise KeyboardInterrupt
        return real(spec, ds, opts, show, handle)

    monkeypatch.setattr(run_mod, "evaluate_model", interrupted)
    assert main([*args, "--results", str(tmp_path / "res")]) == 130
    monkeypatch.setattr(run_mod, "evaluate_model", real)
    assert main([*args, "--results", str(tmp_path / "res")]) == 0
    err = capsys.readouterr().err
    assert err.count("resuming demo-panoptic-fpn: 2 of 2 images already scored") == 2, err  # the 2 done runs
    assert main([*args, "--results", str(tmp_path / "fresh")]) == 0
    resumed, fresh = ({json.loads(p.read_text())["model"]: json.loads(p.read_text())
                       for p in (tmp_path / d / "robustness").glob("*.json")} for d in ("res", "fresh"))
    a, b = resumed["demo-panoptic-fpn"], fresh["demo-panoptic-fpn"]
    assert a["n_runs"] == b["n_runs"] == 2
    for k in ("clean", "mPC", "rPC", "groups"):
        a_k = {m: v for m, v in a[k].items() if m != "record"}
        b_k = {m: v for m, v in b[k].items() if m != "record"}
        assert a_k == b_k, k
    runs = {(r["corruption"], r["severity"]): r for r in a["runs"]}
    recs = {k: json.loads((tmp_path / "res" / v["record"]).read_text()) for k, v in runs.items()}
    assert [c.label if c else "clean" for c in calls] == ["clean", "impulse_noise-1", "fog-1"]
    assert recs[("impulse_noise", 1)]["timings"]["resumed_images"] == 2  # served by the cache
    assert recs[("fog", 1)]["timings"]["resumed_images"] == 0  # run after the interruption
