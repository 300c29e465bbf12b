"""Instance and semantic outputs of the real libraries as panbench's instances (RLE masks, scores, dataset
category ids) and category maps: mmdet's Mask2Former ``instance_on`` and PanopticFPN's instance branch on a demo
model, transformers' ``post_process_instance_segmentation`` / ``post_process_semantic_segmentation`` of tiny
random models; then AP of those instances equals pycocotools'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ap_cases import _decode, assert_same_ap, pycocotools_ap

from panbench.analysis.ap import APAccumulator, semantic_categories
from panbench.pq.png import read_ids

torch = pytest.importorskip("torch")
pytest.importorskip("hotcoco", reason="AP is computed with hotcoco (pip install hotcoco)")


def check_instances(inst, masks: np.ndarray, scores: np.ndarray, cats: np.ndarray) -> None:
    """``inst`` holds ``masks`` (N, H, W), ``scores`` and ``cats`` in the order of decreasing score."""
    order = np.argsort(-scores, kind="stable")
    assert len(inst) == len(scores) > 0
    assert np.array_equal(inst.scores, scores[order].astype(np.float64))
    assert np.array_equal(inst.category_ids, cats[order])
    for r, m in zip(inst.rles, masks[order]):
        assert r["size"] == list(m.shape) and np.array_equal(_decode(r), m != 0)


def demo_model(name: str, demo_root: Path):
    from panbench.data.datasets import load_dataset
    from panbench.evaluation.loading import load_model
    from panbench.models.registry import resolve

    ds = load_dataset(demo_root, name="demo")
    lm = load_model(resolve(name, dataset="demo")[0], ds.categories, None, False, "cpu")
    return ds, lm


def test_mmdet_mask2former_instance_on_gives_instances_in_dataset_ids(demo_root: Path) -> None:
    from panbench.models.mmdet.family import from_mmdet

    ds, lm = demo_model("demo-mask2former", demo_root)
    lm.model.panoptic_fusion_head.test_cfg["instance_on"] = True  # the zoo configs' setting
    s = ds.samples[0]
    data = lm.family.pipeline({"img_path": str(s.image_path), "img_id": s.image_id})
    with torch.inference_mode():
        (out,) = lm.family.forward([data], "cpu", None)
    p = out.pred_instances
    inst = from_mmdet(p, lm.label2cat)
    check_instances(inst, p.masks.numpy(), p.scores.numpy(), np.asarray(lm.label2cat)[p.labels.numpy()])
    assert inst.rles[0]["size"] == [s.height, s.width]
    acc = APAccumulator.for_table(ds.categories)
    acc.add_image(s.image_id, read_ids(s.gt_png, "test"), s.gt_ann["segments_info"], inst)
    assert_same_ap(acc.evaluate(), pycocotools_ap(acc.gt_dataset(), acc.results()))


def test_mmdet_panoptic_fpn_instance_branch_gives_instances_in_dataset_ids(demo_root: Path) -> None:
    from mmengine.dataset import pseudo_collate

    from panbench.models.mmdet.family import from_mmdet

    ds, lm = demo_model("demo-panoptic-fpn", demo_root)
    s = ds.samples[0]
    data = lm.model.data_preprocessor(pseudo_collate([lm.family.pipeline({"img_path": str(s.image_path),
                                                                          "img_id": s.image_id})]), False)
    det = lm.model
    with torch.inference_mode():
        x = det.extract_feat(data["inputs"])
        rpn = det.rpn_head.predict(x, data["data_samples"], rescale=False)
        (p,) = det.roi_head.predict(x, rpn, data["data_samples"], rescale=True)  # what the fusion head reads
    inst = from_mmdet(p, lm.label2cat)
    check_instances(inst, p.masks.numpy(), p.scores.numpy(), np.asarray(lm.label2cat)[p.labels.numpy()])
    assert inst.rles[0]["size"] == [s.height, s.width]
    things = {i for i, t in zip(ds.categories.ids, ds.categories.isthing) if t}
    assert set(inst.category_ids.tolist()) <= things


@pytest.mark.parametrize("kind", ["mask2former", "maskformer"])
def test_transformers_instance_and_semantic_post_processing(kind: str, tmp_path: Path) -> None:
    from hf_tiny import build
    from transformers import AutoImageProcessor, AutoModelForUniversalSegmentation

    from panbench.models.hf.model import from_hf_instances

    d = build(kind, ["a", "b", "c"], tmp_path / kind)
    model = AutoModelForUniversalSegmentation.from_pretrained(d).eval()
    proc = AutoImageProcessor.from_pretrained(d)
    img = np.random.default_rng(0).integers(0, 255, (48, 70, 3), np.uint8)
    with torch.inference_mode():
        out = model(**proc(images=[img], return_tensors="pt"))
    label2cat = [11, 22, 33]
    (binary,) = proc.post_process_instance_segmentation(out, threshold=0.0, target_sizes=[(48, 70)],
                                                        return_binary_maps=True)
    info = binary["segments_info"]
    inst = from_hf_instances(binary, label2cat)
    check_instances(inst, binary["segmentation"].numpy()[: len(info)], np.array([s["score"] for s in info]),
                    np.array([label2cat[s["label_id"]] for s in info]))
    (flat,) = proc.post_process_instance_segmentation(out, threshold=0.0, target_sizes=[(48, 70)])
    seg = flat["segmentation"].numpy()
    masks = np.array([seg == s["id"] for s in flat["segments_info"]])
    check_instances(from_hf_instances(flat, label2cat), masks, np.array([s["score"] for s in flat["segments_info"]]),
                    np.array([label2cat[s["label_id"]] for s in flat["segments_info"]]))
    (sem,) = proc.post_process_semantic_segmentation(out, target_sizes=[(48, 70)])
    cats = semantic_categories(sem, label2cat)
    assert cats.shape == (48, 70) and np.array_equal(cats, np.asarray(label2cat)[sem.numpy()])


def test_semantic_categories_map_void_and_unknown_labels_to_minus_one() -> None:
    got = semantic_categories(np.array([[0, 1], [2, 255]]), [5, 6, 7], void_label=2)
    assert got.tolist() == [[5, 6], [-1, -1]]
