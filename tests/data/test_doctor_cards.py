"""`panbench doctor`'s data lines: a prepared dataset is held to its protocol card (data/catalog.py's ``Card``:
images, categories, things), one line for each dataset prepared under its default folder. The datasets are tiny
Mapillary Vistas and COCONut releases (tests/data/tiny_releases.py) put in place by `panbench data`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tiny_releases import make_coconut, make_vistas, vistas_categories

from panbench.cli import main
from panbench.cli.doctor import data_check, data_checks
from panbench.data.catalog import DATASETS

MAPILLARY = Path("data/mapillary")  # its default folder, under the test's working directory


@pytest.fixture
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    """Mapillary's tiny release put in data/mapillary of a fresh working directory (2 images, 65 categories)."""
    monkeypatch.chdir(tmp_path)
    make_vistas(tmp_path / "vistas", vistas_categories(tmp_path / "m2f"))
    assert main(["data", "mapillary", "--from", "vistas"]) == 0
    capsys.readouterr()
    return MAPILLARY


def test_a_dataset_with_its_cards_counts_passes(prepared, monkeypatch) -> None:
    row = DATASETS["mapillary"]
    monkeypatch.setitem(DATASETS, "mapillary", replace(row, card=replace(row.card, images=2)))
    root = prepared.rename("mine")  # --data-root mine: the dataset known by its files, not by its folder's name
    check = data_check(root)
    assert check.ok, check.line()
    assert check.detail == "Mapillary Vistas panoptic val at mine (2 images, 65 categories, 37 things: as its card v1)"


def test_a_subset_of_the_cards_images_is_a_note_naming_n_of_m(prepared) -> None:
    check = data_check(prepared)
    assert not check.ok and not check.required
    assert check.line().startswith("[note]") and "a subset, 2 of 2000 images (65 categories, 37 things" in check.detail


def test_other_category_counts_fail_with_the_fix_to_prepare_it_again(prepared) -> None:
    ann = prepared / "annotations" / "mapillary_panoptic_val.json"
    data = json.loads(ann.read_text())
    data["categories"] = [c for c in data["categories"] if c["name"] != "Ego Vehicle"]  # a stuff class no segment uses
    ann.write_text(json.dumps(data))
    line = data_check(prepared).line()
    assert line.startswith("[FAIL]") and "2 images, 64 categories, 37 things, but its card v1 says 2000 images, 65 " \
                                          "categories, 37 things" in line
    assert line.endswith("-> fix: prepare it again with `panbench data mapillary --from DIR --force`")


def test_each_dataset_prepared_in_its_folder_has_a_line(prepared, tmp_path, capsys) -> None:
    make_coconut(tmp_path / "coconut")
    assert main(["data", "coconut", "--from", "coconut"]) == 0
    capsys.readouterr()
    lines = data_checks(Path("data/coco"))
    assert [c.name for c in lines] == ["data", "data/mapillary", "data/coconut"]
    assert lines[0].detail == "no COCO-layout panoptic val at data/coco"
    assert "2 of 2000 images" in lines[1].detail and "2 of 5000 images (133 categories, 80 things" in lines[2].detail
    asked = data_checks(MAPILLARY)  # --data-root data/mapillary: its line is the first, and only once
    assert [c.name for c in asked] == ["data", "data/coconut"] and asked[0].detail.startswith("Mapillary Vistas")
