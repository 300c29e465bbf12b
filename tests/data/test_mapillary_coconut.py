"""`panbench data mapillary|coconut --from DIR` on tiny inputs in each release's layout (tests/data/tiny_releases.py:
synthetic pixels, Mapillary's real category list), then `load_dataset` and `score` on what was put in place; and the
one-line refusals (exit 2) of a release with a piece missing."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from tiny_releases import COCO_IDS, VISTAS_IDS, make_coconut, make_vistas, vistas_categories

from panbench.cli import main
from panbench.data.catalog import DATASETS
from panbench.data.datasets import load_dataset
from panbench.errors import InputError


@pytest.fixture(scope="module")
def vistas_cats(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return vistas_categories(tmp_path_factory.mktemp("m2f"))


def _self_pq(root: Path, name: str, capsys: pytest.CaptureFixture[str]) -> dict:
    """`panbench score` of the ground truth put under ``root`` against itself."""
    j, d = str(root / "annotations" / f"{name}_panoptic_val.json"), str(root / "annotations" / f"{name}_panoptic_val")
    capsys.readouterr()
    assert main(["score", "--gt-json", j, "--gt-dir", d, "--pred-json", j, "--pred-dir", d, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line `panbench` prints on stderr refusing ``argv`` (exit 2, no traceback)."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_mapillarys_card_counts_mask2formers_v12_categories(vistas_cats) -> None:
    card = DATASETS["mapillary"].card
    assert [c["id"] for c in vistas_cats] == list(range(1, card.classes + 1))  # ids 1-65, as its label order says
    assert sum(c["isthing"] for c in vistas_cats) == card.things


@pytest.mark.parametrize(("nesting", "from_validation"), [("panoptic", False), ("v1.2/panoptic", False),
                                                          ("panoptic", True)])
def test_mapillary_v12_val_is_linked_from_either_nesting(nesting, from_validation, vistas_cats, tmp_path,
                                                         capsys) -> None:
    src, root = tmp_path / "vistas", tmp_path / "out"
    src_json = make_vistas(src, vistas_cats, nesting)
    from_dir = src / "validation" if from_validation else src
    assert main(["data", "mapillary", "--from", str(from_dir), "--root", str(root)]) == 0
    assert "2 images, 65 categories (37 things)" in capsys.readouterr().out
    assert (root / "annotations" / "mapillary_panoptic_val.json").read_bytes() == src_json.read_bytes()  # as released
    ds = load_dataset(root, name="mapillary")
    assert ds.image_ids == VISTAS_IDS  # string ids
    for s in ds.samples:
        assert s.image_path.read_bytes() == (src / "validation" / "images" / f"{s.image_id}.jpg").read_bytes()
        assert s.gt_png.read_bytes() == (src_json.parent / f"{s.image_id}.png").read_bytes()
    sub = tmp_path / "subset.txt"
    sub.write_text(f"{VISTAS_IDS[1]}\n")
    assert load_dataset(root, name="mapillary", subset=sub).image_ids == [VISTAS_IDS[1]]
    res = _self_pq(root, "mapillary", capsys)
    assert res["PQ"] == res["PQ_th"] == res["PQ_st"] == 100.0 and res["n_categories"]["Things"] == 2


def test_mapillary_missing_pieces_are_refused_on_one_line(vistas_cats, tmp_path, capsys) -> None:
    def convert(src: Path) -> str:
        return _refused(["data", "mapillary", "--from", str(src), "--root", str(tmp_path / "out")], capsys)

    (tmp_path / "empty" / "validation").mkdir(parents=True)
    err = convert(tmp_path / "empty")
    assert (f"{tmp_path / 'empty' / 'validation'}: neither panoptic/panoptic_2018.json nor "
            "v1.2/panoptic/panoptic_2018.json is there") in err
    make_vistas(tmp_path / "no-png", vistas_cats)
    (tmp_path / "no-png" / "validation" / "panoptic" / f"{VISTAS_IDS[1]}.png").unlink()
    err = convert(tmp_path / "no-png")
    assert f"{VISTAS_IDS[1]}.png: not found (the panoptic PNG of image '{VISTAS_IDS[1]}')" in err
    make_vistas(tmp_path / "no-images", vistas_cats)
    for f in (tmp_path / "no-images" / "validation" / "images").iterdir():
        f.unlink()
    (tmp_path / "no-images" / "validation" / "images").rmdir()
    assert "validation/images: the validation images folder is not found" in convert(tmp_path / "no-images")
    src_json = make_vistas(tmp_path / "int-ids", vistas_cats)
    data = json.loads(src_json.read_text())
    data["images"][0]["id"] = data["annotations"][0]["image_id"] = 1
    src_json.write_text(json.dumps(data))
    assert "image 1: not a string id with a .jpg file" in convert(tmp_path / "int-ids")
    assert not (tmp_path / "out" / "annotations" / "mapillary_panoptic_val.json").exists()  # nothing half-prepared
    with pytest.raises(InputError, match=r"mapillary_panoptic_val.json: dataset 'mapillary' not found; .*"
                                         r"`panbench data mapillary --from DIR`"):
        load_dataset(tmp_path / "out", name="mapillary")


@pytest.mark.parametrize("pngs", ["folder", "zip-root", "zip-folder"])
def test_coconut_relabeled_val_is_put_in_place_from_its_folder_or_zip(pngs, tmp_path, capsys) -> None:
    src, root = tmp_path / "coconut", tmp_path / "out"
    src_json = make_coconut(src, pngs)
    pngs_before = {}
    if pngs != "folder":
        with zipfile.ZipFile(src / "relabeled_coco_val.zip") as zf:
            pngs_before = {n: zf.read(n) for n in zf.namelist()}
    assert main(["data", "coconut", "--from", str(src), "--root", str(root), "--coco-root", str(tmp_path / "no")]) == 0
    assert "2 images, 133 categories (80 things)" in capsys.readouterr().out
    assert (root / "annotations" / "coconut_panoptic_val.json").read_bytes() == src_json.read_bytes()
    ds = load_dataset(root, name="coconut")
    assert ds.image_ids == COCO_IDS and all(s.image_path.is_file() for s in ds.samples)
    for s in ds.samples:
        name = s.gt_png.name
        before = (src / "relabeled_coco_val" / name).read_bytes() if pngs == "folder" else pngs_before[
            name if pngs == "zip-root" else f"relabeled_coco_val/{name}"]
        assert s.gt_png.read_bytes() == before
    res = _self_pq(root, "coconut", capsys)
    assert res["PQ"] == res["PQ_th"] == res["PQ_st"] == 100.0


def test_coconut_takes_cocos_val2017_from_the_coco_root(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_coconut(tmp_path / "a", images=tmp_path / "data" / "coco" / "val2017")  # the default COCO root
    assert main(["data", "coconut", "--from", "a", "--root", "out-a"]) == 0
    assert load_dataset(tmp_path / "out-a", name="coconut").samples[1].image_path.read_bytes() == (
        tmp_path / "data" / "coco" / "val2017" / f"{COCO_IDS[1]:012d}.jpg").read_bytes()
    make_coconut(tmp_path / "b", images=tmp_path / "elsewhere" / "val2017")
    assert main(["data", "coconut", "--from", "b", "--root", "out-b", "--coco-root", "elsewhere"]) == 0
    (tmp_path / "elsewhere" / "val2017" / f"{COCO_IDS[1]:012d}.jpg").unlink()
    err = _refused(["data", "coconut", "--from", "b", "--root", "out-c", "--coco-root", "elsewhere"], capsys)
    assert f"{COCO_IDS[1]:012d}.jpg: an image that relabeled_coco_val.json names not found (1 of 2 missing)" in err
    assert "pass --coco-root DIR" in err


def test_coconut_categories_must_be_cocos_where_cocos_json_is(tmp_path, capsys) -> None:
    coco = tmp_path / "coco"
    src_json = make_coconut(tmp_path / "c", images=coco / "val2017")
    cats = json.loads(src_json.read_text())["categories"]
    (coco / "annotations").mkdir()
    (coco / "annotations" / "panoptic_val2017.json").write_text(json.dumps({"categories": cats}))
    argv = ["data", "coconut", "--from", str(tmp_path / "c"), "--root", str(tmp_path / "o"), "--coco-root", str(coco)]
    assert main(argv) == 0
    cats[5]["name"] = "renamed"
    (coco / "annotations" / "panoptic_val2017.json").write_text(json.dumps({"categories": cats}))
    err = _refused([*argv, "--force"], capsys)
    assert f"its categories differ from COCO's {coco / 'annotations' / 'panoptic_val2017.json'}" in err
    assert f"id {cats[5]['id']}: 'class {cats[5]['id']}' against 'renamed'" in err


def test_coconut_missing_pieces_are_refused_on_one_line(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    err = _refused(["data", "coconut", "--from", str(tmp_path / "empty"), "--root", str(tmp_path / "o"),
                    "--coco-root", str(tmp_path / "none")], capsys)
    assert f"{tmp_path / 'empty'}: relabeled_coco_val.json not found, neither relabeled_coco_val/ nor " in err
    assert "val2017 images are in neither" in err and "pass --coco-root DIR" in err and "huggingface.co" in err
    make_coconut(tmp_path / "zip", "zip-root")
    with zipfile.ZipFile(tmp_path / "zip" / "relabeled_coco_val.zip") as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(tmp_path / "zip" / "relabeled_coco_val.zip", "w") as zf:
        zf.writestr(f"{COCO_IDS[0]:012d}.png", entries[f"{COCO_IDS[0]:012d}.png"])
    err = _refused(["data", "coconut", "--from", str(tmp_path / "zip"), "--root", str(tmp_path / "o")], capsys)
    assert f"relabeled_coco_val.zip: no entry {COCO_IDS[1]:012d}.png" in err
    make_coconut(tmp_path / "dir")
    (tmp_path / "dir" / "relabeled_coco_val" / f"{COCO_IDS[0]:012d}.png").unlink()
    err = _refused(["data", "coconut", "--from", str(tmp_path / "dir"), "--root", str(tmp_path / "o")], capsys)
    assert f"{COCO_IDS[0]:012d}.png: a PNG that relabeled_coco_val.json names not found" in err
    assert not (tmp_path / "o" / "annotations" / "coconut_panoptic_val.json").exists()


def test_eval_runs_on_prepared_mapillary_and_its_record_names_the_card(vistas_cats, tmp_path, capsys) -> None:
    """`panbench eval --dataset mapillary` on what `panbench data mapillary` put in place (a random-init transformers
    model whose labels are the 65 categories): string image ids end to end, the record stamped with the card."""
    pytest.importorskip("transformers")
    import csv

    import hf_tiny  # tests/hf_tiny.py

    src, root, results = tmp_path / "vistas", tmp_path / "mapillary", tmp_path / "results"
    make_vistas(src, vistas_cats)
    assert main(["data", "mapillary", "--from", str(src), "--root", str(root)]) == 0
    model = hf_tiny.build("mask2former", load_dataset(root, name="mapillary").categories.names, tmp_path / "model")
    assert main(["eval", "--model", f"hf:{model}", "--dataset", "mapillary", "--data-root", str(root), "--results",
                 str(results), "--workers", "0", "--cpu-procs", "1", "--no-progress",
                 "--pipeline", "transformers"]) == 0
    with open(results / "runs.csv") as f:
        rec = json.loads((results / list(csv.DictReader(f))[-1]["record"]).read_text())
    assert rec["dataset"] == "mapillary" and rec["provenance"]["dataset"]["image_ids"] == VISTAS_IDS
    assert rec["provenance"]["dataset"]["card"] == DATASETS["mapillary"].card.stamp()
