"""`panbench data cityscapes|ade20k --from DIR` on tiny inputs built here in each official format
(synthetic pixels, not real data), then `score` and `load_dataset` on what was converted."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from ade_tiny import ADE_IDS, make_ade  # noqa: F401  (tests/data/ade_tiny.py; test_converted_eval imports it here)
from PIL import Image

from panbench.cli import main
from panbench.data.datasets import load_dataset
from panbench.package import REPO_ROOT

H, W = 12, 16
CITY_IDS = ["frankfurt_000000_000294", "lindau_000001_000019"]


def rgb2id(png: Path) -> np.ndarray:
    a = np.asarray(Image.open(png)).astype(np.int64)
    return a[..., 0] + 256 * a[..., 1] + 256 * 256 * a[..., 2]


def make_cityscapes(src: Path) -> None:
    """gtFine/val/<city>/*_gtFine_{instanceIds,labelIds}.png (16-bit / 8-bit) and leftImg8bit/val/<city>/."""
    for k, image_id in enumerate(CITY_IDS):
        city = image_id.split("_")[0]
        inst = np.full((H, W), 7, np.uint16)  # road (stuff, label id 7)
        inst[:2] = 0  # unlabeled: VOID
        inst[2:4, :4] = 1  # ego vehicle (ignoreInEval): VOID
        inst[4:8, 2:6] = 26000 + k  # car instance
        inst[4:8, 8:12] = 26001 + k  # another car
        inst[9:, 10:] = 26  # a crowd of cars (class id < 1000)
        inst[9:, :3] = 24000  # a person
        for what, arr in (("instanceIds", inst), ("labelIds", np.where(inst >= 1000, inst // 1000, inst))):
            d = src / "gtFine" / "val" / city
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr.astype(np.uint16 if what == "instanceIds" else np.uint8)).save(
                d / f"{image_id}_gtFine_{what}.png")
        d = src / "leftImg8bit" / "val" / city
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W, 3), 40 * k, np.uint8)).save(d / f"{image_id}_leftImg8bit.png")


def test_cityscapes_conversion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cityscapesscripts", reason="pip install cityscapesscripts (scripts/setup.sh does)")
    src, root = tmp_path / "cs", tmp_path / "out"
    make_cityscapes(src)
    assert main(["data", "cityscapes", "--from", str(src), "--root", str(root)]) == 0
    assert "2 images, 19 categories (8 things)" in capsys.readouterr().out
    data = json.loads((root / "annotations" / "cityscapes_panoptic_val.json").read_text())
    cats = {c["id"]: c for c in data["categories"]}
    assert cats[26]["name"] == "car" and cats[26]["isthing"] == 1 and cats[7]["isthing"] == 0
    assert 0 not in cats and 1 not in cats  # ignored labels are no category
    assert [im["id"] for im in data["images"]] == CITY_IDS  # string image ids
    ann = data["annotations"][0]
    assert ann["image_id"] == CITY_IDS[0] and ann["file_name"] == f"{CITY_IDS[0]}_gtFine_panoptic.png"
    segs = {s["id"]: s for s in ann["segments_info"]}
    assert set(segs) == {7, 26, 26000, 26001, 24000}
    assert (segs[26]["category_id"], segs[26]["iscrowd"]) == (26, 1)  # crowd region
    assert (segs[7]["category_id"], segs[7]["iscrowd"]) == (7, 0)  # stuff: never crowd
    assert (segs[26000]["category_id"], segs[26000]["iscrowd"], segs[26000]["area"]) == (26, 0, 16)
    assert segs[24000]["bbox"] == [0, 9, 3, 3]
    ids = rgb2id(root / "annotations" / "cityscapes_panoptic_val" / ann["file_name"])
    assert (ids[:4, :4] == 0).all()  # unlabeled and ego vehicle: VOID
    assert ids[5, 3] == 26000 and ids[10, 12] == 26 and ids[8, 0] == 7
    assert data["images"][1]["file_name"] == f"{CITY_IDS[1]}_gtFine_leftImg8bit.png"  # cityscapesscripts' name
    assert (root / "val" / f"{CITY_IDS[1]}_gtFine_leftImg8bit.png").is_file()
    ds = load_dataset(root, name="cityscapes")
    assert ds.image_ids == CITY_IDS and ds.samples[0].image_path.is_file()
    sub = tmp_path / "subset.txt"
    sub.write_text(f"{CITY_IDS[1]}\n")
    assert load_dataset(root, name="cityscapes", subset=sub).image_ids == [CITY_IDS[1]]
    _score_self(root / "annotations", "cityscapes", capsys)


def _score_self(ann: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Ground truth scored against itself through `panbench score`: PQ 100, things and stuff present."""
    j, d = str(ann / f"{name}_panoptic_val.json"), str(ann / f"{name}_panoptic_val")
    assert main(["score", "--gt-json", j, "--gt-dir", d, "--pred-json", j, "--pred-dir", d, "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["PQ"] == res["PQ_th"] == res["PQ_st"] == 100.0
    assert res["n_categories"]["Things"] >= 2 and res["n_categories"]["Stuff"] >= 1


def test_cityscapes_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "cs"
    (src / "gtFine" / "val").mkdir(parents=True)
    assert main(["data", "cityscapes", "--from", str(src), "--root", str(tmp_path / "o")]) == 2
    assert "gtFine_instanceIds.png" in capsys.readouterr().err
    make_cityscapes(src)
    (src / "leftImg8bit" / "val" / "lindau" / f"{CITY_IDS[1]}_leftImg8bit.png").unlink()
    assert main(["data", "cityscapes", "--from", str(src), "--root", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{CITY_IDS[1]}_leftImg8bit.png: image not found" in err and "Traceback" not in err
    assert main(["eval", "--model", str(REPO_ROOT / "configs" / "mask2former_r50.py"), "--dataset", "cityscapes",
                 "--data-root", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "cityscapes_panoptic_val.json: dataset 'cityscapes' not found" in err
    assert "panbench data cityscapes --from DIR" in err


def test_ade20k_conversion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("panopticapi", reason="panopticapi-lite (scripts/setup.sh installs it)")
    src, root = tmp_path / "ADEChallengeData2016", tmp_path / "out"
    make_ade(src)
    assert main(["data", "ade20k", "--from", str(src), "--root", str(root)]) == 0
    assert "2 images, 150 categories (100 things)" in capsys.readouterr().out
    data = json.loads((root / "annotations" / "ade20k_panoptic_val.json").read_text())
    cats = data["categories"]
    assert [c["id"] for c in cats] == list(range(150))
    assert (cats[0]["name"], cats[0]["isthing"], cats[3]["name"]) == ("bed", 1, "person")
    assert (cats[100]["name"], cats[100]["isthing"], cats[99]["isthing"]) == ("wall", 0, 1)
    assert [im["id"] for im in data["images"]] == ADE_IDS
    ann = data["annotations"][0]
    assert ann["file_name"] == f"{ADE_IDS[0]}.png"
    by_cat: dict[int, list] = {}
    for s in ann["segments_info"]:
        by_cat.setdefault(s["category_id"], []).append(s)
        assert s["iscrowd"] == 0
    sky = [c["id"] for c in cats if c["name"] == "sky"][0]
    assert sorted(by_cat) == [0, 3, 100, sky]  # bed, person, wall, sky: no stuff segment for thing classes
    assert len(by_cat[3]) == 2 and by_cat[0][0]["area"] == 32
    ids = rgb2id(root / "annotations" / "ade20k_panoptic_val" / ann["file_name"])
    assert (ids[:2] == 0).all() and (ids[10:, :8] == 0).all()  # "other", and bed pixels with no instance: VOID
    assert ids[3, 2] == by_cat[sky][0]["id"] and ids[7, 3] == by_cat[0][0]["id"]
    assert len({int(v) for v in np.unique(ids)} - {0}) == 4 + 1  # wall, sky, bed, two persons
    assert (root / "val" / f"{ADE_IDS[0]}.jpg").is_file()
    assert load_dataset(root, name="ade20k").image_ids == ADE_IDS
    _score_self(root / "annotations", "ade20k", capsys)
    first = (root / "annotations" / "ade20k_panoptic_val" / ann["file_name"]).read_bytes()
    assert main(["data", "ade20k", "--from", str(src), "--root", str(root), "--force"]) == 0
    assert (root / "annotations" / "ade20k_panoptic_val" / ann["file_name"]).read_bytes() == first  # seeded ids


def test_ade20k_matches_mmdet_converter(tmp_path: Path) -> None:
    """Same JSON and PNGs as MMDetection 3.3.0's own tools/dataset_converters/ade20k2coco.py (run here on
    the same tiny input, numpy seeded alike), but for its thing bounding boxes (a typo there)."""
    import importlib.util

    mmdet = pytest.importorskip("mmdet")
    tool = Path(mmdet.__file__).parent / ".mim" / "tools" / "dataset_converters" / "ade20k2coco.py"
    if not tool.is_file():
        pytest.skip(f"{tool} not installed")
    src, root = tmp_path / "ADEChallengeData2016", tmp_path / "out"
    make_ade(src)
    assert main(["data", "ade20k", "--from", str(src), "--root", str(root)]) == 0
    spec = importlib.util.spec_from_file_location("ade20k2coco", tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # mmengine's ProgressBar writes to the sys.stdout of mmengine's import, closed when an earlier test imported it
    mod.ProgressBar = functools.partial(mod.ProgressBar, file=sys.stdout)
    np.random.seed(0)
    mod.prepare_panoptic_annotations(str(src))
    theirs = json.loads((src / "ade20k_panoptic_val.json").read_text())
    ours = json.loads((root / "annotations" / "ade20k_panoptic_val.json").read_text())
    assert ours["categories"] == theirs["categories"] and ours["images"] == theirs["images"]
    for a, b in zip(ours["annotations"], theirs["annotations"], strict=True):
        for s in a["segments_info"] + b["segments_info"]:
            s.pop("bbox")
        assert a == b
        assert (rgb2id(root / "annotations" / "ade20k_panoptic_val" / a["file_name"])
                == rgb2id(src / "ade20k_panoptic_val" / b["file_name"])).all()


def test_ade20k_categories_match_mmdet() -> None:
    """The category lists copied into panbench.data.ade20k are mmdet's."""
    pytest.importorskip("mmdet")
    from panbench.ops import install

    install()  # mmdet.datasets imports mmcv.ops
    from mmdet.datasets.ade20k import ADE20KPanopticDataset

    from panbench.data import ade20k

    meta = ADE20KPanopticDataset.METAINFO
    assert ade20k.THING_CLASSES == tuple(meta["thing_classes"]) and ade20k.STUFF_CLASSES == tuple(meta["stuff_classes"])
    assert [list(c) for c in ade20k.PALETTE] == [list(c) for c in meta["palette"]]
    assert sorted(ade20k.SEMANTIC_ORDER) == sorted(meta["classes"])


def test_ade20k_missing_instances(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "ADEChallengeData2016"
    make_ade(src)
    (src / "annotations_instance" / "validation" / f"{ADE_IDS[1]}.png").unlink()
    assert main(["data", "ade20k", "--from", str(src), "--root", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{ADE_IDS[1]}.png: instance annotation not found" in err and "Traceback" not in err
