"""``panbench data cityscapes``: Cityscapes panoptic val from the official ``gtFine`` and ``leftImg8bit``, converted
by cityscapesscripts' own ``createPanopticImgs`` (``val``, label ids), the images hard-linked under the JSON's names;
docs/datasets.md, "Cityscapes", says what it writes."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from panbench.data.datasets import link_or_copy, run_converter
from panbench.errors import InputError, PanbenchError
from panbench.pq.coco_format import read_json

HOW_TO_INSTALL = "pip install cityscapesscripts (scripts/setup.sh installs it)"


def prepare_cityscapes(root: Path, src: Path) -> Path:
    """Convert ``src`` (a folder with ``gtFine/`` and ``leftImg8bit/``) into ``root``; returns ``root``."""
    out_json = root / "annotations" / "cityscapes_panoptic_val.json"
    gt = src / "gtFine" / "val"
    files = sorted(gt.glob("*/*_gtFine_instanceIds.png"))
    if not files:
        raise InputError(f"{gt}: no */*_gtFine_instanceIds.png; --from takes the folder holding the official "
                         "gtFine/ and leftImg8bit/ (from gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip)")
    images = {}
    for f in files:
        name = f.name.replace("_gtFine_instanceIds.png", "_leftImg8bit.png")
        img = src / "leftImg8bit" / "val" / f.parent.name / name
        if not img.is_file():
            raise InputError(f"{img}: image not found for {f.name}; unzip leftImg8bit_trainvaltest.zip beside gtFine/")
        images[f.name.replace("_gtFine_instanceIds.png", "")] = img
    try:
        from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic
    except ImportError:
        raise PanbenchError(f"the Cityscapes conversion needs cityscapesscripts; {HOW_TO_INSTALL}") from None
    ann_dir = root / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # its per-file progress line; we print a summary
        convert2panoptic(str(src / "gtFine"), str(ann_dir), useTrainId=False, setNames=["val"])
    if not out_json.is_file():
        raise PanbenchError(f"cityscapesscripts wrote no {out_json}; its output: {log.getvalue()[-300:]!r}")
    img_out = root / "val"
    img_out.mkdir(parents=True, exist_ok=True)
    for im in read_json(out_json, "converted Cityscapes JSON")["images"]:
        link_or_copy(images[im["id"]], img_out / im["file_name"])
    print(f"  {len(files)} images converted by cityscapesscripts' createPanopticImgs")
    return root


def data_command(root: Path, args: Any) -> str:
    """``panbench data cityscapes``: convert ``--from`` into ``root``; the line to print."""
    return run_converter(root, args, "cityscapes", prepare_cityscapes)
