"""The datasets panbench knows, one row each in :data:`DATASETS` (a dataset is its module ``data/<name>.py`` and its
row: tests/data/test_catalog.py), each with its protocol :class:`Card`.  Standard library only: ``panbench --help``
reads it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
class Card:
    """A dataset's protocol, versioned (docs/datasets.md): what the published numbers on it were computed on and
    how.  Every record names its card's version and hash (``provenance.dataset.card``); ``doctor`` checks a prepared
    dataset against ``images``, ``classes`` and ``things``.  Raise ``version`` when a field changes meaning."""

    version: str
    release: str  # the official files the numbers are on
    images: int | None  # val images (None: any number, the generated demo set)
    classes: int  # categories
    things: int  # of which things
    label_order: str  # the categories' ids and order, and the orders checkpoints use (mapped by name)
    void: str  # what is VOID (left out of matching)
    crowd: str  # what is a crowd region
    evaluator: str  # the evaluator behind the published numbers
    converter: str  # what turns the release into the COCO panoptic layout panbench reads
    cross_check: str = ""  # another evaluator panbench is checked equal to on this dataset
    terms: str = ""  # the data's terms of use, where they restrict it
    # the names checkpoints give its classes where the label mapping's rules (docs/huggingface.md) find no category:
    # (label, category name) pairs
    label_aliases: tuple[tuple[str, str], ...] = ()

    def digest(self) -> str:
        """A short hash of every field (a record's ``card.hash``: two records of one hash ran one protocol)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def stamp(self) -> dict[str, str]:
        """What a record holds of it: ``{"version": ..., "hash": ...}``."""
        return {"version": self.version, "hash": self.digest()}


_PANOPTICAPI = "panopticapi's pq_compute (detectron2's COCOPanopticEvaluator, mmdet's CocoPanopticMetric)"
_D2_PANOPTIC = "panopticapi's pq_compute through detectron2's COCOPanopticEvaluator"
_COCO_VOID = ("segment id 0 and pixels of ids segments_info does not list: VOID, left out of matching; a prediction "
              "whose overlap with VOID is over half its area is no false positive")
_COCO_CROWD = ("iscrowd 1 segments are never matched; a prediction overlapping a crowd region of its class by over "
               "half its area is no false positive")
COCO_CARD = Card(
    "1", "COCO 2017 panoptic val: panoptic_val2017.json and its PNGs, val2017 images", 5000, 133, 80,
    label_order="category ids 1-200 with gaps, as panoptic_val2017.json lists them (80 things, then 53 stuff)",
    void=_COCO_VOID, crowd=_COCO_CROWD, evaluator=_PANOPTICAPI, converter="none: the release's JSON and PNGs")


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
    card: Card  # its protocol
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
        extra=(Option("--checksums", 'JSON file {"val2017.zip": "<sha256>", ...} to pin the archives'),),
        card=COCO_CARD),
    Dataset(
        "demo", "demo", help="generate the synthetic demo dataset (offline, seconds)",
        description="Generate the seeded synthetic panoptic dataset under data/demo (train2017 and val2017 "
        "splits, COCO layout).",
        command="panbench.data.demo:data_command", options=("root", "force"),
        how_to_get="run `panbench data demo` (seconds, offline)", folder="data/demo",
        extra=(Option("--data-seed", "seed of the generated images and labels (default 0)", int, 0, old="--seed",
                       seed=True),),
        doctor="the demo set's",
        card=Card("1", "panbench's seeded synthetic set (panbench data demo)", None, 8, 4,
                  label_order="category ids of panbench/data/demo.py's DEMO_CATEGORIES", void=_COCO_VOID,
                  crowd="none", evaluator="panbench's PQ (panopticapi's rules)", converter="none: generated")),
    Dataset(
        "cityscapes", "Cityscapes", help="convert Cityscapes val (gtFine + leftImg8bit) to COCO panoptic",
        description="Convert the official Cityscapes val split to COCO panoptic with cityscapesscripts' "
        "createPanopticImgs (label ids, 19 categories, crowd regions); docs/datasets.md.",
        command="panbench.data.cityscapes:data_command", options=("root", "from_dir", "force"),
        how_to_get="convert the official gtFine/ and leftImg8bit/ with `panbench data cityscapes --from DIR` "
        "(docs/datasets.md), or pass --data-root DIR",
        folder="data/cityscapes", from_files="gtFine/ and leftImg8bit/, unzipped", converted=True,
        card=Card(
            "1", "Cityscapes gtFine val (gtFine_trainvaltest.zip) and leftImg8bit val", 500, 19, 8,
            label_order="cityscapesscripts' label ids 7-33 of the 19 labels evaluated (ignoreInEval false); "
            "checkpoints number the train ids 0-18 and are mapped by name",
            void="labels ignored in evaluation (unlabeled, ego vehicle, rectification border, out of roi, static, "
            "dynamic, ground, parking, rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer, "
            "license plate): segment id 0",
            crowd="a region of a thing label without instance ids (instanceIds value below 1000) is iscrowd 1",
            evaluator=f"{_D2_PANOPTIC} on createPanopticImgs' JSON (Mask2Former, OneFormer)",
            converter="cityscapesscripts' createPanopticImgs, label ids (panbench data cityscapes)",
            cross_check="cityscapesscripts' evalPanopticSemanticLabeling (tests/data/test_cityscapes_eval.py)")),
    Dataset(
        "ade20k", "ADE20K", help="convert ADE20K val (ADEChallengeData2016 + instances) to COCO panoptic",
        description="Convert ADEChallengeData2016's validation split with its instance annotations "
        "(annotations_instance/) to COCO panoptic as MMDetection's ade20k2coco.py does (150 categories, 100 "
        "things first); docs/datasets.md.",
        command="panbench.data.ade20k:data_command", options=("root", "from_dir", "force"),
        how_to_get="convert ADEChallengeData2016 with its instance annotations with `panbench data ade20k --from "
        "DIR` (docs/datasets.md), or pass --data-root DIR",
        folder="data/ade20k", from_files="ADEChallengeData2016/ with images/, annotations/, annotations_instance/",
        converted=True,
        card=Card(
            "1", "ADEChallengeData2016 validation (SceneParsing) with the instance challenge's annotations_instance",
            2000, 150, 100,
            label_order="mmdet's ade20k2coco: ids 0-149, the 100 thing classes first, then the 50 stuff; "
            "Mask2Former's prepare_ade20k_pan_seg.py (the published numbers' JSON) and the checkpoints number the "
            "semantic order (0 = wall): mapped by name",
            void="semantic value 0, and pixels of a thing class without an instance: segment id 0",
            crowd="none",
            evaluator=f"{_D2_PANOPTIC} on prepare_ade20k_pan_seg.py's JSON (Mask2Former, OneFormer); EoMT's own "
            "evaluation for EoMT",
            converter="panbench data ade20k, as MMDetection 3.3.0's ade20k2coco.py; the same segments as "
            "prepare_ade20k_pan_seg.py (tests/data/test_ade20k_converters.py)",
            # transformers' ADE20K checkpoints label each class by its first ADE20K (objectInfo150) name
            # (huggingface/label-files ade20k-id2label.json), where mmdet names 9 by another of its synonyms
            label_aliases=(("windowpane", "window"), ("bathtub", "tub"), ("railing", "rail"),
                           ("streetlight", "street lamp"), ("television receiver", "tv"), ("apparel", "clothes"),
                           ("ashcan", "trash can"), ("swimming pool", "pool"), ("waterfall", "falls")))),
    Dataset(
        "mapillary", "Mapillary Vistas", help="link Mapillary Vistas v1.2 panoptic val into place (no conversion)",
        description="Put the official Mapillary Vistas v1.2 panoptic val (validation/panoptic/panoptic_2018.json, or "
        "validation/v1.2/panoptic/ of a v2.0 download, its PNGs and validation/images/) in the converted layout: the "
        "JSON copied, the PNGs and images linked (65 categories, 37 things); docs/datasets.md.",
        command="panbench.data.mapillary:data_command", options=("root", "from_dir", "force"),
        how_to_get="link the official Mapillary Vistas validation/ with `panbench data mapillary --from DIR` "
        "(docs/datasets.md), or pass --data-root DIR",
        folder="data/mapillary", from_files="validation/ with images/ and panoptic/ (or v1.2/panoptic/)",
        converted=True,
        card=Card(
            "1", "Mapillary Vistas v1.2 validation: panoptic_2018.json and its PNGs", 2000, 65, 37,
            label_order="category ids 1-65 of panoptic_2018.json (config_v1.2); checkpoints number id - 1 "
            "(Mask2Former's contiguous ids), mapped by name",
            void="segment id 0 (the v1.2 'Unlabeled' label has no category)",
            crowd="iscrowd as panoptic_2018.json marks it",
            evaluator=f"{_D2_PANOPTIC} (Mask2Former, OneFormer)",
            converter="none: the release's JSON and PNGs (panbench data mapillary links them)",
            terms="Mapillary Vistas Research Edition: CC BY-NC-SA 4.0 (non-commercial)")),
    Dataset(
        "coconut", "COCONut", help="put COCONut's relabeled COCO val into place (no conversion)",
        description="Put COCONut's relabeled COCO val (relabeled_coco_val.json and its PNGs, a folder or the zip) and "
        "COCO's val2017 images (--from DIR/val2017/, else --coco-root) in the converted layout; the same 5000 images "
        "and 133 categories as COCO; docs/datasets.md.",
        command="panbench.data.coconut:data_command", options=("root", "from_dir", "force"),
        how_to_get="put COCONut's relabeled_coco_val.json and PNGs in place with `panbench data coconut --from DIR` "
        "(docs/datasets.md), or pass --data-root DIR",
        folder="data/coconut", from_files="relabeled_coco_val.json with relabeled_coco_val.zip or relabeled_coco_val/",
        extra=(Option("--coco-root", "the folder holding COCO's val2017/ images, when --from has no val2017/ "
                      "(default data/coco)"),),
        converted=True,
        card=Card(
            "1", "COCONut relabeled COCO val (bytedance/coconut_cvpr2024): relabeled_coco_val.json and its PNGs, "
            "COCO val2017 images", 5000, 133, 80,
            label_order="COCO's: category ids 1-200 with gaps, as panoptic_val2017.json lists them (80 things, then "
            "53 stuff)",
            void=_COCO_VOID, crowd=_COCO_CROWD, evaluator="panopticapi's pq_compute (COCONut's evaluation)",
            converter="none: the release's JSON and PNGs",
            terms="COCONut's annotations: non-commercial use only; the images: COCO's terms of use")),
)}


def names(last: str = "or") -> str:
    """The datasets' names as a sentence lists them: "coco, demo, cityscapes or ade20k"."""
    *head, tail = DATASETS
    return f"{', '.join(head)} {last} {tail}" if head else tail


def folder(name: str) -> str:
    """The default root of the dataset ``name``: its row's folder, ``data/<name>`` for a dataset of one's own."""
    return DATASETS[name].folder if name in DATASETS else f"data/{name}"
