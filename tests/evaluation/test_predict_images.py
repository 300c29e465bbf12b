"""``eval --images``: a model on images without ground truth, its predictions saved in the
COCO panoptic format, nothing scored, no record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.evaluation.storage import results_name

MODEL = "demo-maskformer"


@pytest.fixture
def folder(demo_root, tmp_path) -> Path:
    """Four demo val images in a folder of their own, no annotations."""
    d = tmp_path / "my images"
    d.mkdir()
    for f in sorted((demo_root / "val2017").glob("*.jpg"))[:4]:
        shutil.copy(f, d / f.name)
    return d


def test_a_folder_of_images_gives_the_same_predictions_as_the_scored_run(demo_root, folder, tmp_path, capsys) -> None:
    out = tmp_path / "preds"
    rc = main(["eval", "--model", MODEL, "--images", str(folder), "--save-predictions", str(out),
               "--results", str(tmp_path / "res"), "--workers", "0", "--cpu-procs", "2", "--no-progress"])
    assert rc == 0  # no --dataset: the demo model's dataset, its categories from data/demo
    assert not (tmp_path / "res" / "runs").exists()  # nothing scored, no record
    name = results_name("panoptic_my-images", MODEL)
    assert "not scored" in capsys.readouterr().out
    got = json.loads((out / f"{name}.json").read_text())
    stems = sorted(f.stem for f in folder.iterdir())
    assert [a["image_id"] for a in got["annotations"]] == [int(s) if s.isdigit() else s for s in stems]
    cats = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())["categories"]
    assert [(c["id"], c["name"], c["isthing"]) for c in got["categories"]] == \
        [(c["id"], c["name"], c["isthing"]) for c in cats]
    scored = tmp_path / "scored"  # the same images through a scored eval: the same PNGs and segments
    assert main(["eval", "--model", MODEL, "--dataset", "demo", "--data-root", str(demo_root), "--limit", "4",
                 "--results", str(tmp_path / "res2"), "--workers", "0", "--cpu-procs", "1", "--no-progress",
                 "--save-predictions", str(scored)]) == 0
    ref_name = results_name("panoptic_val2017", MODEL)
    ref = json.loads((scored / f"{ref_name}.json").read_text())
    assert [a["segments_info"] for a in ref["annotations"]] == [a["segments_info"] for a in got["annotations"]]
    for a in got["annotations"]:
        assert (out / name / a["file_name"]).read_bytes() == (scored / ref_name / a["file_name"]).read_bytes()


def test_an_image_info_json_names_the_test_dev_results(demo_root, folder, tmp_path) -> None:
    images = [{"id": int(f.stem), "file_name": f.name, "width": 0, "height": 0} for f in sorted(folder.iterdir())]
    images[1].update(width=None, height=None)  # sizes are read from the images; null in the JSON is fine
    info = tmp_path / "image_info_test-dev2017.json"
    info.write_text(json.dumps({"images": images[:3], "categories": [{"id": 1, "name": "person"}]}))  # no isthing
    out = tmp_path / "preds"
    assert main(["eval", "--model", MODEL, "--images", str(info), "--image-dir", str(folder), "--save-predictions",
                 str(out), "--results", str(tmp_path / "res"), "--workers", "0", "--cpu-procs", "1",
                 "--no-progress"]) == 0
    name = results_name("panoptic_test-dev2017", MODEL)  # panoptic_test-dev2017_<method>_results, as COCO asks
    got = json.loads((out / f"{name}.json").read_text())
    assert [a["image_id"] for a in got["annotations"]] == [im["id"] for im in images[:3]]
    assert len(list((out / name).glob("*.png"))) == 3 and len(got["categories"]) > 1  # the dataset's categories
    assert main(["eval", "--model", MODEL, "--images", str(info), "--image-dir", str(folder), "--save-predictions",
                 str(out), "--results", str(tmp_path / "res"), "--workers", "0", "--no-progress"]) == 0


def test_two_images_of_one_file_name_are_refused_before_any_runs(folder, tmp_path, capsys) -> None:
    """An image-info JSON whose images share a file name in two folders: one PNG would overwrite the other."""
    for sub in ("a", "b"):
        (tmp_path / "img" / sub).mkdir(parents=True)
        shutil.copy(sorted(folder.iterdir())[0], tmp_path / "img" / sub / "x.jpg")
    info = tmp_path / "image_info_two.json"
    info.write_text(json.dumps({"images": [{"id": 1, "file_name": "a/x.jpg"}, {"id": 2, "file_name": "b/x.jpg"}]}))
    rc = main(["eval", "--model", MODEL, "--images", str(info), "--image-dir", str(tmp_path / "img"),
               "--save-predictions", str(tmp_path / "out"), "--results", str(tmp_path / "res"), "--workers", "0",
               "--cpu-procs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "x.png" in err and "distinct file names" in err, err
    assert not list((tmp_path / "out").rglob("*.png"))


def test_images_without_save_predictions_is_refused(folder, tmp_path, capsys) -> None:
    rc = main(["eval", "--model", MODEL, "--images", str(folder), "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--save-predictions" in err
    rc = main(["eval", "--model", MODEL, "--images", str(folder), "--image-dir", str(tmp_path), "--results",
               str(tmp_path), "--save-predictions", str(tmp_path / "out")])  # --image-dir would be ignored
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--image-dir goes with an image-info JSON" in err, err


@pytest.mark.slow
def test_torchrun_ranks_predict_one_json(folder, tmp_path) -> None:
    from test_torchrun import two_nodes

    out = tmp_path / "preds"
    args = ["--model", MODEL, "--images", str(folder), "--save-predictions", str(out), "--device", "cpu",
            "--workers", "0", "--no-progress"]
    r0, r1 = two_nodes([[*args, "--results", str(tmp_path / "n0")], [*args, "--results", str(tmp_path / "n1")]])
    assert r0.returncode == 0 and r1.returncode == 0, r0.stderr[-2000:] + r1.stderr[-2000:]
    name = results_name("panoptic_my-images", MODEL)
    got = json.loads((out / f"{name}.json").read_text())
    assert len(got["annotations"]) == 4 and len(list((out / name).glob("*.png"))) == 4
    assert "not scored" in r0.stdout and r1.stdout == ""
