"""``eval --save-predictions``: COCO panoptic PNGs + one JSON that ``panbench score`` and
panopticapi read back to the record's metrics exactly, from forked CPU processes, torchrun ranks and
resumed runs; never a JSON that lacks an image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import panopticapi_reference

from panbench.cli import main
from panbench.data.demo import make_split
from panbench.evaluation.storage import results_name, segment_boxes
from panbench.pq.matching import METRIC_KEYS
from panbench.pq.png import read_ids
from panbench.pq.score import score_files

MODEL = "demo-mask2former"
NAME = results_name("panoptic_val2017", MODEL)
NO_FLOPS = ("--flops-images", "0")  # eval's FLOPs pass, a pass of its own after the scoring: not what is checked here


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Six demo images: a small dataset whose ground-truth JSON is exactly the set evaluated."""
    r = tmp_path_factory.mktemp("demo6")
    make_split(r, "val2017", 6, seed=5)
    return r


def _eval(root: Path, results: Path, out: Path | None, *extra: str) -> dict:
    args = ["eval", "--model", MODEL, "--dataset", "demo", "--data-root", str(root), "--results", str(results),
            "--workers", "0", "--no-progress", *NO_FLOPS, *extra]
    if out is not None:
        args += ["--save-predictions", str(out)]
    assert main(args) == 0
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


def _score(root: Path, out: Path) -> dict:
    ann = root / "annotations"
    return score_files(ann / "panoptic_val2017.json", ann / "panoptic_val2017", out / f"{NAME}.json", out / NAME)


def _same_metrics(res: dict, rec: dict) -> None:
    assert {k: res[k] for k in METRIC_KEYS} == rec["metrics"]  # exactly: the same id maps, the same sums
    assert res["per_class"] == rec["per_class"] and res["n_images"] == rec["n_images"]


def test_score_and_panopticapi_read_the_saved_predictions_back_to_the_record(root, tmp_path) -> None:
    out = tmp_path / "preds"
    rec = _eval(root, tmp_path / "res", out, "--cpu-procs", "2")  # two forked processes write PNGs
    _same_metrics(_score(root, out), rec)
    ann = root / "annotations"
    ref = panopticapi_reference(ann / "panoptic_val2017.json", ann / "panoptic_val2017", out / f"{NAME}.json",
                                out / NAME)
    for k in METRIC_KEYS:
        assert ref[k] == pytest.approx(rec["metrics"][k], abs=1e-9)
    data = json.loads((out / f"{NAME}.json").read_text())
    gt = json.loads((ann / "panoptic_val2017.json").read_text())
    assert [c["id"] for c in data["categories"]] == [c["id"] for c in gt["categories"]]
    assert [a["image_id"] for a in data["annotations"]] == [im["id"] for im in gt["images"]]
    assert rec["provenance"]["predictions"]["json"] == str(out / f"{NAME}.json")
    for a in data["annotations"]:  # area and bbox from the PNG, computed here the slow way
        ids = read_ids(out / NAME / a["file_name"], "test")
        assert a["segments_info"] and {s["iscrowd"] for s in a["segments_info"]} == {0}
        for s in a["segments_info"]:
            ys, xs = np.nonzero(ids == s["id"])
            assert s["area"] == len(ys)
            assert s["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_boxes_match_the_ground_truths_own() -> None:
    ids = np.zeros((5, 7), np.uint32)
    ids[1:3, 2:6] = 7
    ids[4, 0] = 9
    ids[0, 6] = 9  # one segment in two pieces: its box spans both
    segs = segment_boxes(ids, [{"id": 9, "category_id": 2}, {"id": 7, "category_id": 1}])
    assert segs == [{"id": 9, "category_id": 2, "iscrowd": 0, "area": 2, "bbox": [0, 0, 7, 5]},
                    {"id": 7, "category_id": 1, "iscrowd": 0, "area": 8, "bbox": [2, 1, 4, 2]}]


def test_resume_runs_again_the_cached_images_whose_prediction_is_missing(root, tmp_path) -> None:
    res = tmp_path / "res"
    first = _eval(root, res, None, "--cpu-procs", "1")  # fills the cache, saves nothing
    out = tmp_path / "preds"
    second = _eval(root, res, out, "--cpu-procs", "1")
    t = second["timings"]
    assert t["resumed_images"] == 0 and t["timed_images"] + t["warmup_images"] == 6  # all run again for the PNGs
    _same_metrics(_score(root, out), second)
    assert second["metrics"] == first["metrics"]
    (out / NAME / json.loads((out / f"{NAME}.json").read_text())["annotations"][2]["file_name"]).unlink()
    third = _eval(root, res, out, "--cpu-procs", "1")
    t = third["timings"]
    assert t["resumed_images"] == 5 and t["timed_images"] + t["warmup_images"] == 1  # only the image without PNG
    _same_metrics(_score(root, out), third)


def test_predictions_of_another_run_are_refused_or_replaced(root, tmp_path, capsys) -> None:
    out = tmp_path / "preds"
    _eval(root, tmp_path / "res", out, "--limit", "2", "--cpu-procs", "1")
    args = ["eval", "--model", MODEL, "--dataset", "demo", "--data-root", str(root), "--results",
            str(tmp_path / "res"), "--workers", "0", "--no-progress", "--save-predictions", str(out), *NO_FLOPS]
    assert main(args) == 2  # another image set: another run
    err = capsys.readouterr().err
    assert "of another run" in err and "--no-resume" in err and err.count("\n") == 1
    rec = _eval(root, tmp_path / "res", out, "--no-resume", "--cpu-procs", "1")
    _same_metrics(_score(root, out), rec)


def test_a_json_that_cannot_be_written_does_not_lose_the_record(root, tmp_path, capsys) -> None:
    """Writing the predictions JSON fails at the end of the run (here a folder stands where it goes): the
    record is written all the same, and the error names the file, the fix and the record, in one line."""
    out, res = tmp_path / "preds", tmp_path / "res"
    (out / f"{NAME}.json").mkdir(parents=True)
    args = ["eval", "--model", MODEL, "--dataset", "demo", "--data-root", str(root), "--results", str(res),
            "--workers", "0", "--no-progress", "--cpu-procs", "1", "--save-predictions", str(out), *NO_FLOPS]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the scores are in" in err
    assert f"{NAME}.json: a folder where panbench writes a file; move it away" in err
    rec = json.loads(sorted((res / "runs").glob("*.json"))[-1].read_text())
    assert rec["n_images"] == 6 and rec["provenance"]["predictions"] is None
    assert str(res / "runs") in err and not list(out.glob("*.tmp*"))  # no temporary file left behind
    (out / f"{NAME}.json").rmdir()
    again = _eval(root, res, out, "--cpu-procs", "1")  # the rerun takes every image from the cache
    assert again["timings"]["resumed_images"] == 6 and again["metrics"] == rec["metrics"]
    _same_metrics(_score(root, out), again)


@pytest.mark.slow
def test_torchrun_ranks_write_one_json(root, tmp_path) -> None:
    from test_torchrun import two_nodes

    out = tmp_path / "preds"
    args = ["--model", MODEL, "--dataset", "demo", "--data-root", str(root), "--device", "cpu", "--workers", "0",
            "--no-progress", "--save-predictions", str(out), *NO_FLOPS]
    r0, r1 = two_nodes([[*args, "--results", str(tmp_path / "n0")], [*args, "--results", str(tmp_path / "n1")]])
    assert r0.returncode == 0 and r1.returncode == 0, r0.stderr[-2000:] + r1.stderr[-2000:]
    rec = json.loads(sorted((tmp_path / "n0" / "runs").glob("*.json"))[-1].read_text())
    assert rec["world_size"] == 2 and not (tmp_path / "n1" / "runs").exists()
    _same_metrics(_score(root, out), rec)


@pytest.mark.slow
def test_torchrun_json_that_cannot_be_written_keeps_the_record_and_stops_both_ranks_in_one_line(root,
                                                                                                 tmp_path) -> None:
    from test_torchrun import two_nodes

    out = tmp_path / "preds"
    (out / f"{NAME}.json").mkdir(parents=True)  # rank 0 cannot write the JSON at the end
    args = ["--model", MODEL, "--dataset", "demo", "--data-root", str(root), "--device", "cpu", "--workers", "0",
            "--no-progress", "--save-predictions", str(out), *NO_FLOPS]
    r0, r1 = two_nodes([[*args, "--results", str(tmp_path / "n0")], [*args, "--results", str(tmp_path / "n1")]])
    for r in (r0, r1):
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "a folder where panbench writes a file" in r0.stderr and "the scores are in" in r0.stderr
    rec = json.loads(sorted((tmp_path / "n0" / "runs").glob("*.json"))[-1].read_text())
    assert rec["world_size"] == 2 and rec["n_images"] == 6 and rec["provenance"]["predictions"] is None


@pytest.mark.slow
def test_torchrun_nodes_that_do_not_share_the_folder_stop_before_any_image_runs(root, tmp_path) -> None:
    """Two nodes whose --save-predictions folders differ (a path on each machine's own disk): rank 0 could
    never assemble the JSON, so both ranks stop in one line at the start, not after the whole run."""
    from test_torchrun import two_nodes

    args = ["--model", MODEL, "--dataset", "demo", "--data-root", str(root), "--device", "cpu", "--workers", "0",
            "--no-progress", "--results", str(tmp_path / "res")]
    runs = two_nodes([[*args, "--save-predictions", str(tmp_path / f"p{k}")] for k in range(2)])
    for r in runs:
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "not shared" in r.stderr, r.stderr[-2000:]
    assert not list(tmp_path.glob("p*/*/*.png"))  # no image ran


def test_no_json_is_written_while_an_image_lacks_its_prediction(root, tmp_path) -> None:
    from panbench.data.datasets import load_dataset
    from panbench.errors import PanbenchError
    from panbench.evaluation.storage import PredictionWriter

    ds = load_dataset(root, name="demo")
    w = PredictionWriter(tmp_path, "panoptic_val2017", MODEL, "k1", ds.samples, [])
    w.prepare(fresh=False)
    for s in ds.samples[:5]:  # the sixth image never written (a rank on another machine, a lost file)
        w.write(s, np.ones((4, 4), np.uint32), [{"id": 1, "category_id": 1}])
    with pytest.raises(PanbenchError, match="predictions of 1 image"):
        w.finish({})
    assert not w.json_path.exists()
    w.write(ds.samples[5], np.ones((4, 4), np.uint32), [{"id": 1, "category_id": 1}])
    assert w.load_saved() == set(range(6)) and w.finish({}).is_file()
