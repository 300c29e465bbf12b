"""transformers' torchvision and timm code paths against what ``--model hf:`` runs, in the torchvision tier
(``make test-vision``, .venv-vision), skipped without torchvision:

- OneFormer's post-processing with torchvision's ``resize`` against panbench's stand-in for it (what runs without
  torchvision): bit for bit on random inputs, and the same segments and metrics of a tiny OneFormer on the demo set;
- Mask2Former, EoMT and EoMT-DINOv3 with transformers' torchvision processor against its PIL processor, which
  ``eval`` asks for whatever is installed (the record's ``processor_class``);
- DETR laid out as the hub's ``facebook/detr-resnet-50-panoptic`` is (a timm backbone) through ``hf:DIR``: its
  record equals ``panbench score`` on the PNGs it saved and the same model run by hand through transformers.

Numbers in docs/huggingface.md ("Which processor", "What was not run here"); run with ``-s`` to print them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
tv = pytest.importorskip("torchvision", reason="torchvision is not installed (make setup-vision; make test-vision)")
pytestmark = pytest.mark.torchvision

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.transforms.v2 import functional as tvF  # noqa: E402
from transformers import AutoImageProcessor  # noqa: E402

from panbench.cli import main  # noqa: E402
from panbench.data.datasets import load_dataset  # noqa: E402
from panbench.models.hf import model as hf  # noqa: E402
from panbench.pq.accumulator import PanopticAccumulator  # noqa: E402
from panbench.pq.evaluator import score_pair  # noqa: E402
from panbench.pq.matching import METRIC_KEYS  # noqa: E402
from panbench.pq.png import read_ids  # noqa: E402

STOCK = ["--pipeline", "transformers"]  # the references are transformers' own inference

def _names(root: Path) -> list[str]:
    return [c["name"] for c in json.loads((root / "annotations" / "panoptic_val2017.json").read_text())["categories"]]


def _eval(model: str, root: Path, results: Path, *extra: str) -> dict:
    rc = main(["eval", *STOCK, "--model", model, "--dataset", "demo", "--data-root", str(root), "--results",
               str(results),
               "--workers", "0", "--cpu-procs", "1", "--no-progress", *extra])
    assert rc == 0
    rows = list(csv.DictReader(open(results / "runs.csv")))
    return json.loads((results / rows[-1]["record"]).read_text())


def _saved(preds: Path) -> dict[int, tuple[np.ndarray, list[dict]]]:
    """The predictions ``--save-predictions`` wrote: image id -> (segment-id map, segments_info)."""
    (js,) = (p for p in preds.glob("*.json") if not p.name.endswith("_instances.json"))
    return {a["image_id"]: (read_ids(js.parent / js.stem / a["file_name"], "prediction"), a["segments_info"])
            for a in json.loads(js.read_text())["annotations"]}


def _segments(ids: np.ndarray, infos: list[dict]) -> set[tuple[int, bytes]]:
    """An image's segments as (category, pixels): what PQ reads, whatever ids they carry."""
    return {(int(s["category_id"]), (ids == s["id"]).tobytes()) for s in infos}


# ---- OneFormer: torchvision's resize against the stand-in ----------------------------------------------------------

RESIZES = [((20, 16, 21), (126, 169)), ((20, 128, 160), (37, 45)), ((5, 33, 47), (33, 47)), ((7, 64, 48), (100, 31)),
           ((3, 1, 1), (9, 5)), ((250, 25, 34), (480, 640)), ((4, 300, 200), (150, 99))]  # up, down, same, mixed


def test_the_oneformer_resize_stand_in_equals_torchvisions_resize_bit_for_bit() -> None:
    """``compute_segments``' call, ``tvF.resize(mask_probs.unsqueeze(0), size=target_size,
    interpolation=tvF.InterpolationMode.BILINEAR)``, on random float32 mask probabilities: torchvision's and the
    stand-in's results are the same tensors (largest difference 0), upsampled, downsampled or left as they are."""
    stand_in = hf.torchvision_resize_stand_in()
    g = torch.Generator().manual_seed(0)
    largest = 0.0
    for shape, size in RESIZES:
        for k in range(3):
            x = torch.rand(shape, generator=g) if k < 2 else torch.randn(shape, generator=g).sigmoid()
            theirs = tvF.resize(x.unsqueeze(0), size=size, interpolation=tvF.InterpolationMode.BILINEAR)[0]
            ours = stand_in.resize(x.unsqueeze(0), size=size, interpolation=stand_in.InterpolationMode.BILINEAR)[0]
            assert ours.shape == theirs.shape == (shape[0], *size) and ours.dtype == theirs.dtype
            largest = max(largest, (ours - theirs).abs().max().item())
            assert torch.equal(ours, theirs), (shape, size)
            assert (ours.data_ptr() == x.data_ptr()) == (theirs.data_ptr() == x.data_ptr())  # same size: no copy
    print(f"\nlargest difference, stand-in vs torchvision, {len(RESIZES) * 3} resizes: {largest}")


def test_tiny_oneformer_gives_the_same_segments_and_metrics_with_torchvisions_resize_and_the_stand_in(
        demo_root, tmp_path, monkeypatch) -> None:
    """The tiny OneFormer through ``hf:DIR`` on the whole demo set: with torchvision's resize (transformers' own
    call) and with the stand-in put where transformers calls it, every image's segments, the nine metrics and
    every class are the same."""
    from transformers.models.oneformer import image_processing_pil_oneformer as pil

    d = hf_tiny.build("oneformer", _names(demo_root), tmp_path / "oneformer")
    assert pil.tvF is tvF  # transformers' own call: torchvision's
    real = _eval(f"hf:{d}", demo_root, tmp_path / "r1", "--save-predictions", str(tmp_path / "p1"))
    monkeypatch.setattr(pil, "tvF", hf.torchvision_resize_stand_in())
    shim = _eval(f"hf:{d}", demo_root, tmp_path / "r2", "--save-predictions", str(tmp_path / "p2"))
    assert json.loads(real["provenance"]["config"])["processor_class"] == "OneFormerImageProcessorPil"
    assert real["n_images"] == shim["n_images"] == 60
    assert real["metrics"] == shim["metrics"] and real["per_class"] == shim["per_class"]
    a, b = _saved(tmp_path / "p1"), _saved(tmp_path / "p2")
    assert a.keys() == b.keys()
    for i in a:
        assert np.array_equal(a[i][0], b[i][0]) and a[i][1] == b[i][1], i
    n = sum(len(v[1]) for v in a.values())
    assert n > 0
    print(f"\nOneFormer, demo set: PQ {real['metrics']['PQ']} either way, {n} segments, all identical")


# ---- Mask2Former, EoMT: torchvision's processor against the PIL processor --------------------------------------------

PIL_CLASS = {"mask2former": "Mask2FormerImageProcessorPil", "eomt": "EomtImageProcessorPil",
             "eomt_dinov3": "EomtImageProcessorPil"}


@pytest.mark.parametrize("kind", list(PIL_CLASS))
def test_eval_runs_the_pil_processor_with_torchvision_installed_and_the_fast_one_differs(kind, demo_root,
                                                                                       tmp_path) -> None:
    """With torchvision installed, transformers 5's ``AutoImageProcessor`` picks the torchvision processor (for
    EoMT the one the hub's ``EomtImageProcessorFast`` names); ``eval`` asks for the PIL one (the record's
    ``processor_class``), whose numbers are those of the environment without torchvision: the record equals the
    model run by hand with the PIL processor, to the last digit.  The torchvision processor's predictions of the
    same model, on the whole demo set, are measured beside it (PQ, images and pixels whose segment differs, and
    the PQ of the one scored against the other as ground truth)."""
    ds = load_dataset(demo_root, name="demo")
    names = _names(demo_root)
    spelled = {n: n for n in names}
    d = hf_tiny.build(kind, names, tmp_path / kind)
    assert type(AutoImageProcessor.from_pretrained(d)).__name__ == PIL_CLASS[kind].removesuffix("Pil")
    rec = _eval(f"hf:{d}", demo_root, tmp_path / "r")
    assert json.loads(rec["provenance"]["config"])["processor_class"] == PIL_CLASS[kind]
    pil = {s.image_id: (seg, segs) for s, seg, segs in hf_tiny.predictions(d, ds, kind, spelled, "pil")}
    fast = {s.image_id: (seg, segs) for s, seg, segs in hf_tiny.predictions(d, ds, kind, spelled, "torchvision")}
    scores = {}
    for name, preds in (("pil", pil), ("torchvision", fast)):
        ev = PanopticAccumulator(ds.categories)
        for s in ds.samples:
            ev.add(score_pair(ev.categories, read_ids(s.gt_png, "gt"), s.gt_ann["segments_info"], *preds[s.image_id],
                              f"image {s.image_id}"))
        scores[name] = ev.evaluate()
    assert rec["n_images"] == 60
    assert rec["metrics"] == {k: scores["pil"][k] for k in METRIC_KEYS}
    assert rec["per_class"] == json.loads(json.dumps(scores["pil"]["per_class"]))
    agree = PanopticAccumulator(ds.categories)  # the torchvision processor's segments against the PIL one's
    for i, (seg, segs) in pil.items():  # a ground truth's segments carry their area
        gt_segs = [{**x, "area": int((seg == x["id"]).sum())} for x in segs]
        agree.add(score_pair(agree.categories, seg, gt_segs, *fast[i], f"image {i}"))
    same = sum(_segments(*pil[i]) == _segments(*fast[i]) for i in pil)
    pixels = sum(int((pil[i][0] != fast[i][0]).sum()) for i in pil)
    total = sum(v[0].size for v in pil.values())
    print(f"\n{kind}: PQ pil {scores['pil']['PQ']!r}, torchvision {scores['torchvision']['PQ']!r}; images with "
          f"identical segments {same} of {len(pil)}; pixels differing {pixels} of {total}; PQ of the torchvision "
          f"processor's against the PIL processor's {agree.evaluate()['PQ']!r}")
    assert sum(len(v[1]) for v in pil.values()) > 0
    assert same < len(pil) and pixels > 0  # the torchvision processor's segments differ (docs/huggingface.md)


# ---- DETR in the hub's layout: a timm backbone ---------------------------------------------------------------------

def test_detr_with_a_timm_backbone_in_the_hubs_layout_scores_as_panbench_score_does(demo_root, tmp_path,
                                                                                     capsys) -> None:
    """A tiny random DETR laid out as ``facebook/detr-resnet-50-panoptic`` is (``use_timm_backbone``, 250 labels
    by COCO category id with ``N/A`` placeholders, the legacy ``DetrFeatureExtractor`` preprocessor file)
    evaluates through ``hf:DIR`` on timm; its record equals ``panbench score`` on the PNGs it saved and the same
    model run by hand through transformers' API, and names timm among the packages it ran on."""
    pytest.importorskip("timm", reason="timm is not installed (make setup-vision)")
    cats = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())["categories"]
    by_id = {c["id"]: c["name"] for c in cats}
    d = hf_tiny.detr_hub_layout([by_id.get(i, "N/A") for i in range(250)], tmp_path / "detr-resnet-panoptic")
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["use_timm_backbone"] is True and "backbone_config" not in cfg and cfg["id2label"]["0"] == "N/A"
    limit = 12
    rec = _eval(f"hf:{d}", demo_root, tmp_path / "r", "--limit", str(limit), "--save-predictions",
                str(tmp_path / "p"))
    resolved = json.loads(rec["provenance"]["config"])
    assert resolved["model_class"] == "DetrForSegmentation" and resolved["config"]["backbone_config"][
        "model_type"] == "timm_backbone"
    assert rec["architecture"] == "DETR" and rec["backbone"] == "resnet10t"
    assert resolved["processor_class"] == "DetrImageProcessorPil"  # from the hub's DetrFeatureExtractor file
    assert resolved["processor"]["size"] == {"shortest_edge": 64, "longest_edge": 128}
    import timm

    assert rec["provenance"]["versions"]["timm"] == timm.__version__
    assert sum(v["TP"] + v["FP"] for v in rec["per_class"].values()) > 0  # segments were predicted and scored
    # panbench score on the saved PNGs, against the ground truth of the images the run took
    gt = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    gt["images"] = gt["images"][:limit]
    keep = {im["id"] for im in gt["images"]}
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (js,) = (p for p in (tmp_path / "p").glob("*.json") if not p.name.endswith("_instances.json"))
    capsys.readouterr()
    assert main(["score", "--gt-json", str(tmp_path / "gt.json"), "--gt-dir",
                 str(demo_root / "annotations" / "panoptic_val2017"), "--pred-json", str(js), "--pred-dir",
                 str(js.parent / js.stem), "--procs", "1", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert {k: scored[k] for k in METRIC_KEYS} == rec["metrics"] and scored["per_class"] == rec["per_class"]
    ref = hf_tiny.reference(d, load_dataset(demo_root, name="demo", limit=limit), "detr",
                            {n: n for n in by_id.values()})
    assert rec["metrics"] == {k: ref[k] for k in METRIC_KEYS}
    assert rec["per_class"] == json.loads(json.dumps(ref["per_class"]))
    print(f"\nDETR (timm resnet10t, hub layout), {limit} demo images: PQ {rec['metrics']['PQ']!r}")
