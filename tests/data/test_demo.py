"""The embedded default: the generated dataset is deterministic; the demo models' PQ is pinned; docs/demo.md's
sample output is the output of that run (timings and the device aside): ``PANBENCH_GOLDEN=write pytest
tests/data/test_demo.py -k pinned_pq`` writes it there (and the diff is reviewed)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.data import demo
from panbench.data.demo import DEMO_CATEGORIES, make_demo, tree_digest
from panbench.errors import InputError
from panbench.package import REPO_ROOT

# PQ of each committed demo model on the demo val split, +-0.5: measured by `panbench eval --model all
# --dataset demo` on the val set `panbench data demo` generates (at most one crowd segment per category, one segment
# per stuff category and image; not retrained)
PINNED_PQ = {"demo-mask2former": 78.084, "demo-maskformer": 72.293, "demo-panoptic-fpn": 83.552}
# sha256 of each split's JPEGs (sorted names and bytes): the images the demo models were trained and measured on
JPEGS = {"train2017": "b6de0cd8dd83c3b7917384c4c9d47e12a373864643eb5ed233bac75c852e3336",
         "val2017": "f28e64b617beeb6cd5eca74e566ccaf70989e280b901b377c9728f648652958b"}


# a few images per split, for the tests about when a set is written rather than what it holds
SMALL = {"train2017": (0, 2), "val2017": (1, 3)}


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full demo set (seed 0), generated once for the module's tests that read it; its files are read-only."""
    root = make_demo(tmp_path_factory.mktemp("demo") / "d")
    for p in root.rglob("*"):
        if p.is_file():
            p.chmod(0o444)
    return root


def split_digest(root: Path, split: str) -> str:
    """sha256 over one split's files: its images, its panoptic PNGs and its JSON (paths and bytes)."""
    h = hashlib.sha256()
    ann = root / "annotations"
    files = [*(root / split).rglob("*"), *(ann / f"panoptic_{split}").rglob("*"), ann / f"panoptic_{split}.json"]
    for p in sorted(files):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_generated_dataset_is_identical_across_runs(demo_set: Path, tmp_path: Path, monkeypatch) -> None:
    """A second generation gives the same files. Each split is drawn from its own seed (seed * 100 + the split's
    offset), so the second generation makes the val split alone (no train images: the val ids stay those of the
    second split); the pinned digests below tie both splits' images, and the val JSON, to every earlier run."""
    a = demo_set
    monkeypatch.setattr(demo, "SPLITS", {"train2017": (0, 0), "val2017": demo.SPLITS["val2017"]})
    b = make_demo(tmp_path / "b")
    assert split_digest(a, "val2017") == split_digest(b, "val2017")
    js = (a / "annotations" / "panoptic_val2017.json").read_bytes()
    # at most one crowd segment per category and image, one segment per stuff category and image
    assert hashlib.sha256(js).hexdigest()[:16] == "7b8261ef6a3cb561"
    for split, digest in JPEGS.items():
        h = hashlib.sha256()
        for p in sorted((a / split).glob("*.jpg")):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        assert h.hexdigest() == digest, split


def test_dataset_has_coco_layout_and_properties(demo_set: Path) -> None:
    root = demo_set
    for split in ("train2017", "val2017"):
        data = json.loads((root / "annotations" / f"panoptic_{split}.json").read_text())
        assert (root / split).is_dir() and (root / "annotations" / f"panoptic_{split}").is_dir()
        assert len(data["images"]) == len(data["annotations"]) > 0
    ids = [c["id"] for c in DEMO_CATEGORIES]
    assert ids != list(range(1, len(ids) + 1))  # non-contiguous
    thing_ids = [c["id"] for c in DEMO_CATEGORIES if c["isthing"]]
    stuff_ids = [c["id"] for c in DEMO_CATEGORIES if not c["isthing"]]
    assert min(stuff_ids) < max(thing_ids) and min(thing_ids) < max(stuff_ids)  # ids interleave
    sizes = {(im["height"], im["width"]) for im in data["images"]}
    assert len(sizes) > 10 and all(h != w for h, w in sizes)
    crowd = sum(s.get("iscrowd", 0) for a in data["annotations"] for s in a["segments_info"])
    assert crowd > 0


def test_at_most_one_crowd_segment_per_category_and_image(demo_set: Path, capsys) -> None:
    """panopticapi keeps one crowd region per category and image: the ground truth scored against
    itself must give PQ 100 (it gave 99.575 with two crowd segments of a category in one image)."""
    root = demo_set
    ann = root / "annotations"
    for split in ("train2017", "val2017"):
        data = json.loads((ann / f"panoptic_{split}.json").read_text())
        for a in data["annotations"]:
            crowd = [s["category_id"] for s in a["segments_info"] if s.get("iscrowd")]
            assert len(crowd) == len(set(crowd)), (split, a["image_id"], crowd)
    gt = ["--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017")]
    assert main(["score", *gt, "--pred-json", gt[1], "--pred-dir", gt[3], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["PQ"] == 100.0


def test_regenerating_with_another_seed_needs_force(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(demo, "SPLITS", SMALL)
    root = tmp_path / "d"
    assert main(["data", "demo", "--root", str(root)]) == 0
    before = tree_digest(root)
    capsys.readouterr()  # the lines of the first set's generation
    assert main(["data", "demo", "--root", str(root), "--data-seed", "4"]) == 2
    err = capsys.readouterr().err
    assert "seed 0" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert tree_digest(root) == before
    assert main(["data", "demo", "--root", str(root), "--data-seed", "4", "--force"]) == 0
    assert tree_digest(root) != before


@pytest.mark.slow
def test_demo_models_reach_pinned_pq(tmp_path: Path, capsys) -> None:
    make_demo(REPO_ROOT / "data" / "demo")
    rc = main(["eval", "--model", "all", "--dataset", "demo", "--results", str(tmp_path), "--no-progress",
               "--workers", "0"])
    assert rc == 0
    out = capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*.json"))]
    got = {r["model"]: r["metrics"]["PQ"] for r in records}
    assert set(got) == set(PINNED_PQ), out
    for name, pq in PINNED_PQ.items():
        assert got[name] == pytest.approx(pq, abs=0.5), (name, got[name])
        assert got[name] >= 20, name
    shown = sample_output(out)
    if os.environ.get("PANBENCH_GOLDEN") == "write":
        DEMO_DOC.write_text(with_sample_output(DEMO_DOC.read_text(), shown))
    assert [machine_free(b) for b in sample_blocks(DEMO_DOC.read_text())] == [machine_free(b) for b in shown], \
        "docs/demo.md's sample output is not this run's: PANBENCH_GOLDEN=write rewrites it"


# docs/demo.md's sample output: the first model's section of `eval --model all --dataset demo`, then its verdict and
# comparison table; the two fenced blocks under this heading
DEMO_DOC = REPO_ROOT / "docs" / "demo.md"
SAMPLE_HEADING = "## What `make demo` printed"


def sample_output(out: str) -> list[str]:
    """The two blocks docs/demo.md shows of the output ``out``: the first model's section (up to its record's
    path), and everything from the verdict on."""
    first = out[out.index("demo-mask2former [default] on demo"):out.index("  record: ")].rstrip("\n")
    return [first, out[out.index("demo 4237f2e7, 60 images: ranking"):].rstrip("\n")]


def sample_blocks(doc: str) -> list[str]:
    section = doc[doc.index(SAMPLE_HEADING):].split("\n## ")[0]
    return re.findall(r"\n```\n(.*?)\n```", section, flags=re.S)


def with_sample_output(doc: str, blocks: list[str]) -> str:
    start = doc.index(SAMPLE_HEADING)
    section = doc[start:].split("\n## ")[0]
    old = iter(blocks)
    new = re.sub(r"\n```\n(.*?)\n```", lambda m: f"\n```\n{next(old)}\n```", section, flags=re.S)
    return doc[:start] + new + doc[start + len(section):]


def machine_free(block: str) -> str:
    """A block without what depends on the machine and its load: the device and processes, the speed and timings,
    and the `~` that marks a speed measured under load (with its note)."""
    block = re.sub(r"\(60 images, .*\)$", "(60 images, DEVICE)", block, flags=re.M)
    block = re.sub(r"^  [\d.]+ img/s; per image: .* ms$", "  TIMINGS", block, flags=re.M)
    block = re.sub(r"^(demo-\S+ +default .*?) +[\d.]+[~ ]*$", r"\1 IMG/S", block, flags=re.M)
    return re.sub(r"\n~ after img/s: .*$", "", block, flags=re.M)


def test_the_demo_configs_are_the_three_demo_models_and_their_shared_base_is_none() -> None:
    from panbench.models.registry import all_models

    demo_dir = REPO_ROOT / "configs" / "demo"
    listed = sorted(s.name for s in all_models() if s.framework == "mmdet" and s.config.parent == demo_dir)
    assert listed == ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn"]
    assert all(s.config.parent.name != "_base_" for s in all_models() if s.framework == "mmdet")


@pytest.mark.parametrize("name", ["mask2former", "maskformer", "panoptic-fpn"])
def test_each_demo_config_takes_the_demo_dataset_from_the_shared_base(name: str) -> None:
    from panbench.models.mmdet.mm import load_config

    cfg = load_config(REPO_ROOT / "configs" / "demo" / f"{name}.py")
    classes = tuple(c["name"] for c in DEMO_CATEGORIES)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert tuple(loader.dataset.metainfo.classes) == classes and loader.dataset.data_root == "data/demo/"
    assert cfg.test_dataloader.dataset.pipeline[1] == {"type": "Resize", "scale": (208, 160), "keep_ratio": True}
    assert cfg.val_evaluator.ann_file == "data/demo/annotations/panoptic_val2017.json"
    assert cfg.train_cfg.max_iters == (2000 if name == "panoptic-fpn" else 3000)
    assert cfg.model.panoptic_fusion_head.num_things_classes == 4


def test_a_second_maker_waits_for_the_first_and_finds_the_set_made(tmp_path, monkeypatch) -> None:
    """Parallel test workers (pytest -n) and two `panbench data demo` at once: one writes, the other waits."""
    import fcntl
    import threading

    monkeypatch.setattr(demo, "SPLITS", SMALL)

    root = tmp_path / "demo"
    with open(tmp_path / ".demo.lock", "a") as held:  # the first maker, mid-write
        fcntl.flock(held, fcntl.LOCK_EX)
        second = threading.Thread(target=make_demo, args=(root,))
        second.start()
        second.join(0.5)
        assert second.is_alive() and not root.exists()  # waiting, nothing written beside the first
        fcntl.flock(held, fcntl.LOCK_UN)
    second.join(60)
    assert (root / ".panbench-demo").read_text() == demo.stamp_text(0)
    assert tree_digest(root) == tree_digest(make_demo(tmp_path / "alone"))


def test_a_set_another_generator_version_stamped_is_written_again(tmp_path, monkeypatch) -> None:
    """A set of the same seed written by an earlier version (its stamp the seed alone) holds that version's files:
    it is written again, without --force; one of another seed still needs --force."""
    monkeypatch.setattr(demo, "SPLITS", {"val2017": (1, 2)})
    root = make_demo(tmp_path / "d")
    made = tree_digest(root)
    next((root / "annotations" / "panoptic_val2017").glob("*.png")).write_bytes(b"an earlier version's file")
    (root / ".panbench-demo").write_text("0")
    assert tree_digest(make_demo(root)) == made and (root / ".panbench-demo").read_text() == demo.stamp_text(0)
    (root / ".panbench-demo").write_text("4")
    with pytest.raises(InputError, match="generated with seed 4, not 0; pass --force"):
        make_demo(root)


def test_data_demo_in_a_folder_of_other_files_reads_and_sums_only_the_files_it_writes(tmp_path, capsys,
                                                                                    monkeypatch) -> None:
    """`data demo --root` a folder that holds other files (a big folder): its checksum reads the demo's files only,
    and is the one of a folder that holds nothing else."""
    monkeypatch.setattr(demo, "SPLITS", SMALL)
    busy = tmp_path / "busy"
    (busy / "val2017").mkdir(parents=True)
    (busy / "val2017" / "holiday.jpg").write_bytes(b"not the demo's")  # beside the demo's images
    (busy / "downloads").mkdir()
    (busy / "downloads" / "big.bin").write_bytes(bytes(1000))
    read: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real(self))
    sums = []
    for root in (tmp_path / "clean", busy):
        assert main(["data", "demo", "--root", str(root)]) == 0
        sums.append(re.findall(r"files sha256 (\w+)", capsys.readouterr().out))
    assert sums[0] == sums[1] and len(sums[0]) == 1
    assert not [p for p in read if p.name in ("holiday.jpg", "big.bin")]
