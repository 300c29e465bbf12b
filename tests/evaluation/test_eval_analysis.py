"""The analyses through `panbench eval`: the record carries them and equals `score` (the library) on the
same predicted maps; one process, forked CPU processes, a resumed run and torchrun (gloo, 2 ranks) give
the same metrics, analyses, AP and mIoU and per-image file, bit for bit (forked processes: every image in the
resume cache; torchrun: one record with the whole job's timings); --boundary is part of the resume-cache key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import analysis_fields, free_port

from panbench.cli import main
from panbench.package import REPO_ROOT

pytestmark = pytest.mark.slow
PY = sys.executable
VENV_BIN = Path(sys.executable).parent
LIMIT = 12  # bootstrap MIN_IMAGES (10): the runs get intervals; torchrun: 10 timed images after a warm-up image per
# rank (MIN_TIMED_IMAGES): the whole job's images/s
FIELDS = ("metrics", "per_class", *analysis_fields(boundary=True))
# eval's only: AP (the instance output), mIoU's source, and the fields of the user's evaluator every run adds
# (examples/evaluators/image_count.py: it runs in each forked process and rank, and resumes from the cache)
EVAL_FIELDS = ("ap", "ap_source", "miou", "miou_source", "evaluators")
IMAGE_COUNT = f"{REPO_ROOT / 'examples' / 'evaluators' / 'image_count.py'}:ImageCount"


def eval_args(demo_root: Path, results: Path, *extra: str) -> list[str]:
    return ["eval", "--model", "mask2former", "--dataset", "demo", "--data-root", str(demo_root), "--results",
            str(results), "--workers", "0", "--no-progress", "--device", "cpu", "--limit", str(LIMIT), "--boundary",
            "--evaluator", IMAGE_COUNT, "--flops-images", "0", *extra]  # FLOPs: not compared here


def run(args: list[str], torchrun: bool = False) -> subprocess.CompletedProcess:
    head = [str(VENV_BIN / "torchrun"), "--nproc-per-node", "2", "--master-port", str(free_port())] if torchrun \
        else [PY]
    return subprocess.run([*head, "-m", "panbench", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)


def record(results: Path) -> dict:
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


def same_run(a: Path, b: Path) -> None:
    """Records with the same metrics and analyses, per-image files with the same arrays."""
    ra, rb = record(a), record(b)
    for k in FIELDS + EVAL_FIELDS:
        assert ra[k] == rb[k], k
    za, zb = np.load(a / ra["analysis_file"]), np.load(b / rb["analysis_file"])
    assert za.files == zb.files
    for k in za.files:
        assert za[k].dtype == zb[k].dtype and np.array_equal(za[k], zb[k], equal_nan=za[k].dtype.kind == "f"), k


@pytest.fixture(scope="module")
def one_process(demo_root, tmp_path_factory) -> Path:
    """The reference run, in this process, its predicted maps captured (:class:`_Capture`)."""
    from panbench.evaluation import run as run_mod

    results = tmp_path_factory.mktemp("one")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(run_mod, "Evaluators", _Capture.make(run_mod.Evaluators))
        assert main(eval_args(demo_root, results, "--no-resume", "--cpu-procs", "1", "--cache-every", "2")) == 0
    return results


class _Capture:
    """Records the predicted maps the evaluation scores (and scores them as it would)."""

    maps: dict[int, tuple[np.ndarray, list]] = {}

    @classmethod
    def make(cls, base):
        class Capturing(base):
            def score(self, index, gt_ids, gt_segs, pred_ids, pred_segs, where, *rest):
                cls.maps[index] = (np.array(pred_ids, copy=True), list(pred_segs))
                return super().score(index, gt_ids, gt_segs, pred_ids, pred_segs, where, *rest)
        return Capturing


def test_record_equals_score_of_the_same_maps(one_process, demo_root, tmp_path, capsys) -> None:
    from panbench.data.synth import write_png

    capsys.readouterr()
    rec = record(one_process)
    assert rec["schema"] == 2 and set(FIELDS) <= set(rec) and rec["analysis_file"].endswith(".analysis.npz")
    # the same maps, written as COCO panoptic predictions, through `panbench score`
    gt = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    images = gt["images"][:LIMIT]
    anns = {a["image_id"]: a for a in gt["annotations"]}
    gt_small = {**gt, "images": images, "annotations": [anns[im["id"]] for im in images]}
    (tmp_path / "gt.json").write_text(json.dumps(gt_small))
    (tmp_path / "pred").mkdir()
    pred = []
    for k, im in enumerate(images):
        ids, segs = _Capture.maps[k]
        name = anns[im["id"]]["file_name"]
        write_png(tmp_path / "pred" / name, ids)
        pred.append({"image_id": im["id"], "file_name": name, "segments_info": segs})
    (tmp_path / "pred.json").write_text(json.dumps({"annotations": pred}))
    assert main(["score", "--gt-json", str(tmp_path / "gt.json"), "--gt-dir",
                 str(demo_root / "annotations" / "panoptic_val2017"), "--pred-json", str(tmp_path / "pred.json"),
                 "--pred-dir", str(tmp_path / "pred"), "--json", "--boundary"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in rec["metrics"]} == rec["metrics"] and out["per_class"] == rec["per_class"]
    # score reads the segments' scores from the JSON; the model's own threshold only eval knows (object_mask_thr)
    assert rec["score_threshold"].pop("own")["threshold"] == 0.8 and out["score_threshold"].pop("own") is None
    rec["score_threshold"].pop("gain"), out["score_threshold"].pop("gain")
    for k in FIELDS[2:]:
        assert out[k] == rec[k], k
    assert rec["errors"] and sum(v["count"] for v in rec["errors"].values()) > 0  # a real model makes errors


def test_forked_cpu_processes_give_the_same_numbers_and_analyses_and_cache_every_image(
        one_process, demo_root, tmp_path, capsys) -> None:
    r = run(eval_args(demo_root, tmp_path, "--no-resume", "--cpu-procs", "2"))
    assert r.returncode == 0, r.stderr
    rec = record(tmp_path)
    assert rec["timings"]["cpu_procs"] == 2 and rec["n_images"] == LIMIT
    assert rec["timings"]["timed_images"] + rec["timings"]["warmup_images"] == LIMIT
    assert rec["ap"]["AP"] > 0 and rec["miou"] > 0  # AP and mIoU computed: same_run compares them
    same_run(tmp_path, one_process)
    # every image went into the resume cache, whichever process scored it
    capsys.readouterr()
    assert main(eval_args(demo_root, tmp_path, "--cpu-procs", "2")) == 0
    assert f"{LIMIT} of {LIMIT} images already scored" in capsys.readouterr().err


def test_a_resumed_run_gives_the_same_analyses(one_process, demo_root, tmp_path) -> None:
    """Resumed into forked processes: each one's evaluators (the user's too) start empty beside the cached images."""
    shutil.copytree(one_process / "cache", tmp_path / "cache")
    chunks = sorted((tmp_path / "cache").glob("*/chunk-*.npz"))
    assert len(chunks) == LIMIT // 2
    for c in chunks[1::2]:  # every other chunk of two images is scored again
        c.unlink()
    kept = 2 * len(chunks[::2])
    r = run(eval_args(demo_root, tmp_path, "--cpu-procs", "2"))
    assert r.returncode == 0, r.stderr
    assert f"{kept} of {LIMIT} images already scored" in r.stderr, r.stderr
    assert record(tmp_path)["timings"]["cpu_procs"] == 2
    same_run(tmp_path, one_process)


def test_boundary_is_part_of_the_cache_key(one_process, demo_root, tmp_path, capsys) -> None:
    shutil.copytree(one_process / "cache", tmp_path / "cache")
    args = [a for a in eval_args(demo_root, tmp_path, "--cpu-procs", "1") if a != "--boundary"]
    capsys.readouterr()
    assert main(args) == 0
    assert "resuming" not in capsys.readouterr().err
    rec = record(tmp_path)
    assert "boundary" not in rec and rec["metrics"] == record(one_process)["metrics"]
    assert rec["ci"] == record(one_process)["ci"]


def test_torchrun_two_ranks_give_the_same_numbers_and_analyses_and_the_whole_jobs_timings(
        one_process, demo_root, tmp_path) -> None:
    r = run(eval_args(demo_root, tmp_path, "--no-resume"), torchrun=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = record(tmp_path)
    assert rec["world_size"] == 2 and len(list((tmp_path / "runs").glob("*.json"))) == 1
    assert rec["n_images"] == LIMIT
    same_run(tmp_path, one_process)
    t = rec["timings"]  # the whole job's timings, not rank 0's: every image counted once
    assert t["timed_images"] + t["warmup_images"] == LIMIT and t["world_size"] == 2
    assert t["images_per_s"] == pytest.approx(t["timed_images"] / t["wall_s"])


def test_the_users_evaluator_sees_every_image_once(one_process, demo_root) -> None:
    from panbench.data.datasets import load_dataset

    ds = load_dataset(demo_root, name="demo", limit=LIMIT)
    segments = sum(len(s.gt_ann["segments_info"]) for s in ds.samples)
    assert record(one_process)["evaluators"] == {"ImageCount": {"images": LIMIT, "gt_segments": segments}}
