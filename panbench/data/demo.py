"""``panbench data demo``: a small synthetic panoptic dataset in COCO layout, made offline in seconds from its seed
(docs/demo.md), one segment per stuff class and image as in COCO's panoptic format."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from panbench.announce import announce, steps
from panbench.data import datasets
from panbench.data.synth import bbox, merge_stuff, random_image, write_png
from panbench.errors import InputError, PanbenchError
from panbench.locks import exclusive
from panbench.pq.stuff_rule import repeated_stuff, stuff_rule_message

# Listed things first, as COCO's panoptic JSON does: mmdet numbers a model's classes in the JSON's order
# and treats the first num_things_classes as things.  The ids are non-contiguous and interleave.
DEMO_CATEGORIES: list[dict[str, Any]] = [
    {"id": i, "name": name, "isthing": thing, "color": color, "supercategory": "demo"} for i, name, thing, color in (
        (1, "disk", 1, [220, 20, 60]), (4, "tile", 1, [0, 160, 60]), (8, "ring", 1, [250, 170, 30]),
        (15, "blob", 1, [120, 40, 200]), (3, "sky", 0, [70, 130, 180]), (7, "grass", 0, [60, 170, 40]),
        (12, "wall", 0, [150, 100, 100]), (21, "sand", 0, [210, 190, 140]))]

SPLITS = {"train2017": (0, 480), "val2017": (1, 60)}  # split: (seed offset, number of images)
# the generator's version, written in the stamp beside the seed: a set stamped by another version (or by none) is
# written again, so that the files are the ones this version writes
GENERATOR = "2"


def _texture(rng: np.random.Generator, cat: dict[str, Any], h: int, w: int) -> np.ndarray:
    """A class-specific texture: base color plus a pattern that tells the stuff classes apart."""
    base = np.array(cat["color"], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    name = cat["name"]
    if name == "sky":
        pat = (yy / max(h, 1))[..., None] * 40
    elif name == "grass":
        pat = rng.normal(0, 25, (h, w, 1))
    elif name == "wall":
        pat = (((yy // 6).astype(int) + (xx // 12).astype(int)) % 2)[..., None] * 35.0
    elif name == "sand":
        pat = np.sin(xx / 3.0 + yy / 5.0)[..., None] * 20
    else:  # things: instance shade + light noise
        pat = rng.normal(0, 8, (h, w, 1)) + rng.uniform(-30, 30)
    return np.clip(base + pat, 0, 255)


def paint_label_map(rng: np.random.Generator, ids: np.ndarray, segments: list[dict[str, Any]]) -> np.ndarray:
    """The RGB image of a label map: each segment its category's texture, VOID gray noise, things outlined dark."""
    h, w = ids.shape
    img = rng.normal(128, 40, (h, w, 3)).clip(0, 255)  # VOID: gray noise
    by_id = {c["id"]: c for c in DEMO_CATEGORIES}
    for s in segments:
        m = ids == s["id"]
        img[m] = _texture(rng, by_id[s["category_id"]], h, w)[m]
    for s in segments:  # dark outlines on things make touching instances separable
        if by_id[s["category_id"]]["isthing"]:
            m = ids == s["id"]
            edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
            img[edge] *= 0.5
    return img.astype(np.uint8)


def _image_id(split: str, k: int) -> int:
    """The id of the ``k``-th image of ``split`` (its files are named after it, 12 digits)."""
    return 1000 * (1 + list(SPLITS).index(split)) + k


def make_split(root: Path, split: str, n: int, seed: int) -> None:
    """Write one split: images, panoptic PNGs and the JSON."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img_dir, png_dir = root / split, root / "annotations" / f"panoptic_{split}"
    img_dir.mkdir(parents=True, exist_ok=True)
    png_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for k in steps(f"writing the {split} images of the demo set in {root}", range(n)):
        image_id = _image_id(split, k)
        h, w = int(rng.integers(96, 161)), int(rng.integers(128, 209))
        if h == w:
            w += 8
        pim = random_image(rng, h, w, DEMO_CATEGORIES, n_stuff=(2, 4), n_things=(1, 8),
                           void_fraction=float(rng.uniform(0.01, 0.03)), crowd_prob=0.08)
        name = f"{image_id:012d}"
        Image.fromarray(paint_label_map(rng, pim.ids, pim.segments_info)).save(img_dir / f"{name}.jpg", quality=95)
        pim = merge_stuff(pim, DEMO_CATEGORIES)  # after the painting, which draws from rng per region drawn
        write_png(png_dir / f"{name}.png", pim.ids)
        for s in pim.segments_info:
            s["bbox"] = bbox(pim.ids == s["id"])
        images.append({"id": image_id, "file_name": f"{name}.jpg", "height": h, "width": w})
        anns.append({"image_id": image_id, "file_name": f"{name}.png", "segments_info": pim.segments_info})
    data = {"info": {"description": "panbench demo (synthetic)", "seed": seed}, "images": images,
            "annotations": anns, "categories": DEMO_CATEGORIES}
    ann_file = root / "annotations" / f"panoptic_{split}.json"
    if refused := stuff_rule_message(ann_file, repeated_stuff(anns, DEMO_CATEGORIES), DEMO_CATEGORIES,
                                     "the demo generator merges them (panbench.data.synth.merge_stuff); please report"):
        raise PanbenchError(refused)
    ann_file.write_text(json.dumps(data))


def stamp_text(seed: int) -> str:
    """What ``make_demo`` writes in ``ROOT/.panbench-demo``: the seed and the generator's version."""
    return f"{seed} {GENERATOR}"


def stamped_seed(root: Path) -> tuple[str, bool] | None:
    """The seed of the set at ``root`` and whether this generator's version wrote it; None where none is stamped."""
    stamp = Path(root) / ".panbench-demo"
    if not stamp.exists():
        return None
    seed, _, version = stamp.read_text().strip().partition(" ")
    return seed, version == GENERATOR


def make_demo(root: Path, seed: int = 0, force: bool = False) -> Path:
    """Generate the demo dataset under ``root`` (kept when there with the same seed; another seed needs ``force``)."""
    root = Path(root)
    if not force and stamped_seed(root) == (str(seed), True):
        return root
    lock = root.parent / f".{root.name}.lock"
    try:  # its folder and the lock beside the set: where neither can be made (/proc, a file in the way, read-only)
        root.parent.mkdir(parents=True, exist_ok=True)
        open(lock, "a").close()
    except OSError as e:  # the one line, not a traceback
        raise InputError(f"{root}: cannot be written ({e.strerror}: {e.filename}); pass another root (`panbench data "
                         "demo --root`)") from e
    # one writer at a time (parallel test workers, two `panbench data demo`): the others wait, then find it made
    with exclusive(lock, 600.0, f"making the demo set {root}"):
        found = stamped_seed(root)
        if found is not None and not force:
            if found == (str(seed), True):
                return root
            if found[0] != str(seed):
                raise InputError(f"{root}: holds the demo set generated with seed {found[0]}, not {seed}; pass "
                                 "--force to overwrite it, or another --root")
        for split, (offset, n) in SPLITS.items():  # a set of the same seed by another version: written again
            make_split(root, split, n, seed * 100 + offset)
        (root / ".panbench-demo").write_text(stamp_text(seed))
    return root


def demo_files(root: Path) -> list[Path]:
    """The files :func:`make_demo` writes under ``root`` (its stamp aside), those there, in path order: each split's
    images, its panoptic PNGs and its JSON.  Other files in ``root`` are not the demo's and are left out."""
    root = Path(root)
    files = []
    for split, (_, n) in SPLITS.items():
        names = [f"{_image_id(split, k):012d}" for k in range(n)]
        files += [root / split / f"{name}.jpg" for name in names]
        files += [root / "annotations" / f"panoptic_{split}" / f"{name}.png" for name in names]
        files.append(root / "annotations" / f"panoptic_{split}.json")
    return sorted(p for p in files if p.is_file())


def tree_digest(root: Path) -> str:
    """sha256 over the relative path and bytes of each of the demo's files (:func:`demo_files`; the checksum)."""
    h = hashlib.sha256()
    for p in demo_files(root):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def data_command(root: Path, args: Any) -> str:
    """``panbench data demo``: the line to print, with the set's fingerprint and the checksum of its files."""
    t = time.perf_counter()
    there = stamped_seed(root) == (str(args.data_seed), True) and not args.force  # kept as it is
    root = make_demo(root, seed=args.data_seed, force=args.force)
    announce("reading it back: its fingerprint and the checksum of its files")
    ds = datasets.load_dataset(root, name="demo")
    made = "already there, kept (--force writes it again)" if there else f"{time.perf_counter() - t:.1f} s"
    return (f"demo dataset at {root} ({made}): {len(ds.samples)} val images, fingerprint {ds.fingerprint()[:8]} "
            f"(tables show `demo {ds.fingerprint()[:8]}`); files sha256 {tree_digest(root)[:16]}")
