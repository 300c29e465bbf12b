"""The tiny ADEChallengeData2016-format input (synthetic pixels, not real data) that the ADE20K tests convert, and
that scripts/record_ade20k_prepare_fixture.py runs Mask2Former's converter on: one builder, so that the recorded
fixture (tests/fixtures/ade20k_m2f_prepare.json) and the tests see the identical input. A change to the
``edge_cases`` input needs that fixture recorded again (tests/data/test_ade20k_converters.py checks its digest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

H, W = 12, 16
ADE_IDS = ["ADE_val_00000001", "ADE_val_00000002"]
ALL_THINGS_ID = "ADE_val_00000003"  # the third image of the edge_cases input


def make_ade(src: Path, edge_cases: bool = False) -> None:
    """ADEChallengeData2016: images/validation/*.jpg, annotations/validation/*.png (class + 1, 0 = other),
    annotations_instance/validation/*.png (R = instance-challenge class, 1-based; G = instance number).

    Both images: wall, sky (stuff), "other" (VOID), a bed region of which only part has an instance, two persons.
    With ``edge_cases`` (the input of tests/data/test_ade20k_converters.py and its fixture) the second image also
    has a window instance half over window, half over wall pixels (a thing pasted over stuff: the wall keeps its
    area counted before the paste, so the converted ground truth no longer scores 100 against itself), a floor
    region wholly under a second window instance (a stuff segment left with no pixel) and an airplane instance over
    "other" pixels. Window and airplane are the classes whose names Mask2Former spells differently. A third image,
    ``ALL_THINGS_ID``, has one one-pixel instance of each of the 100 instance-challenge classes over wall: the
    instance-to-semantic class mapping, whole."""
    for sub in ("images", "annotations", "annotations_instance"):
        (src / sub / "validation").mkdir(parents=True, exist_ok=True)
        (src / sub / "training").mkdir(parents=True, exist_ok=True)
    for k, image_id in enumerate(ADE_IDS):
        sem = np.full((H, W), 1, np.uint8)  # wall (semantic class 0): stuff
        sem[:2] = 0  # "other": VOID
        sem[2:6, :6] = 3  # sky (stuff)
        sem[6:, :8] = 8  # bed (semantic 7, a thing class)
        sem[6:, 8:12] = 13  # person (semantic 12)
        ins = np.zeros((H, W, 3), np.uint8)
        ins[6:10, :8] = (1, 1, 0)  # a bed (instance class 1); rows 10-11 of the bed region have no instance
        ins[6:, 8:10] = (4, 2, 0)  # a person (instance class 4)
        ins[6:, 10:12] = (4, 3 + k, 0)  # another person
        if k == 1 and edge_cases:
            sem[2, 12:] = 9  # window (semantic 8, a thing class); row 3 below it stays wall
            ins[2:4, 12:] = (2, 5, 0)  # a window (instance class 2) over the window row and a wall row
            sem[4:6, 14:] = 4  # floor (semantic 3, stuff) ...
            ins[4:6, 13:] = (2, 7, 0)  # ... wholly under another window (over two wall pixels too)
            ins[:2, 12:] = (59, 6, 0)  # an airplane (instance class 59, semantic 90) over "other"
        Image.fromarray(np.full((H, W, 3), 30 * k, np.uint8)).save(src / "images" / "validation" / f"{image_id}.jpg")
        Image.fromarray(sem).save(src / "annotations" / "validation" / f"{image_id}.png")
        Image.fromarray(ins).save(src / "annotations_instance" / "validation" / f"{image_id}.png")
    if edge_cases:
        sem = np.full((H, W), 1, np.uint8)  # wall
        ins = np.zeros((H, W, 3), np.uint8)
        for c in range(1, 101):  # instance class c (1-based), instance number c, at pixel c - 1 of a 10 x 10 block
            ins[(c - 1) // 10, (c - 1) % 10] = (c, c, 0)
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(src / "images" / "validation" / f"{ALL_THINGS_ID}.jpg")
        Image.fromarray(sem).save(src / "annotations" / "validation" / f"{ALL_THINGS_ID}.png")
        Image.fromarray(ins).save(src / "annotations_instance" / "validation" / f"{ALL_THINGS_ID}.png")
