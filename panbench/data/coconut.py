"""``panbench data coconut``: COCONut's relabeled COCO val (bytedance/coconut_cvpr2024), a drop-in for COCO's
panoptic_val2017.json and its PNGs: the release's ``relabeled_coco_val.json`` copied, its PNGs (a folder or the zip)
put under the converted layout's names, and COCO's val2017 images linked; docs/datasets.md, "COCONut"."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from panbench.data.catalog import folder
from panbench.data.coco import open_checked
from panbench.data.datasets import copy_json_last, layout, link_or_copy, run_converter
from panbench.errors import InputError
from panbench.pq.coco_format import read_json, safe_join

_NAME = "coconut"
STEM = "relabeled_coco_val"
_FIX = (f"--from takes the folder holding COCONut's {STEM}.json and {STEM}.zip (or its PNGs unzipped in {STEM}/), "
        "from huggingface.co/datasets/xdeng77/coconut_cvpr2024 or Kaggle")


def find_coconut_files(src: Path, coco_root: Path) -> tuple[Path, Path, Path]:
    """The JSON, the PNGs (a folder or a zip) and COCO's val2017 folder; one InputError naming all that is missing
    and the fix of each."""
    ann_json, png_dir, png_zip = src / f"{STEM}.json", src / STEM, src / f"{STEM}.zip"
    images = src / "val2017" if (src / "val2017").is_dir() else coco_root / "val2017"
    missing = [f"{ann_json.name} not found"] if not ann_json.is_file() else []
    if not png_dir.is_dir() and not png_zip.is_file():
        missing.append(f"neither {STEM}/ nor {STEM}.zip (its PNGs) is there")
    fixes = [_FIX] if missing else []
    if not images.is_dir():
        missing.append(f"COCO's val2017 images are in neither {src / 'val2017'} nor {images}")
        fixes.append("for the images run `panbench data coco`, or pass --coco-root DIR (the folder holding val2017/)")
    if missing:
        raise InputError(f"{src}: {', '.join(missing)}; {'; '.join(fixes)}")
    return ann_json, png_dir if png_dir.is_dir() else png_zip, images


def check_categories(data: dict[str, Any], ann_json: Path, coco_root: Path) -> None:
    """COCONut's categories are COCO's 133 by id and name, where COCO's panoptic JSON is at ``coco_root``."""
    coco_json = layout(coco_root, "coco", "val2017")[0]
    if not coco_json.is_file():
        return
    coco = {c.get("id"): c.get("name") for c in read_json(coco_json, "COCO panoptic JSON").get("categories", [])
            if isinstance(c, dict)}
    ours = {c.get("id"): c.get("name") for c in data.get("categories", []) if isinstance(c, dict)}
    if ours != coco:
        first = next(i for i in [*coco, *ours] if coco.get(i) != ours.get(i))
        raise InputError(f"{ann_json}: its categories differ from COCO's {coco_json} (first: id {first}: "
                         f"{ours.get(first)!r} against {coco.get(first)!r}); {_FIX}")


def _copy_pngs_from_zip(png_zip: Path, names: list[str], out: Path) -> None:
    """The PNGs ``names`` of ``png_zip`` (entries at its root or under one folder) into ``out``."""
    with open_checked(png_zip, None) as zf:
        pngs = [i for i in zf.infolist() if i.filename.endswith(".png") and not i.is_dir()
                and not i.filename.startswith("__MACOSX/")]
        folders = {PurePosixPath(i.filename).parent for i in pngs}
        if len(folders) > 1:
            raise InputError(f"{png_zip}: PNGs in {len(folders)} folders; {_FIX}")
        by_name = {PurePosixPath(i.filename).name: i for i in pngs}
        for name in names:
            if name not in by_name:
                raise InputError(f"{png_zip}: no entry {name} (a PNG its {STEM}.json names); {_FIX}")
            target = safe_join(out, name, str(png_zip))
            with zf.open(by_name[name]) as r, open(target, "wb") as w:
                shutil.copyfileobj(r, w, 1 << 20)


def _checked_names(data: dict[str, Any], ann_json: Path) -> tuple[list[str], list[str]]:
    """The image and PNG file names of COCONut's JSON ``data``, after checking the lists that name them."""
    images, anns = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(anns, list) or not images:
        raise InputError(f"{ann_json}: no 'images' or 'annotations' list; {_FIX}")
    if not all(isinstance(x, dict) and isinstance(x.get("file_name"), str) for x in images + anns):
        raise InputError(f"{ann_json}: an entry of 'images' or 'annotations' lacks its file_name; {_FIX}")
    return [im["file_name"] for im in images], [a["file_name"] for a in anns]


def _link_all(src_dir: Path, names: list[str], out: Path, what: str, fix: str) -> None:
    """Each file ``names`` of ``src_dir`` linked into ``out``, all checked first (``what`` they are, the ``fix`` of one
    missing)."""
    files = [safe_join(src_dir, n, str(src_dir)) for n in names]
    if missing := [f for f in files if not f.is_file()]:
        raise InputError(f"{missing[0]}: {what} not found ({len(missing)} of {len(files)} missing); {fix}")
    out.mkdir(parents=True, exist_ok=True)
    for f, n in zip(files, names, strict=True):
        link_or_copy(f, safe_join(out, n, str(src_dir)))


def prepare_coconut(root: Path, src: Path, coco_root: Path) -> Path:
    """Put COCONut's relabeled val of ``src`` (and COCO's images) under ``root``; returns ``root``."""
    ann_json, pngs, images = find_coconut_files(src, coco_root)
    data = read_json(ann_json, "COCONut panoptic JSON")
    image_names, png_names = _checked_names(data, ann_json)
    check_categories(data, ann_json, coco_root)
    out_json, out_png, out_img = layout(root, _NAME, "val")
    _link_all(images, image_names, out_img, f"an image that {ann_json.name} names", "pass --coco-root DIR, the folder "
              "holding COCO's whole val2017/ (`panbench data coco` makes data/coco)")
    if pngs.is_dir():
        _link_all(pngs, png_names, out_png, f"a PNG that {ann_json.name} names", _FIX)
    else:
        out_png.mkdir(parents=True, exist_ok=True)
        _copy_pngs_from_zip(pngs, png_names, out_png)
    copy_json_last(ann_json, out_json)
    print(f"  {len(png_names)} PNGs of {ann_json.name} and their val2017 images put in place")
    return root


def data_command(root: Path, args: Any) -> str:
    """``panbench data coconut``: ``--from`` (and COCO's val2017 images) into ``root``; the line to print."""
    coco_root = Path(args.coco_root or folder("coco"))
    return run_converter(root, args, _NAME, lambda out, src: prepare_coconut(out, src, coco_root))
