"""``panbench data cityscapes``: Cityscapes panoptic val from the official ``gtFine`` and ``leftImg8bit``.

The conversion is cityscapesscripts' own ``createPanopticImgs`` (``convert2panoptic``, run on the
``val`` split with the label ids, not the train ids), so the JSON and PNGs are those of every
Cityscapes panoptic evaluation:

* categories: the 19 labels evaluated (``ignoreInEval`` false) with their label ids (7-33); 8
  things (``hasInstances``: person, rider, car, truck, bus, train, motorcycle, bicycle), 11 stuff.
* segments from ``gtFine/val/<city>/*_gtFine_instanceIds.png``: a value >= 1000 is one instance
  (id = value, category = value // 1000); a value < 1000 is a whole class region (id = label
  id), a crowd region (``iscrowd`` 1) when the class has instances; ignored labels are VOID (0).
* string image ids (``frankfurt_000000_000294``); the images go to ``ROOT/val/`` under the JSON's names
  (``<id>_gtFine_leftImg8bit.png``) as hard links to the official ``leftImg8bit/val/<city>/<id>_leftImg8bit.png``.
"""

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
