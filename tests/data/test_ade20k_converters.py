"""panbench's ADE20K conversion (MMDetection 3.3.0's ade20k2coco: things first) against Mask2Former's own
``datasets/prepare_ade20k_pan_seg.py`` (the converter behind Mask2Former's published ADE20K numbers), both on the
tiny input of ``tests/data/ade_tiny.py`` (``make_ade(src, edge_cases=True)``, with one instance of each of the 100
instance-challenge classes). Mask2Former's output is read from
``tests/fixtures/ade20k_m2f_prepare.json``, written by ``scripts/record_ade20k_prepare_fixture.py``, which runs
that file, unchanged, at the commit the fixture names (no network here, and no Mask2Former checkout in CI).

What the two give alike: the same segments per image (the same pixel sets in the PNGs, the same JSON ``area``,
counted before things are pasted over stuff, ``iscrowd`` 0, in the same order), the same VOID, the same images and
the same thing/stuff split. What differs: two category names (Mask2Former's ``'window '`` and ``'plane'``, mmdet's
``'window'`` and ``'airplane'``), the numbering (Mask2Former's ids are the semantic order, 0 = wall; panbench's are
mmdet's, the 100 things then the 50 stuff classes, each group in the semantic order), and hence the segment ids
(colours), which are not compared. A model trained on one JSON is scored on the other by mapping its classes by
name, with those two names."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
from ade_tiny import ALL_THINGS_ID, make_ade  # tests/data/ade_tiny.py

from panbench.cli import main
from panbench.data import ade20k
from panbench.package import REPO_ROOT

pytest.importorskip("panopticapi", reason="panopticapi-lite (scripts/setup.sh installs it)")

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "ade20k_m2f_prepare.json"
SCRIPT = REPO_ROOT / "scripts" / "record_ade20k_prepare_fixture.py"
RECORD = f".venv/bin/python {SCRIPT.relative_to(REPO_ROOT)}"
# Mask2Former's category names where they are not mmdet's (and panbench's): the only two
M2F_NAMES = {"window ": "window", "plane": "airplane"}


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_ade20k_prepare_fixture", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def m2f() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """panbench's conversion of the fixture's input, described as the script describes Mask2Former's."""
    tmp = tmp_path_factory.mktemp("ade20k")
    src, root = tmp / "ADEChallengeData2016", tmp / "out"
    make_ade(src, edge_cases=True)
    assert main(["data", "ade20k", "--from", str(src), "--root", str(root)]) == 0
    rec = script()
    ann = root / "annotations"
    return {"input_digest": rec.input_digest(src),
            **rec.describe(ann / "ade20k_panoptic_val.json", ann / "ade20k_panoptic_val")}


def test_the_fixture_is_of_the_commit_the_script_names(m2f: dict[str, Any]) -> None:
    rec = script()
    assert m2f["mask2former_commit"] == rec.M2F_COMMIT, f"record the fixture again: {RECORD} ... --commit"
    doc = rec.__doc__ or ""
    assert f"--commit {rec.M2F_COMMIT}" in doc and f"Mask2Former at {rec.M2F_COMMIT}" in doc
    assert sorted(m2f["git_blobs"]) == sorted(rec.SOURCES)  # which versions of the files ran


def test_the_fixture_is_of_this_input(ours: dict[str, Any], m2f: dict[str, Any]) -> None:
    assert ours["input_digest"] == m2f["input_digest"], (
        f"tests/data/ade_tiny.py's edge_cases input changed: record {FIXTURE.name} again ({RECORD}, see its --help)")


def test_category_names_differ_in_window_and_plane_only(m2f: dict[str, Any]) -> None:
    """Mask2Former's names in its id order are the ADE20K semantic order but for two spellings."""
    assert [c[0] for c in m2f["categories"]] == list(range(150))
    pairs = [(c[1], s) for c, s in zip(m2f["categories"], ade20k.SEMANTIC_ORDER, strict=True) if c[1] != s]
    assert dict(pairs) == M2F_NAMES


def test_numbering_maps_by_name_from_semantic_order_to_things_first(ours: dict[str, Any], m2f: dict[str, Any]) -> None:
    """Mask2Former numbers the categories in the semantic order (0 = wall), panbench (mmdet) the things first:
    mapping by name (with M2F_NAMES) takes Mask2Former's id k to its rank among the things, or 100 + its rank among
    the stuff, ranks in Mask2Former's order; the thing/stuff split is the same."""
    theirs_by_id = {cid: (name, isthing) for cid, name, isthing in m2f["categories"]}
    ours_by_name = {name: (cid, isthing) for cid, name, isthing in ours["categories"]}
    assert len(ours_by_name) == 150
    to_ours = {cid: ours_by_name[M2F_NAMES.get(name, name)][0] for cid, (name, _) in theirs_by_id.items()}
    assert sorted(to_ours.values()) == list(range(150))  # one to one
    assert all(ours_by_name[M2F_NAMES.get(n, n)][1] == t for n, t in theirs_by_id.values())  # same split
    things = [cid for cid, (_, t) in theirs_by_id.items() if t]
    stuff = [cid for cid, (_, t) in theirs_by_id.items() if not t]
    assert (len(things), len(stuff)) == (100, 50)
    assert to_ours == {cid: k for k, cid in enumerate(things + stuff)}
    assert to_ours != {cid: cid for cid in to_ours}  # the numbering does differ: 0 is wall there, bed here
    assert (theirs_by_id[0][0], ours["categories"][0][1], to_ours[0]) == ("wall", "bed", 100)
    assert to_ours == ade20k.SEMANTIC_TO_NEW  # the map panbench's conversion applies to the semantic annotations


def test_same_segments_pixel_sets_and_void(ours: dict[str, Any], m2f: dict[str, Any]) -> None:
    """Per image, the same segments in the same order: category (by name, M2F_NAMES applied), JSON area,
    iscrowd, the pixel set in the PNG; the same VOID pixel count and the same images."""
    assert ours["images"] == m2f["images"]
    assert list(ours["annotations"]) == list(m2f["annotations"])
    for image_id, theirs in m2f["annotations"].items():
        mapped = [{**s, "category": M2F_NAMES.get(s["category"], s["category"])} for s in theirs["segments"]]
        assert ours["annotations"][image_id]["segments"] == mapped, image_id
        assert ours["annotations"][image_id]["void_pixels"] == theirs["void_pixels"], image_id
    # the input's edge cases are in the recorded output, so the comparison covers them
    segs = [s for a in m2f["annotations"].values() for s in a["segments"]]
    assert {"window ", "plane"} <= {s["category"] for s in segs}
    assert any(s["category"] == "wall" and s["area"] > s["pixels"] > 0 for s in segs)  # a thing over stuff
    assert any(s["category"] == "floor" and s["area"] > s["pixels"] == 0 for s in segs)  # a stuff under a thing
    # and every instance-challenge class once: Mask2Former maps them to semantic classes by its
    # ade20k_instance_catid_mapping.txt, mmdet (and panbench) by position among the things in the semantic order
    thing_names = {name for _, name, isthing in m2f["categories"] if isthing}
    assert [s["category"] for s in m2f["annotations"][ALL_THINGS_ID]["segments"][1:]] == sorted(
        thing_names, key=[c[1] for c in m2f["categories"]].index)
