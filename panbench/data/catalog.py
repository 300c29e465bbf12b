"""The datasets panbench knows, one row each in :data:`DATASETS` (a dataset is its module ``data/<name>.py`` and its
row: tests/data/test_catalog.py).  Standard library only: ``panbench --help`` reads it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panbench.package import named


@dataclass(frozen=True)
class Option:
    """A flag of one ``panbench data NAME`` beyond the shared ones (``Common``'s groups)."""

    flag: str  # "--data-seed"
    help: str
    type: Callable[[str], Any] | None = None  # argparse's type (None: a string)
    default: Any = None
    old: str | None = None  # a deprecated spelling still accepted (``deprecated_alias``)
    seed: bool = False  # a seed: an integer in 0..2^32-1, checked as the command line is read


@dataclass(frozen=True)
class Dataset:
    """One dataset: its names, what ``panbench data NAME`` does, where it lives, the words that name it."""

    name: str  # --dataset NAME, `panbench data NAME`, a record's dataset
    display: str  # how a sentence names it ("Cityscapes")
    help: str  # its line in `panbench data --help`
    description: str  # `panbench data NAME --help`
    command: str  # "module:function" that `panbench data NAME` runs: (root: Path, args) -> the line it prints
    options: tuple[str, ...]  # the shared option groups it takes (``panbench.cli.options.Common``'s fields)
    how_to_get: str  # the fix when it is not found ({root}: the root looked at)
    folder: str  # its default root (`--root`, `--data-root`)
    from_files: str | None = None  # what `--from DIR` holds for it (None: it takes no --from)
    extra: tuple[Option, ...] = ()  # its own flags
    converted: bool = False  # files named by its converter: annotations/<name>_panoptic_val{.json,/}, val/
    doctor: str | None = None  # the doctor's words for a root that holds it ("the demo set's"); None: display

    def run_command(self) -> Callable[..., str]:
        """The function `panbench data NAME` runs (its module imported now)."""
        return named(self.command)


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset(
        "coco", "COCO", help="download and extract COCO-2017 panoptic val (about 1.6 GB of zips)",
        description="Get val2017 images and the panoptic val annotations: download (resumable) or --from a folder "
        "with val2017.zip and panoptic_annotations_trainval2017.zip; archives are checked (CRC, optional sha256, "
        "entry names) before extraction.",
        command="panbench.data.coco:data_command", options=("root", "from_dir", "progress"),
        how_to_get="run `panbench data coco --root {root}` (downloads and checks val2017 and the panoptic "
        "annotations), or pass --data-root DIR; offline, `--dataset demo` runs the demo models on the demo set",
        folder="data/coco", from_files="the zips val2017.zip and panoptic_annotations_trainval2017.zip",
        extra=(Option("--checksums", 'JSON file {"val2017.zip": "<sha256>", ...} to pin the archives'),)),
    Dataset(
        "demo", "demo", help="generate the synthetic demo dataset (offline, seconds)",
        description="Generate the seeded synthetic panoptic dataset under data/demo (train2017 and val2017 "
        "splits, COCO layout).",
        command="panbench.data.demo:data_command", options=("root", "force"),
        how_to_get="run `panbench data demo` (seconds, offline)", folder="data/demo",
        extra=(Option("--data-seed", "seed of the generated images and labels (default 0)", int, 0, old="--seed",
                       seed=True),),
        doctor="the demo set's"),
    Dataset(
        "cityscapes", "Cityscapes", help="convert Cityscapes val (gtFine + leftImg8bit) to COCO panoptic",
        description="Convert the official Cityscapes val split to COCO panoptic with cityscapesscripts' "
        "createPanopticImgs (label ids, 19 categories, crowd regions); docs/datasets.md.",
        command="panbench.data.cityscapes:data_command", options=("root", "from_dir", "force"),
        how_to_get="convert the official gtFine/ and leftImg8bit/ with `panbench data cityscapes --from DIR` "
        "(docs/datasets.md), or pass --data-root DIR",
        folder="data/cityscapes", from_files="gtFine/ and leftImg8bit/, unzipped", converted=True),
    Dataset(
        "ade20k", "ADE20K", help="convert ADE20K val (ADEChallengeData2016 + instances) to COCO panoptic",
        description="Convert ADEChallengeData2016's validation split with its instance annotations "
        "(annotations_instance/) to COCO panoptic as MMDetection's ade20k2coco.py does (150 categories, 100 "
        "things first); docs/datasets.md.",
        command="panbench.data.ade20k:data_command", options=("root", "from_dir", "force"),
        how_to_get="convert ADEChallengeData2016 with its instance annotations with `panbench data ade20k --from "
        "DIR` (docs/datasets.md), or pass --data-root DIR",
        folder="data/ade20k", from_files="ADEChallengeData2016/ with images/, annotations/, annotations_instance/",
        converted=True),
)}


def names(last: str = "or") -> str:
    """The datasets' names as a sentence lists them: "coco, demo, cityscapes or ade20k"."""
    *head, tail = DATASETS
    return f"{', '.join(head)} {last} {tail}" if head else tail


def folder(name: str) -> str:
    """The default root of the dataset ``name``: its row's folder, ``data/<name>`` for a dataset of one's own."""
    return DATASETS[name].folder if name in DATASETS else f"data/{name}"
