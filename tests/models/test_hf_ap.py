"""AP and mIoU of transformers models (``hf:``): the record's AP equals pycocotools' COCOeval on the instance JSON
that --save-predictions writes, its instances are the processor's ``post_process_instance_segmentation`` called
by hand (thing classes, COCO category ids), its mIoU that of ``post_process_semantic_segmentation`` (source
"semantic"; EoMT's is the panoptic output's); --no-ap leaves both off.

A random tiny model (tests/hf_tiny.py) scores no AP against real annotations, so the ground truth here is painted
from the model's own thing instances on the demo images (higher scores on top), written as a COCO panoptic
dataset: AP is then far from 0 (below 100 where instances overlap and hide each other)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("hotcoco", reason="AP is computed with hotcoco (pip install hotcoco)")
pytest.importorskip("pycocotools", reason="the reference is pycocotools (pip install pycocotools)")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
import torch  # noqa: E402
from ap_cases import pycocotools_ap  # noqa: E402  (tests/ap_cases.py)
from PIL import Image  # noqa: E402

from panbench.analysis.semantic import SemanticConfusion  # noqa: E402
from panbench.cli import main  # noqa: E402
from panbench.data.datasets import load_dataset  # noqa: E402
from panbench.models.hf.model import INSTANCE_SOURCE  # noqa: E402
from panbench.pq.png import read_ids  # noqa: E402

pytestmark = pytest.mark.slow
LIMIT = 4
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# post_process_instance_segmentation as a model card would call it for AP: every query kept (no threshold),
# overlapping masks apart where the processor offers it; written out independently of hf_model.INSTANCE_SETTINGS
BY_HAND = {"mask2former": dict(threshold=0.0, return_binary_maps=True),
           "maskformer": dict(threshold=0.0, return_binary_maps=True),
           "oneformer": dict(task_type="instance", is_demo=True, threshold=0.0),
           "detr": dict(threshold=0.0), "eomt": dict(threshold=0.0)}

STOCK = ["--pipeline", "transformers"]  # the references are transformers' own inference

def own_gt_dataset(hand: list[dict], demo_root: Path, out: Path) -> Path:
    """The first LIMIT demo images with ground truth painted from the model's own thing instances (``hand``:
    :func:`by_hand`), higher scores on top, the rest VOID (area and bbox of each segment from its pixels), in
    the demo layout."""
    ds = load_dataset(demo_root, name="demo", limit=LIMIT)
    root = out / "root"
    (root / "annotations" / "panoptic_val2017").mkdir(parents=True)
    (root / "val2017").mkdir()
    src = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    images, anns = [], []
    for s in ds.samples:
        shutil.copy(s.image_path, root / "val2017" / s.image_path.name)
        images.append({"id": s.image_id, "file_name": s.image_path.name, "height": s.height, "width": s.width})
        ids = np.zeros((s.height, s.width), np.uint32)
        mine = sorted((h for h in hand if h["image_id"] == s.image_id), key=lambda h: h["score"])
        for k, h in enumerate(mine):
            ids[h["mask"]] = k + 1
        segs = []
        for k, h in enumerate(mine):
            ys, xs = np.nonzero(ids == k + 1)
            if len(ys):
                segs.append({"id": k + 1, "category_id": h["category_id"], "iscrowd": 0, "area": int(len(ys)),
                             "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                      int(ys.max() - ys.min() + 1)]})
        name = f"{s.image_id}.png"
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
        Image.fromarray(rgb).save(root / "annotations" / "panoptic_val2017" / name)
        anns.append({"image_id": s.image_id, "file_name": name, "segments_info": segs})
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": src["categories"]}))
    return root


def _eval(d: Path, root: Path, results: Path, *extra: str) -> dict:
    rc = main(["eval", *STOCK, "--model", f"hf:{d}", "--dataset", "demo", "--data-root", str(root), "--results",
               str(results),
               "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress", "--no-resume", *extra])
    assert rc == 0
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


def reference_gt(root: Path) -> dict:
    """The thing segments of the panoptic ground truth as COCO detection annotations (pycocotools' RLEs), as
    panopticapi's panoptic2detection_coco_format does."""
    from pycocotools import mask as cocomask

    pan = json.loads((root / "annotations" / "panoptic_val2017.json").read_text())
    things = {c["id"] for c in pan["categories"] if c["isthing"]}
    anns = []
    for a in sorted(pan["annotations"], key=lambda a: a["image_id"]):
        rgb = np.asarray(Image.open(root / "annotations" / "panoptic_val2017" / a["file_name"]), np.uint32)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        for s in a["segments_info"]:
            if s["category_id"] in things:
                rle = cocomask.encode(np.asfortranarray((ids == s["id"]).astype(np.uint8)[..., None]))[0]
                rle["counts"] = rle["counts"].decode()
                anns.append({"id": len(anns) + 1, "image_id": a["image_id"], "category_id": s["category_id"],
                             "iscrowd": 0, "area": s["area"], "bbox": s["bbox"], "segmentation": rle})
    images = [{"id": i["id"], "height": i["height"], "width": i["width"]} for i in pan["images"]]
    cats = [{"id": c["id"], "name": c["name"]} for c in pan["categories"] if c["isthing"]]
    return {"images": images, "annotations": anns, "categories": cats}


def by_hand(d: Path, root: Path, kind: str, limit: int | None = None) -> tuple[list[dict], float | None]:
    """The processor and model as a model card calls them: per image the instance post-processing's thing
    segments (category id, score, binary mask) and the semantic post-processing's confusion; returns the
    instances and the mIoU (None for EoMT)."""
    from transformers import AutoImageProcessor, AutoModelForUniversalSegmentation, AutoProcessor

    from panbench.models.numerics import layout_free

    if kind == "oneformer":  # its post-processing calls torchvision's resize, absent here: panbench's stand-in
        from panbench.models.hf.model import _oneformer_resize_without_torchvision

        _oneformer_resize_without_torchvision()
    ds = load_dataset(root, name="demo", limit=limit)
    proc = (AutoProcessor if kind == "oneformer" else AutoImageProcessor).from_pretrained(d)
    ip = getattr(proc, "image_processor", proc)
    if kind == "oneformer" and ip.class_info_file is None:
        ip.class_info_file = ""  # transformers 5.23 tests `"ade20k" in class_info_file`
    model = AutoModelForUniversalSegmentation.from_pretrained(d).eval()
    # the forward's convolutions as panbench computes them on the CPU (panbench.models.numerics), so that the two sides
    # differ in their post-processing alone
    layout_free(model)
    cat = dict(zip(ds.categories.names, ds.categories.ids))
    thing = dict(zip(ds.categories.ids, ds.categories.isthing))
    label_cat = {int(i): cat[n] for i, n in model.config.id2label.items()}
    conf = SemanticConfusion([int(c) for c in ds.categories.ids])
    found = []
    for s in ds.samples:
        img = Image.open(s.image_path).convert("RGB")
        kw = {"task_inputs": ["panoptic"]} if kind == "oneformer" else {"do_pad": True} if kind == "eomt" else {}
        with torch.no_grad():
            out = model(**proc(images=img, return_tensors="pt", **kw))
        r = ip.post_process_instance_segmentation(out, target_sizes=[(s.height, s.width)], **BY_HAND[kind])[0]
        seg = r["segmentation"]
        for k, info in enumerate(r["segments_info"]):
            c = label_cat[info["label_id"]]
            if thing[c]:
                mask = (seg[k] != 0) if seg.dim() == 3 else (seg == info["id"])
                found.append({"image_id": s.image_id, "category_id": c, "score": info["score"],
                              "mask": mask.numpy().astype(bool)})
        if kind != "eomt":
            sem = ip.post_process_semantic_segmentation(out, target_sizes=[(s.height, s.width)])[0].numpy()
            conf.add_image(read_ids(s.gt_png, "gt"), s.gt_ann["segments_info"],
                           np.vectorize(label_cat.get)(sem))
    return found, (conf.metrics()["mIoU"] if kind != "eomt" else None)


@pytest.mark.parametrize("kind", hf_tiny.KINDS)
def test_hf_ap_equals_pycocotools_and_the_post_processing_by_hand(kind, demo_root, tmp_path) -> None:
    from pycocotools import mask as cocomask

    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    d = hf_tiny.build(kind, names, tmp_path / kind)
    root = own_gt_dataset(by_hand(d, demo_root, kind, LIMIT)[0], demo_root, tmp_path)
    rec = _eval(d, root, tmp_path / "res", "--save-predictions", str(tmp_path / "pred"))
    assert rec["ap_source"] == INSTANCE_SOURCE
    (saved,) = sorted((tmp_path / "pred").glob("*_instances.json"))
    ref = pycocotools_ap(reference_gt(root), saved)
    got = np.array([rec["ap"][k] / 100 if rec["ap"][k] >= 0 else -1.0 for k in AP_KEYS])
    assert np.max(np.abs(got - ref)) <= 1e-9, (got, ref)
    assert rec["ap"]["AP"] > 0  # 100 where the instances do not overlap (OneFormer, DETR, EoMT: one map)

    results = json.loads(saved.read_text())
    hand, miou = by_hand(d, root, kind)
    key = [(r["image_id"], r["category_id"], r["score"]) for r in results]
    assert key == [(h["image_id"], h["category_id"], h["score"]) for h in
                   sorted(hand, key=lambda h: (h["image_id"], -h["score"]))]  # by image, best score first
    for r, h in zip(results, sorted(hand, key=lambda h: (h["image_id"], -h["score"]))):
        assert (cocomask.decode(r["segmentation"]).astype(bool) == h["mask"]).all()
    if kind == "eomt":  # its semantic post-processing reads the sliding-window crops of its semantic set-up
        assert rec["miou_source"] == "panoptic" and rec["miou"] == rec["semantic"]["mIoU"]
    else:
        assert rec["miou_source"] == "semantic" and rec["miou"] == pytest.approx(miou, abs=1e-9)


def test_no_ap_leaves_instances_and_the_semantic_output_off(demo_root, tmp_path) -> None:
    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    d = hf_tiny.build("mask2former", names, tmp_path / "m")
    on = _eval(d, demo_root, tmp_path / "on", "--limit", str(LIMIT))
    off = _eval(d, demo_root, tmp_path / "off", "--limit", str(LIMIT), "--no-ap")
    assert "ap" not in off and off["miou_source"] == "panoptic" and on["miou_source"] == "semantic"
    assert on["metrics"] == off["metrics"] and on["per_class"] == off["per_class"]


def test_forked_processes_and_resume_give_the_same_ap_and_miou(demo_root, tmp_path) -> None:
    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    d = hf_tiny.build("mask2former", names, tmp_path / "m")
    one = _eval(d, demo_root, tmp_path / "one", "--limit", str(LIMIT))
    forked = _eval(d, demo_root, tmp_path / "forked", "--limit", str(LIMIT), "--cpu-procs", "2")
    assert forked["timings"]["cpu_procs"] == 2
    rc = main(["eval", *STOCK, "--model", f"hf:{d}", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(tmp_path / "forked"), "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress",
               "--limit", str(LIMIT)])
    assert rc == 0
    resumed = json.loads(sorted((tmp_path / "forked" / "runs").glob("*.json"))[-1].read_text())
    assert resumed["timings"]["resumed_images"] == LIMIT
    for rec in (forked, resumed):
        assert rec["ap"] == one["ap"] and rec["miou"] == one["miou"] and rec["miou_source"] == "semantic"
