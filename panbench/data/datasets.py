"""A COCO-panoptic-format dataset on disk (COCO val2017, the demo set, or a user's own; a converted dataset keeps
its converter's names, :func:`layout`), and images without ground truth (``panbench eval --images``,
:func:`load_images`; docs/eval.md), which nothing scores."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.data.catalog import DATASETS
from panbench.errors import InputError
from panbench.pq.coco_format import parse_categories, read_ground_truth, read_json, safe_join
from panbench.pq.matching import CategoryTable
from panbench.pq.stuff_rule import repeated_stuff, stuff_rule_message


def how_to_get(root: Path, name: str, split: str = "val2017") -> str:
    """The fix for a dataset not found at ``root``: the ``--dataset``/``--data-root`` meant, or what makes it."""
    import difflib
    import shlex

    if name not in DATASETS:
        if near := difflib.get_close_matches(name, list(DATASETS), n=1, cutoff=0.7):
            return f"did you mean --dataset {near[0]}?"
        return (f"--dataset is one of {', '.join(DATASETS)}; for a dataset of your own in the COCO panoptic layout "
                "(docs/datasets.md) pass --data-root DIR")
    parent = root.parent if str(root.parent) else Path(".")
    if parent.is_dir():
        try:
            siblings = sorted(p.name for p in parent.iterdir() if p != root and layout(p, name, split)[0].is_file())
        except OSError:
            siblings = []
        if near := difflib.get_close_matches(root.name, siblings, n=1, cutoff=0.6):
            return f"did you mean --data-root {shlex.quote(str(parent / near[0]))}?"
    if name == "demo" and root != Path("data/demo"):
        return f"run `panbench data demo --root {shlex.quote(str(root))}` (seconds, offline), or pass --data-root DIR"
    return DATASETS[name].how_to_get.format(root=shlex.quote(str(root)))


def layout(root: Path, name: str, split: str) -> tuple[Path, Path, Path]:
    """JSON, PNG folder, image folder (converted: ROOT/annotations/<name>_panoptic_val{.json,/}, ROOT/val/)."""
    if name in DATASETS and DATASETS[name].converted:
        base = root / "annotations" / f"{name}_panoptic_val"
        return base.with_suffix(".json"), base, root / "val"
    return root / "annotations" / f"panoptic_{split}.json", root / "annotations" / f"panoptic_{split}", root / split


@dataclass
class Sample:
    """One image to evaluate: where its image and ground truth are."""

    image_id: int | str
    image_path: Path
    gt_png: Path
    height: int
    width: int
    gt_ann: dict[str, Any]


@dataclass
class PanopticDataset:
    """The images of one split, with categories and the subset that was selected."""

    name: str
    root: Path
    categories: CategoryTable
    samples: list[Sample]
    ann_file: Path

    @property
    def image_ids(self) -> list[int | str]:
        return [s.image_id for s in self.samples]

    def fingerprint(self) -> str:
        """A short hash of the annotation file and the selected image ids (keys caches and results)."""
        return dataset_fingerprint(self.ann_file.read_bytes(), self.image_ids)


def dataset_fingerprint(ann_bytes: bytes, image_ids: list[Any]) -> str:
    """A short hash of the annotation file's bytes (a read ground truth's ``raw``) and the image ids in order."""
    h = hashlib.sha256()
    h.update(ann_bytes)
    h.update(repr(list(image_ids)).encode())
    return h.hexdigest()[:16]


def load_dataset(root: str | Path, name: str = "coco", split: str = "val2017", limit: int | None = None,
                 subset: str | Path | None = None) -> PanopticDataset:
    """Read and check ``root``; select ``subset`` (a file of image ids) and/or the first ``limit``."""
    root = Path(root)
    ann_file, png_dir, img_dir = layout(root, name, split)
    if not ann_file.is_file():
        raise InputError(f"{ann_file}: dataset '{name}' not found; {how_to_get(root, name, split)}")
    truth = read_ground_truth(ann_file, "panoptic annotation JSON")
    cats, anns = truth.categories, truth.annotations
    images = truth.data.get("images")
    if not isinstance(images, list):
        raise InputError(f"{ann_file}: missing field 'images'; use the official panoptic_{split}.json")
    if not images:
        raise InputError(f"{ann_file}: 'images' is empty, there is nothing to evaluate; use an annotation file "
                         "that lists its images (nothing was run)")
    samples = []
    for im in images:
        if not isinstance(im, dict) or not {"id", "file_name", "height", "width"} <= set(im):
            raise InputError(f"{ann_file}: an entry of 'images' lacks id, file_name, height or width")
        if (ann := anns.get(im["id"])) is None:
            raise InputError(f"{ann_file}: image {im['id']} has no entry in 'annotations'")
        where = f"{ann_file}: image {im['id']}"
        for seg in ann["segments_info"]:
            if seg["category_id"] not in cats.index:
                raise InputError(f"{where}: segment {seg['id']} has unknown category_id {seg['category_id']}; "
                                 "every category_id must be listed in 'categories'")
        samples.append(Sample(im["id"], safe_join(img_dir, im["file_name"], where),
                              safe_join(png_dir, ann["file_name"], where), int(im["height"]), int(im["width"]), ann))
    if subset is not None:
        samples = _subset_of(samples, subset, ann_file)
    if limit is not None:
        samples = samples[: max(0, limit)]
    if not samples:
        raise InputError(f"{subset}: selects no image; list at least one image id of {ann_file} (nothing was run)")
    return PanopticDataset(name, root, cats, samples, ann_file)


def _subset_of(samples: list[Sample], subset: str | Path, ann_file: Path) -> list[Sample]:
    """The samples a ``--subset`` file lists, in its order; an id the annotation file lacks is refused."""
    wanted = read_subset(subset)
    by_id = {s.image_id: s for s in samples}
    missing = [i for i in wanted if i not in by_id]
    if missing and isinstance(missing[0], str) and by_id and all(isinstance(i, int) for i in by_id):
        raise InputError(f"{subset}: {missing[0]!r} is not a number, and the image ids of {ann_file} are "
                         "numbers; list one image id per line (e.g. 139)")
    if missing:
        raise InputError(f"{subset}: image id {missing[0]} is not in {ann_file}; list ids of this split only")
    return [by_id[i] for i in wanted]


def read_subset(path: str | Path) -> list[int | str]:
    """Image ids, one per line (``#`` comments allowed), in file order; a non-integer id stays a string."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: subset file not found; give a file with one image id per line")
    lines = (line.split("#", 1)[0].strip() for line in p.read_text().splitlines())
    ids: list[int | str] = [int(x) if x.lstrip("-").isdigit() else x for x in lines if x]
    unique = list(dict.fromkeys(ids))  # an image is scored once, however often it is listed
    if len(unique) < len(ids):
        first = next(i for i in unique if ids.count(i) > 1)
        print(f"note: {p}: {len(ids) - len(unique)} repeated image id(s) (first: {first}) counted once; "
              f"{len(unique)} images selected", file=sys.stderr)
    return unique


def run_converter(root: Path, args: Any, name: str, convert: Callable[..., Path]) -> str:
    """``panbench data NAME`` of a converted dataset: ``convert(root, --from)``, checked; the line to print."""
    if not args.from_dir:
        raise InputError(f"--from is required: the folder of the official {name} files")
    src = Path(args.from_dir)
    if not src.is_dir():
        raise InputError(f"{src}: --from folder not found; give the folder of the official {name} files")
    t = time.perf_counter()
    if (out_json := layout(root, name, "val2017")[0]).is_file() and not args.force:
        print(f"{out_json} exists; pass --force to convert again")
    else:
        root = convert(root, src)
    ds = load_dataset(root, name=name)
    cats = [{"id": i, "name": n, "isthing": int(t)} for i, n, t in zip(ds.categories.ids, ds.categories.names,
                                                                        ds.categories.isthing)]
    if refused := stuff_rule_message(ds.ann_file, repeated_stuff([s.gt_ann for s in ds.samples], cats), cats,
                                     "the conversion writes one segment per stuff class of the official files: give "
                                     f"--from the official {DATASETS[name].display} files and convert again with "
                                     "--force"):
        raise InputError(refused)
    return (f"{name} panoptic val ready at {root}: {len(ds.samples)} images, {len(ds.categories.ids)} categories "
            f"({sum(ds.categories.isthing)} things) ({time.perf_counter() - t:.1f} s); use --dataset {name}")


def link_or_copy(src: Path, dst: Path) -> None:
    """A converted image: a hard link to ``src`` (no extra space), or a copy across file systems."""
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def copy_json_last(src: Path, dst: Path) -> None:
    """A release's JSON copied to ``dst`` through a temporary name, the last step of preparing a dataset: its
    presence says the dataset is prepared, so a run stopped before leaves none."""
    tmp = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class ImageSet(PanopticDataset):
    """A :class:`PanopticDataset` without ground truth; ``prefix`` names the saved predictions."""

    prefix: str = "panoptic_images"

    def fingerprint(self) -> str:
        """A short hash of the image list (ids, file names and sizes) and of the JSON, if any."""
        h = hashlib.sha256()
        if self.ann_file.is_file():
            h.update(self.ann_file.read_bytes())
        for s in self.samples:
            h.update(repr((s.image_id, str(s.image_path.name), s.image_path.stat().st_size)).encode())
        return h.hexdigest()[:16]


def load_images(path: str | Path, dataset: str, data_root: str | Path, image_dir: str | Path | None = None,
                limit: int | None = None) -> ImageSet:
    """The images of a folder (by name; a digit stem is an int id) or of an image-info JSON (under ``image_dir``)."""
    p = Path(path)
    cats: CategoryTable | None
    if p.is_dir():
        if image_dir is not None:
            raise InputError(f"{p}: --image-dir goes with an image-info JSON; the folder given to --images holds the "
                             "images: leave --image-dir out")
        samples = _folder_samples(p)
        cats, prefix, ann = None, "panoptic_" + re.sub(r"[^A-Za-z0-9.-]+", "-", p.name), p
    elif p.is_file():
        data = read_json(p, "image-info JSON")
        samples = _json_samples(p, data, Path(image_dir) if image_dir else Path(data_root) / "test2017")
        cats_raw = data.get("categories")
        with_isthing = isinstance(cats_raw, list) and cats_raw and all(
            isinstance(c, dict) and "isthing" in c for c in cats_raw)
        cats = parse_categories(data, p) if with_isthing else None
        stem = p.stem.removeprefix("panoptic_").removeprefix("image_info_")
        prefix, ann = f"panoptic_{stem}", p
    else:
        raise InputError(f"{p}: --images must be a folder of images or an image-info JSON; not found")
    if cats is None:  # the categories of the annotation file of --dataset under data_root
        ann_file = layout(Path(data_root), dataset, "val2017")[0]
        if not ann_file.is_file():
            how = DATASETS.get(dataset, DATASETS["coco"]).how_to_get.format(root=Path(data_root))
            raise InputError(f"{ann_file}: the categories for --images come from dataset '{dataset}''s annotation "
                             f"file, not found; {how}")
        cats = parse_categories(read_json(ann_file, "panoptic annotation JSON"), ann_file)
    return ImageSet(dataset, p if p.is_dir() else p.parent, cats, samples[:limit], ann, prefix=prefix)


def _folder_samples(p: Path) -> list[Sample]:
    """One sample per image file of folder ``p``, sorted by name, without size or annotation."""
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise InputError(f"{p}: no images (*.jpg, *.png, ...) in this folder; pass --images a folder of images "
                         "or an image-info JSON")
    samples: list[Sample] = []
    seen: dict[int | str, Path] = {}
    for f in files:
        image_id = int(f.stem) if f.stem.isdigit() else f.stem
        if image_id in seen:
            raise InputError(f"{f}: image id {image_id} also names {seen[image_id].name}; give each image its "
                             "own file stem")
        seen[image_id] = f
        samples.append(Sample(image_id, f, None, 0, 0, None))  # type: ignore[arg-type]
    return samples


def _json_samples(p: Path, data: dict[str, Any], folder: Path) -> list[Sample]:
    """One sample per entry of the ``images`` list of image-info JSON ``p`` (``data``), files under ``folder``."""
    images = data.get("images")
    if not isinstance(images, list) or not images:
        raise InputError(f"{p}: no 'images' list; pass COCO's image_info_test-dev2017.json or a folder of images")
    samples = []
    for im in images:
        if not isinstance(im, dict) or not {"id", "file_name"} <= set(im):
            raise InputError(f"{p}: an entry of 'images' lacks id or file_name")
        f = safe_join(folder, im["file_name"], f"{p}: image {im['id']}")
        if not f.is_file():
            raise InputError(f"{f}: image {im['id']} of {p.name} not found; pass --image-dir, the folder that "
                             "holds the JSON's images (COCO test-dev: test2017/)")
        size = int(im.get("height") or 0), int(im.get("width") or 0)
        samples.append(Sample(im["id"], f, None, *size, None))  # type: ignore[arg-type]
    return samples
