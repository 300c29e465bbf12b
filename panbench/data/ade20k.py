"""``panbench data ade20k``: ADE20K panoptic val (ADEChallengeData2016 + its instance annotations) converted as
MMDetection 3.3.0's ``ade20k2coco.py --task panoptic`` converts it; docs/datasets.md, "ADE20K", says each rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from panbench.data.datasets import link_or_copy, run_converter
from panbench.data.synth import bbox
from panbench.errors import InputError

# The ADE20K SceneParsing order (objectInfo150.txt; semantic value - 1), mmdet 3.3.0's thing and stuff classes and
# palette (tests/data/test_cityscapes_ade20k.py checks them against the installed mmdet)
SEMANTIC_ORDER = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road, route', 'bed', 'window', 'grass', 'cabinet',
    'sidewalk, pavement', 'person', 'earth, ground', 'door', 'table', 'mountain, mount', 'plant', 'curtain', 'chair',
    'car', 'water', 'painting, picture', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair', 'seat',
    'fence', 'desk', 'rock, stone', 'wardrobe, closet, press', 'lamp', 'tub', 'rail', 'cushion',
    'base, pedestal, stand', 'box', 'column, pillar', 'signboard, sign', 'chest of drawers, chest, bureau, dresser',
    'counter', 'sand', 'sink', 'skyscraper', 'fireplace', 'refrigerator, icebox', 'grandstand, covered stand', 'path',
    'stairs', 'runway', 'case, display case, showcase, vitrine', 'pool table, billiard table, snooker table', 'pillow',
    'screen door, screen', 'stairway, staircase', 'river', 'bridge, span', 'bookcase', 'blind, screen', 'coffee table',
    'toilet, can, commode, crapper, pot, potty, stool, throne', 'flower', 'book', 'hill', 'bench', 'countertop',
    'stove', 'palm, palm tree', 'kitchen island', 'computer', 'swivel chair', 'boat', 'bar', 'arcade machine',
    'hovel, hut, hutch, shack, shanty', 'bus', 'towel', 'light', 'truck', 'tower', 'chandelier',
    'awning, sunshade, sunblind', 'street lamp', 'booth', 'tv', 'airplane', 'dirt track', 'clothes', 'pole',
    'land, ground, soil', 'bannister, banister, balustrade, balusters, handrail',
    'escalator, moving staircase, moving stairway', 'ottoman, pouf, pouffe, puff, hassock', 'bottle',
    'buffet, counter, sideboard', 'poster, posting, placard, notice, bill, card', 'stage', 'van', 'ship', 'fountain',
    'conveyer belt, conveyor belt, conveyer, conveyor, transporter', 'canopy',
    'washer, automatic washer, washing machine', 'plaything, toy', 'pool', 'stool', 'barrel, cask',
    'basket, handbasket', 'falls', 'tent', 'bag', 'minibike, motorbike', 'cradle', 'oven', 'ball', 'food, solid food',
    'step, stair', 'tank, storage tank', 'trade name', 'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher',
    'screen', 'blanket, cover', 'sculpture', 'hood, exhaust hood', 'sconce', 'vase', 'traffic light', 'tray',
    'trash can', 'fan', 'pier', 'crt screen', 'plate', 'monitor', 'bulletin board', 'shower', 'radiator',
    'glass, drinking glass', 'clock', 'flag',
)

# The stuff classes by their index in SEMANTIC_ORDER; mmdet's thing and stuff classes are each in that order
_STUFF = frozenset((0, 1, 2, 3, 4, 5, 6, 9, 11, 13, 16, 17, 21, 25, 26, 28, 29, 34, 40, 46, 48, 51, 52, 54, 59, 60,
                    61, 63, 68, 77, 79, 84, 91, 94, 96, 99, 100, 101, 105, 106, 109, 113, 114, 117, 122, 128, 131,
                    140, 141, 145))
THING_CLASSES = tuple(n for k, n in enumerate(SEMANTIC_ORDER) if k not in _STUFF)
STUFF_CLASSES = tuple(n for k, n in enumerate(SEMANTIC_ORDER) if k in _STUFF)
CLASSES = THING_CLASSES + STUFF_CLASSES  # the JSON's category ids: things first
SEMANTIC_TO_NEW = {k: CLASSES.index(n) for k, n in enumerate(SEMANTIC_ORDER)}  # semantic value - 1 -> JSON id

PALETTE = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80), (140, 140, 140),
    (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70),
    (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200),
    (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220),
    (255, 9, 92), (112, 9, 255), (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20), (255, 8, 41),
    (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140), (250, 10, 15),
    (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255),
    (0, 173, 255), (31, 0, 255), (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112),
    (0, 255, 133), (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0), (0, 82, 255),
    (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153), (255, 92, 0), (255, 0, 255), (255, 0, 245),
    (255, 0, 102), (255, 173, 0), (255, 0, 20), (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255),
    (255, 0, 204), (0, 255, 194), (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255), (163, 255, 0),
    (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255), (255, 0, 31), (0, 184, 255),
    (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255), (112, 224, 255), (70, 184, 160), (163, 0, 255),
    (153, 0, 255), (71, 255, 0), (255, 0, 163), (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0),
    (255, 0, 235), (245, 0, 255), (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255),
    (20, 0, 255), (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255),
    (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255), (184, 255, 0), (0, 133, 255),
    (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
)


def categories() -> list[dict[str, Any]]:
    """The 150 categories of the panoptic JSON, in mmdet's order (things first)."""
    return [{"id": k, "name": n, "isthing": int(k < len(THING_CLASSES)), "color": list(PALETTE[k])}
            for k, n in enumerate(CLASSES)]


def _read_png(path: Path, what: str, channels: int) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise InputError(f"{path}: {what} not found; ADEChallengeData2016 needs annotations/validation/ and "
                         "annotations_instance/validation/ (the instance annotations) beside images/validation/")
    arr = np.asarray(Image.open(path))
    if arr.dtype != np.uint8 or (arr.ndim == 3) != (channels == 3):
        raise InputError(f"{path}: {what} is not an 8-bit {'RGB' if channels == 3 else 'single-channel'} PNG; "
                         "use the official ADEChallengeData2016 files")
    return arr


def convert_image(image_id: str, sem: np.ndarray, ins: np.ndarray, cats: dict[int, dict[str, Any]],
                  where: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One image's panoptic PNG (H x W x 3) and ``segments_info``."""
    from panopticapi.utils import IdGenerator

    pan = np.zeros((*sem.shape, 3), dtype=np.uint8)
    ids = IdGenerator(cats)
    segs: list[dict[str, Any]] = []

    def add(mask: np.ndarray, cid: int) -> None:
        seg_id, color = ids.get_id_and_color(cid)
        pan[mask] = color
        segs.append({"id": int(seg_id), "category_id": cid, "area": int(mask.sum()), "bbox": bbox(mask), "iscrowd": 0})

    semantic = sem.astype(np.int64) - 1  # -1: unlabelled (VOID)
    for sid in np.unique(semantic):
        if sid >= 0 and not cats[SEMANTIC_TO_NEW[int(sid)]]["isthing"]:
            add(semantic == sid, SEMANTIC_TO_NEW[int(sid)])
    cat_ids, inst = ins[..., 0].astype(np.int64) - 1, ins[..., 1]
    for k in np.unique(inst[inst != 0]):
        mask = inst == k
        cid = np.unique(cat_ids[mask])
        if len(cid) != 1 or not 0 <= cid[0] < len(THING_CLASSES):
            raise InputError(f"{where}: instance {k} has category values {(cid + 1).tolist()} in the R channel; "
                             f"expected one of 1-{len(THING_CLASSES)}: use the official annotations_instance PNGs")
        add(mask, int(cid[0]))
    return pan, segs


def prepare_ade20k(root: Path, src: Path) -> Path:
    """Convert ``src`` (ADEChallengeData2016) into ``root`` (see the module docstring); returns ``root``."""
    from PIL import Image

    image_dir = src / "images" / "validation"
    if not image_dir.is_dir():
        raise InputError(f"{image_dir}: not found; --from takes the ADEChallengeData2016 folder (with images/, "
                         "annotations/ and annotations_instance/)")
    files = sorted(p for p in image_dir.iterdir() if p.suffix == ".jpg")
    if not files:
        raise InputError(f"{image_dir}: no .jpg images; --from takes the ADEChallengeData2016 folder")
    cats = categories()
    by_id = {c["id"]: c for c in cats}
    png_dir, img_out = root / "annotations" / "ade20k_panoptic_val", root / "val"
    png_dir.mkdir(parents=True, exist_ok=True)
    img_out.mkdir(parents=True, exist_ok=True)
    np.random.seed(0)  # IdGenerator draws thing colours from numpy's global generator
    images, anns = [], []
    for k, f in enumerate(files, 1):
        image_id = f.stem
        sem = _read_png(src / "annotations" / "validation" / f"{image_id}.png", "semantic annotation", 1)
        ins = _read_png(src / "annotations_instance" / "validation" / f"{image_id}.png", "instance annotation", 3)
        with Image.open(f) as im:
            w, h = im.size
        if sem.shape != (h, w) or ins.shape[:2] != (h, w):
            raise InputError(f"{f}: the image is {w}x{h} but its annotations are {sem.shape[1]}x{sem.shape[0]} "
                             f"and {ins.shape[1]}x{ins.shape[0]}; use the official ADEChallengeData2016 files")
        pan, segs = convert_image(image_id, sem, ins, by_id, str(f))
        Image.fromarray(pan).save(png_dir / f"{image_id}.png")
        link_or_copy(f, img_out / f.name)
        images.append({"id": image_id, "file_name": f.name, "height": h, "width": w})
        anns.append({"image_id": image_id, "file_name": f"{image_id}.png", "segments_info": segs})
        if k % 100 == 0 or k == len(files):
            print(f"\r  {k}/{len(files)} images", end="\n" if k == len(files) else "", flush=True)
    tmp = png_dir.with_suffix(".json.part")  # the JSON written whole or not at all
    tmp.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    tmp.replace(png_dir.with_suffix(".json"))
    return root


def data_command(root: Path, args: Any) -> str:
    """``panbench data ade20k``: convert ``--from`` into ``root``; the line to print."""
    return run_converter(root, args, "ade20k", prepare_ade20k)
