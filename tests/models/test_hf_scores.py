"""``hf:`` models' segment scores (segments_info ``"score"``): transformers' own, from its
``post_process_panoptic_segmentation`` run directly as the reference; a fused stuff segment's score the highest of
its queries'; each grid setting's segments with the scores of its own post-processing; ``--save-predictions``
writing them.  The tiny random-init models of tests/hf_tiny.py; the encoding the other families hand over
(:func:`panbench.models.encoding.panoptic_to_segments`) keeps scores given per code."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("transformers")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from panbench.cli import main  # noqa: E402
from panbench.data.datasets import load_dataset  # noqa: E402
from panbench.models.encoding import INSTANCE_OFFSET, panoptic_to_segments  # noqa: E402
from panbench.models.hf import model as hf  # noqa: E402

KIND = "mask2former"
LIMIT = 2


@pytest.fixture(scope="module")
def tiny(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Mask2Former with the demo set's labels (label id = category index), saved once."""
    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    return hf_tiny.build(KIND, names, tmp_path_factory.mktemp("hf") / KIND)


@pytest.fixture(scope="module")
def theirs(tiny: Path, demo_root: Path) -> Any:
    """transformers as a model card runs it, per demo image: processor, model; ``post(k, **settings)``: image k's
    ``post_process_panoptic_segmentation`` (stuff labels fused) as {(category id, pixels): score}, a segment's
    score the highest of its entries' (a fused stuff class lists one entry per query)."""
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForUniversalSegmentation

    ds = load_dataset(demo_root, name="demo", limit=LIMIT)
    proc = AutoImageProcessor.from_pretrained(tiny, backend="pil")
    net = AutoModelForUniversalSegmentation.from_pretrained(tiny).eval()
    cat = dict(zip(ds.categories.names, ds.categories.ids))
    thing = dict(zip(ds.categories.ids, ds.categories.isthing))
    label_cat = {int(i): cat[n] for i, n in net.config.id2label.items()}
    stuff = {i for i, c in label_cat.items() if not thing[c]}
    outputs = []
    for s in ds.samples:
        with torch.no_grad(), Image.open(s.image_path) as im:
            outputs.append(net(**proc(images=im.convert("RGB"), return_tensors="pt")))

    def post(k: int, out: Any = None, **settings: float) -> tuple[dict[tuple[int, bytes], float], list[dict]]:
        s = ds.samples[k]
        r = proc.post_process_panoptic_segmentation(outputs[k] if out is None else out,
                                                    target_sizes=[(s.height, s.width)], label_ids_to_fuse=stuff,
                                                    **{**hf_tiny.PUBLISHED[KIND], **settings})[0]
        seg = r["segmentation"].numpy()
        best: dict[int, float] = {}
        for info in r["segments_info"]:
            best[info["id"]] = max(best.get(info["id"], 0.0), info["score"])
        first = {info["id"]: info for info in reversed(r["segments_info"])}
        return {(label_cat[first[i]["label_id"]], (seg == i).tobytes()): v for i, v in best.items()}, \
            r["segments_info"]

    return SimpleNamespace(ds=ds, post=post, samples=ds.samples)


@pytest.fixture(scope="module")
def loaded(tiny: Path, theirs: Any) -> hf.HFPanoptic:
    """The tiny model as panbench loads it, once for the module."""
    return hf.load_hf_model(str(tiny), theirs.ds.categories, "cpu",
                            cfg_options={"pipeline": "transformers"}).model.module

STOCK = ("--pipeline", "transformers")  # the references are transformers' own inference

def _queries() -> SimpleNamespace:
    """Four queries' outputs, each query's mask a band of columns: three of label 4 (sky, stuff) with scores low,
    high, middle, and one of label 0 (disk, a thing).  A label's logit v over 8 others of 0 scores
    e^v / (e^v + 8), over transformers' threshold 0.8."""
    logits = torch.zeros((1, 4, 9))
    for q, (label, v) in enumerate([(4, 4.0), (4, 6.0), (4, 5.0), (0, 7.0)]):
        logits[0, q, label] = v
    masks = torch.full((1, 4, 16, 16), -20.0)
    for q in range(4):
        masks[0, q, :, 4 * q: 4 * q + 4] = 20.0
    return SimpleNamespace(class_queries_logits=logits, masks_queries_logits=masks)


def _ours(ids: np.ndarray, segs: list[dict[str, Any]]) -> dict[tuple[int, bytes], float]:
    """panbench's segments as {(category id, pixels): score}; every segment has a float score."""
    assert segs and all(type(c["score"]) is float for c in segs)
    return {(c["category_id"], (ids == c["id"]).tobytes()): c["score"] for c in segs}


def test_saved_predictions_carry_transformers_scores_segment_by_segment(demo_root, tiny, theirs, tmp_path) -> None:
    """An eval with ``--save-predictions``: each saved segment's ``score`` is the one transformers' own
    post-processing gives the segment of the same pixels and category, image by image."""
    from panbench.pq.png import read_ids

    preds = tmp_path / "p"
    assert main(["eval", *STOCK, "--model", f"hf:{tiny}", "--dataset", "demo", "--data-root", str(demo_root),
                 "--results",
                 str(tmp_path / "r"), "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress",
                 "--no-ap", "--limit", str(LIMIT), "--save-predictions", str(preds)]) == 0
    (js,) = (p for p in preds.glob("*.json") if not p.name.endswith("_instances.json"))
    saved = {a["image_id"]: a for a in json.loads(js.read_text())["annotations"]}
    for k, s in enumerate(theirs.samples):
        ann = saved[s.image_id]
        ids = read_ids(js.parent / js.stem / ann["file_name"], "prediction")
        assert _ours(ids, ann["segments_info"]) == theirs.post(k)[0], s.image_id


def test_a_fused_stuff_segment_scores_the_highest_of_its_queries(loaded, theirs) -> None:
    """Three queries of one stuff label (scores low, high, middle) fused by transformers into one segment, and a
    thing: panbench's stuff segment has the middle query's score (the highest), the thing its own."""
    out = _queries()
    h, w = theirs.samples[0].height, theirs.samples[0].width
    ids, segs = loaded.to_segments(hf.HFOutput(loaded.fusion.one(out, (h, w))))
    ref, info = theirs.post(0, out)
    sky = [i["score"] for i in info if i["label_id"] == 4]
    assert len(sky) == 3 and len({i["id"] for i in info if i["label_id"] == 4}) == 1  # one fused segment
    assert len(set(sky)) == 3 and sky.index(max(sky)) == 1  # neither the first nor the last entry holds the highest
    assert _ours(ids, segs) == ref
    assert sorted(c["score"] for c in segs) == sorted([max(sky), *(i["score"] for i in info if i["label_id"] == 0)])


def test_each_grid_setting_keeps_the_scores_of_its_own_post_processing(loaded, theirs) -> None:
    """A deferred forward under a threshold grid: each setting's segments (a different set per setting) carry the
    scores transformers' post-processing gives with that setting's threshold."""
    from panbench.models.grid import expand
    from panbench.models.postprocess import PostProcess

    model = loaded
    values = [0.8, 0.99]
    settings = expand({"threshold": values}, "hf", "m", None, PostProcess(), model.grid_own)
    with torch.inference_mode(), model.deferred():
        outputs = [o for s in theirs.samples for o in model.forward([model.pipeline({"img_path": str(s.image_path)})],
                                                                    "cpu", None)]
    seen = []
    for v, outs in zip(values, model.finish_grid(outputs, settings)):
        for k, o in enumerate(outs):
            ours = _ours(*model.to_segments(o))
            assert ours == theirs.post(k, threshold=v)[0]
            seen.append(ours)
    assert seen[:LIMIT] != seen[LIMIT:]  # the settings keep different segments


@pytest.mark.parametrize("rule", ["maskwise", "argmax"])
def test_postprocess_segments_score_their_rules_confidence(loaded, theirs, rule) -> None:
    """``--postprocess maskwise|argmax`` on :func:`_queries` (disjoint bands: every query painted): the disk its
    query's confidence, the sky segment the highest of its three queries' (maskwise: class probability ** alpha *
    mask quality ** beta, quality the mean probability of the mask's pixels over the mask threshold; argmax: the
    class probability)."""
    import torch.nn.functional as F

    from panbench.models.postprocess import PostProcess

    pp = PostProcess(name=rule)
    out = _queries()
    h, w = theirs.samples[0].height, theirs.samples[0].width
    ids, segs = loaded.to_segments(hf.HFOutput(loaded.fusion.one(out, (h, w), postprocess=pp)))
    p = torch.softmax(out.class_queries_logits[0].double(), -1)[:, :8].max(-1).values
    m = F.interpolate(out.masks_queries_logits, size=(h, w), mode="bilinear", align_corners=False)[0].sigmoid()
    binary = m > pp.mask_thr
    quality = (m * binary).flatten(1).sum(1).double() / binary.flatten(1).sum(1)
    conf = (p ** pp.alpha * quality ** pp.beta if rule == "maskwise" else p).tolist()
    got = _ours(ids, segs)
    assert sorted(cat for cat, _ in got) == [1, 3]  # disk, sky: one segment each
    assert {cat: v for (cat, _), v in got.items()} == pytest.approx({1: conf[3], 3: max(conf[:3])}, rel=1e-6)
    assert len(set(conf[:3])) == 3 and conf.index(max(conf[:3])) == 1


def test_panoptic_to_segments_keeps_the_score_of_each_code_given() -> None:
    """A code with a score: its segment's ``"score"`` (a Python float, from numpy's float32 too); a code without
    one: no key; VOID's code is no segment, scored or not; no scores: no key anywhere."""
    pan = np.array([[0, 1 + INSTANCE_OFFSET, 1 + INSTANCE_OFFSET], [2, 2, 5]])  # 5: VOID (5 classes)
    ids, segs = panoptic_to_segments(pan, 5, [10, 11, 12, 13, 14],
                                     {1 + INSTANCE_OFFSET: 0.5, 2: np.float32(0.25), 5: 0.9})
    assert ids.tolist() == [[1, 3, 3], [2, 2, 0]]
    assert segs == [{"id": 1, "category_id": 10, "iscrowd": 0},
                    {"id": 2, "category_id": 12, "iscrowd": 0, "score": 0.25},
                    {"id": 3, "category_id": 11, "iscrowd": 0, "score": 0.5}]
    assert type(segs[1]["score"]) is float
    plain = panoptic_to_segments(pan, 5, [10, 11, 12, 13, 14])
    assert np.array_equal(plain[0], ids) and all("score" not in c for c in plain[1])
