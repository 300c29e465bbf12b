"""``panbench data demo|coco|cityscapes|ade20k``: prepare a dataset in the COCO panoptic layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from panbench.cli.options import Common, deprecated_alias


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("data", help="prepare datasets", description="Prepare datasets in the COCO panoptic layout.")
    dsub = p.add_subparsers(dest="data_command", metavar="DATASET", required=True)
    d = dsub.add_parser("demo", parents=[common.root, common.force],
                        help="generate the synthetic demo dataset (offline, seconds)",
                        description="Generate the seeded synthetic panoptic dataset under data/demo (train2017 "
                        "and val2017 splits, COCO layout).")
    d.add_argument("--data-seed", type=int, default=0, help="seed of the generated images and labels (default 0)")
    deprecated_alias(d, "--seed", "--data-seed")
    c = dsub.add_parser("coco", parents=[common.root, common.from_dir, common.progress],
                        help="download and extract COCO-2017 panoptic val (about 1.6 GB of zips)",
                        description="Get val2017 images and the panoptic val annotations: download (resumable) or "
                        "--from a folder with val2017.zip and panoptic_annotations_trainval2017.zip; archives are "
                        "checked (CRC, optional sha256, entry names) before extraction.")
    c.add_argument("--checksums", help='JSON file {"val2017.zip": "<sha256>", ...} to pin the archives')
    dsub.add_parser("cityscapes", parents=[common.root, common.from_dir, common.force],
                    help="convert Cityscapes val (gtFine + leftImg8bit) to COCO panoptic",
                    description="Convert the official Cityscapes val split to COCO panoptic with "
                    "cityscapesscripts' createPanopticImgs (label ids, 19 categories, crowd regions); "
                    "docs/datasets.md.")
    dsub.add_parser("ade20k", parents=[common.root, common.from_dir, common.force],
                    help="convert ADE20K val (ADEChallengeData2016 + instances) to COCO panoptic",
                    description="Convert ADEChallengeData2016's validation split with its instance annotations "
                    "(annotations_instance/) to COCO panoptic as MMDetection's ade20k2coco.py does (150 "
                    "categories, 100 things first); docs/datasets.md.")
    return p


def run(args: argparse.Namespace) -> int:
    args.root = args.root or f"data/{args.data_command}"
    return {"demo": demo, "coco": coco, "cityscapes": converted, "ade20k": converted}[args.data_command](args)


def demo(args: argparse.Namespace) -> int:
    """Generate the synthetic demo set and print its dataset fingerprint (the hash tables show beside the
    dataset's name) and the checksum of its files."""
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo, tree_digest

    t = time.perf_counter()
    root = make_demo(Path(args.root), seed=args.data_seed, force=args.force)
    ds = load_dataset(root, name="demo")
    print(f"demo dataset at {root} ({time.perf_counter() - t:.1f} s): {len(ds.samples)} val images, "
          f"fingerprint {ds.fingerprint()[:8]} (tables show `demo {ds.fingerprint()[:8]}`); "
          f"files sha256 {tree_digest(root)[:16]}")
    return 0


def coco(args: argparse.Namespace) -> int:
    """Download (or take from ``--from``), check and extract COCO panoptic val."""
    from panbench.data.coco import prepare_coco
    from panbench.pq.coco_format import read_json

    sums = read_json(args.checksums, "checksums file") if args.checksums else None
    root = prepare_coco(Path(args.root), Path(args.from_dir) if args.from_dir else None, sums,
                        progress=not args.no_progress)
    print(f"COCO panoptic val ready at {root}")
    return 0


def converted(args: argparse.Namespace) -> int:
    """Convert Cityscapes or ADE20K val (``--from`` the official folders) into ``--root``."""
    from panbench.data.datasets import load_dataset
    from panbench.errors import InputError

    if not args.from_dir:
        raise InputError(f"--from is required: the folder of the official {args.data_command} files")
    src = Path(args.from_dir)
    if not src.is_dir():
        raise InputError(f"{src}: --from folder not found; give the folder of the official {args.data_command} files")
    t = time.perf_counter()
    if args.data_command == "cityscapes":
        from panbench.data.cityscapes import prepare_cityscapes as prepare
    else:
        from panbench.data.ade20k import prepare_ade20k as prepare
    root = prepare(Path(args.root), src, force=args.force)
    ds = load_dataset(root, name=args.data_command)  # checks what was written
    n_things = sum(ds.categories.isthing)
    print(f"{args.data_command} panoptic val ready at {root}: {len(ds.samples)} images, {len(ds.categories.ids)} "
          f"categories ({n_things} things) ({time.perf_counter() - t:.1f} s); use --dataset {args.data_command}")
    return 0
