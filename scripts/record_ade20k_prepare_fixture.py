#!/usr/bin/env python
"""Record Mask2Former's own ADE20K panoptic conversion (``datasets/prepare_ade20k_pan_seg.py``, the converter behind
its published ADE20K numbers) of the tiny ADEChallengeData2016 input of ``tests/data/ade_tiny.py``
(``make_ade(src, edge_cases=True)``: three images, one with an instance of each of the 100 instance-challenge
classes), the reference that ``tests/data/test_ade20k_converters.py`` checks
``panbench data ade20k`` against (``tests/fixtures/ade20k_m2f_prepare.json``).

The file is run as Mask2Former wrote it: it has no functions, only its ``__main__`` block, so it is run whole as
``__main__`` (``runpy.run_path``), unchanged, with what that block reads: the working directory is the checkout
(it opens ``datasets/ade20k_instance_imgCatIds.json`` and ``datasets/ade20k_instance_catid_mapping.txt``, the
instance-to-semantic class mapping that decides its thing classes) and ``DETECTRON2_DATASETS`` is a temporary
folder holding the tiny ``ADEChallengeData2016`` (it converts ``training``, empty here, and ``validation``). It
imports panopticapi's ``IdGenerator`` and ``save_json``, tqdm, numpy and PIL, not detectron2. numpy is seeded
(``IdGenerator`` draws thing colours from it), though nothing recorded depends on the colours.

What is recorded is what a comparison needs and no segment id: the categories (id, name, isthing), the images,
and per image its segments in the converter's order as category name, ``area`` (the JSON's), ``iscrowd``, the
number of pixels of the segment's id in the PNG and a digest of that pixel set (``describe``, which the test
applies to panbench's conversion too), with a digest of the input (``input_digest``) so the test can tell a
changed input from a changed converter.

    mkdir M2F && git --git-dir=/path/to/Mask2Former/.git archive 9b0651c datasets | tar -x -C M2F
    .venv/bin/python scripts/record_ade20k_prepare_fixture.py M2F/datasets/prepare_ade20k_pan_seg.py \\
        tests/fixtures/ade20k_m2f_prepare.json --commit 9b0651c

(``tests/fixtures/ade20k_m2f_prepare.json``: facebookresearch/Mask2Former at 9b0651c, the newest on main; the file
run and the mapping it reads are unchanged since the initial commit 161be51.)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
M2F_COMMIT = "9b0651c"  # the commit tests/fixtures/ade20k_m2f_prepare.json was recorded from
SOURCES = ("datasets/prepare_ade20k_pan_seg.py", "datasets/ade20k_instance_catid_mapping.txt")


def git_blob(path: Path) -> str:
    """The file's git blob id (``git hash-object``): which version of it ran, checkable against ``git ls-tree``."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def input_digest(src: Path) -> str:
    """A digest of an ADEChallengeData2016 folder's validation annotations (decoded pixels) and image sizes."""
    import numpy as np
    from PIL import Image

    h = hashlib.sha256()
    for f in sorted((src / "images" / "validation").glob("*.jpg")):
        h.update(f"{f.name} {Image.open(f).size}".encode())
        for sub in ("annotations", "annotations_instance"):
            a = np.ascontiguousarray(np.asarray(Image.open(src / sub / "validation" / f"{f.stem}.png")))
            h.update(f"{sub} {a.shape} {a.dtype}".encode() + a.tobytes())
    return h.hexdigest()[:16]


def describe(pan_json: Path, png_dir: Path) -> dict[str, Any]:
    """A converted panoptic JSON and its PNGs without segment ids: categories as [id, name, isthing], images, and
    per image each segment as {category name, area, iscrowd, pixels, digest of its pixel set} in the JSON's order,
    with the VOID pixel count."""
    import numpy as np
    from PIL import Image

    data = json.loads(pan_json.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    segments = {}
    for ann in data["annotations"]:
        rgb = np.asarray(Image.open(png_dir / ann["file_name"])).astype(np.int64)
        ids = (rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]).ravel()
        segs = []
        for s in ann["segments_info"]:
            where = np.flatnonzero(ids == s["id"]).astype("<u4")
            segs.append({"category": names[s["category_id"]], "area": s["area"], "iscrowd": s["iscrowd"],
                         "pixels": int(where.size), "pixel_set": hashlib.sha256(where.tobytes()).hexdigest()[:16]})
        listed = np.isin(ids, [s["id"] for s in ann["segments_info"]])
        assert not (~listed & (ids != 0)).any(), f"{ann['file_name']}: PNG ids that segments_info does not list"
        segments[ann["image_id"]] = {"void_pixels": int((ids == 0).sum()), "segments": segs}
    return {"categories": [[c["id"], c["name"], c["isthing"]] for c in data["categories"]],
            "images": [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in data["images"]],
            "annotations": segments}


def dumps(obj: Any, indent: int = 0) -> str:
    """JSON with each list or object that fits on a line on one line (one category, one segment a line)."""
    flat = json.dumps(obj)
    if len(flat) + indent <= 110 or not isinstance(obj, (dict, list)):
        return flat
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        rows = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(rows) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(pad + dumps(v, indent + 1) for v in obj) + "\n" + " " * indent + "]"


def run_mask2former(source: Path, work: Path) -> dict[str, Any]:
    """Mask2Former's prepare_ade20k_pan_seg.py run as written on the tiny input (built under ``work``);
    what it wrote, described."""
    import numpy as np
    from ade_tiny import make_ade  # tests/data/ade_tiny.py

    checkout = source.resolve().parent.parent
    src = work / "ADEChallengeData2016"
    make_ade(src, edge_cases=True)
    cwd, env = os.getcwd(), os.environ.get("DETECTRON2_DATASETS")
    os.chdir(checkout)
    os.environ["DETECTRON2_DATASETS"] = str(work)
    np.random.seed(0)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):  # its tqdm bars and folder lines
            runpy.run_path(str(source.resolve()), run_name="__main__")
    finally:
        os.chdir(cwd)
        if env is None:
            del os.environ["DETECTRON2_DATASETS"]
        else:
            os.environ["DETECTRON2_DATASETS"] = env
    described = describe(src / "ade20k_panoptic_val.json", src / "ade20k_panoptic_val")
    return {"input_digest": input_digest(src), **described}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prepare_ade20k_pan_seg", type=Path,
                    help="Mask2Former's datasets/prepare_ade20k_pan_seg.py, in a checkout (or an extracted datasets/ "
                         "folder) that has datasets/ade20k_instance_catid_mapping.txt and "
                         "datasets/ade20k_instance_imgCatIds.json beside it")
    ap.add_argument("out", type=Path, help="the fixture to write")
    ap.add_argument("--commit", help="Mask2Former's commit the files are from (default: git's, in a checkout)")
    a = ap.parse_args()
    source = a.prepare_ade20k_pan_seg
    checkout = source.resolve().parent.parent
    if source.name != "prepare_ade20k_pan_seg.py" or source.resolve().parent.name != "datasets":
        raise SystemExit(f"{source}: give Mask2Former's datasets/prepare_ade20k_pan_seg.py")
    if missing := [n for n in (*SOURCES, "datasets/ade20k_instance_imgCatIds.json") if not (checkout / n).is_file()]:
        raise SystemExit(f"{checkout}: no {', '.join(missing)}; the converter reads them from datasets/ beside it")
    commit = a.commit or subprocess.run(["git", "-C", str(source.resolve().parent), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
    if not commit:
        raise SystemExit(f"{source}: not in a git checkout; say which commit it is with --commit")
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    import importlib.metadata

    import numpy as np

    panopticapi = importlib.metadata.packages_distributions().get("panopticapi", ["panopticapi"])[0]
    with tempfile.TemporaryDirectory() as tmp:
        got = run_mask2former(source, Path(tmp))
    fixture = {
        "what": "Mask2Former's own ADE20K panoptic conversion (datasets/prepare_ade20k_pan_seg.py, run as written) of "
                "the tiny input of tests/data/ade_tiny.py (make_ade(src, edge_cases=True)), recorded by "
                "scripts/record_ade20k_prepare_fixture.py (a reference output, not a measurement)",
        "mask2former_commit": commit,
        "git_blobs": {n: git_blob(checkout / n) for n in SOURCES},
        "panopticapi": f"{panopticapi} {importlib.metadata.version(panopticapi)}", "numpy": np.__version__,
        **got,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(dumps(fixture) + "\n")
    n = sum(len(v["segments"]) for v in got["annotations"].values())
    print(f"{a.out}: Mask2Former {commit}, {len(got['images'])} images, {n} segments, "
          f"{len(got['categories'])} categories")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
