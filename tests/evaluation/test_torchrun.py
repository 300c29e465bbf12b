"""Two torchrun "nodes" on one machine (gloo, --device cpu): each process gets the environment
torchrun gives it (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT), started
directly so that its stderr is panbench's own.  A rank that fails stops every rank in one line,
and --no-resume cleans each node's cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import free_port, save_zoo_style_checkpoint

from panbench.data.demo import make_demo, make_split
from panbench.models.registry import resolve
from panbench.package import REPO_ROOT

pytestmark = pytest.mark.slow
PY = sys.executable


def two_nodes(args_per_node: list[list[str]], timeout: float = 240) -> list[subprocess.CompletedProcess]:
    """Run `panbench eval ARGS` as global rank k on node k (one process per node), concurrently."""
    port = str(free_port())
    procs = []
    for rank, args in enumerate(args_per_node):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1",
               "GROUP_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([PY, "-m", "panbench", "eval", *args], cwd=REPO_ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.time() + timeout
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a rank hung: the other rank's failure did not stop it")
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def _lines(text: str) -> list[str]:
    return [x for x in text.strip().splitlines() if x.strip()]


def test_a_failing_rank_stops_the_other_node_in_one_line(tmp_path) -> None:
    root = tmp_path / "data"
    make_split(root, "val2017", 4, seed=3)
    images = json.loads((root / "annotations" / "panoptic_val2017.json").read_text())["images"]
    (root / "val2017" / images[1]["file_name"]).write_bytes(b"not a jpeg")  # image 1: rank 1's shard
    ckpt = save_zoo_style_checkpoint(resolve("demo-mask2former", dataset="demo")[0], tmp_path / "ck")
    args = ["--model", "mask2former", "--dataset", "demo", "--data-root", str(root), "--device", "cpu",
            "--workers", "0", "--no-progress", "--checkpoint", str(ckpt), "--results", str(tmp_path / "res")]
    r0, r1 = two_nodes([args, args])
    assert r1.returncode == 2 and len(_lines(r1.stderr)) == 1 and "cannot be decoded" in r1.stderr, r1.stderr
    assert r0.returncode == 2, r0.stderr[-3000:]
    assert len(_lines(r0.stderr)) == 1 and "another rank stopped" in r0.stderr and "Traceback" not in r0.stderr, \
        r0.stderr[-3000:]
    assert not (tmp_path / "res" / "runs").exists()  # no record of a partial run


def test_no_resume_cleans_the_cache_of_every_node(tmp_path, capsys) -> None:
    from panbench.cli import main

    make_demo(REPO_ROOT / "data" / "demo")
    common = ["--model", "mask2former", "--dataset", "demo", "--data-root", str(REPO_ROOT / "data" / "demo"),
              "--device", "cpu", "--workers", "0", "--no-progress", "--limit", "4", "--cpu-procs", "1"]
    node0, node1 = tmp_path / "node0", tmp_path / "node1"  # each node's own disk
    # in this process: leaves node 1 a cache of every image
    assert main(["eval", *common, "--results", str(node1)]) == 0, capsys.readouterr().err
    stale = sorted(node1.glob("cache/*/chunk-*.npz"))
    assert stale
    r0, r1 = two_nodes([[*common, "--results", str(node0), "--no-resume"],
                        [*common, "--results", str(node1), "--no-resume"]])
    assert r0.returncode == 0 and r1.returncode == 0, r0.stderr[-2000:] + r1.stderr[-2000:]
    assert not any(p.exists() for p in stale), "node 1 kept its stale cache under --no-resume"
    rec = json.loads(sorted((node0 / "runs").glob("*.json"))[-1].read_text())
    t = rec["timings"]
    assert rec["n_images"] == 4 and t["timed_images"] + t["warmup_images"] == 4  # every image run, none resumed


def test_cpu_ranks_build_mmdet_models_on_a_node_with_fewer_gpus_than_ranks(monkeypatch) -> None:
    """mmengine's logger looks a rank's GPU up by LOCAL_RANK; a CPU rank 1 beside one GPU (seen on an H100:
    'model does not build (IndexError: list index out of range)') is named by its local rank instead.  One GPU is
    faked here (labelled): torch.cuda.is_available and device_count."""
    import torch
    from mmengine.logging import logger

    from panbench.models.mmdet.mm import init_mmdet

    init_mmdet()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert logger._get_device_id() == 0
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert logger._get_device_id() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-5e0f")  # a MIG device: mmengine names it by its UUID
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert logger._get_device_id() == "MIG-5e0f"


def test_mmdet_stacks_compile_warnings_stay_off_stderr(tmp_path) -> None:
    """Python 3.12+ compiling mmdet 3.3 without writing bytecode warns of its docstrings' escapes (seen on a GPU
    machine's Python 3.12: four lines before a rank's one-line error); panbench's own files still warn.  Python
    3.11 gives a DeprecationWarning there, so the warning is issued as the compiler issues it (by file name)."""
    import warnings

    from panbench.models.mmdet.mm import quiet_library_warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_library_warnings()
        for f in ("/env/site-packages/mmdet/models/backbones/trident_resnet.py", "/env/mmengine/x.py", "/env/mine.py"):
            warnings.warn_explicit("invalid escape sequence '\\i'", SyntaxWarning, f, 236)
    assert [w.filename for w in seen] == ["/env/mine.py"]
