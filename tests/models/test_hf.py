"""``--model hf:``: transformers panoptic models through panbench's eval path, offline.

Tiny random-init models (tests/hf_tiny.py) are saved with ``save_pretrained`` and their processor, as
the hub ships them, with the label names of the demo set's or the COCO sample's categories.  Each run's
record must equal an independent reference: the model and processor called the way a model card shows, the
original release's post-processing settings (written out again here), labels mapped by name, scored by the
same evaluator."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForUniversalSegmentation as AutoModel  # noqa: E402

from panbench.cli import main  # noqa: E402
from panbench.data.datasets import load_dataset  # noqa: E402
from panbench.errors import PanbenchError  # noqa: E402
from panbench.models.families import FAMILIES, open_model  # noqa: E402
from panbench.models.hf import fusion  # noqa: E402
from panbench.models.hf import model as hf  # noqa: E402
from panbench.models.hf.types import TYPES  # noqa: E402
from panbench.models.registry import all_models, ref_spec, resolve  # noqa: E402
from panbench.package import REPO_ROOT  # noqa: E402
from panbench.pq.matching import METRIC_KEYS  # noqa: E402


def _names(ann: Path) -> list[str]:
    return [c["name"] for c in json.loads(ann.read_text())["categories"]]


def _eval(model: str, root: Path, dataset: str, results: Path, *extra: str) -> tuple[int, dict | None]:
    stock = [] if "," in model else ["--pipeline", "transformers"]  # the reference is transformers' own inference
    rc = main(["eval", *stock, "--model", model, "--dataset", dataset, "--data-root", str(root), "--results",
               str(results), "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress", *extra])
    if rc != 0:
        return rc, None
    rows = list(csv.DictReader(open(results / "runs.csv")))
    return rc, json.loads((results / rows[-1]["record"]).read_text())


def reference(d: Path, root: Path, dataset: str, limit: int | None, kind: str, spelled: dict[str, str]) -> dict:
    return hf_tiny.reference(d, load_dataset(root, name=dataset, limit=limit), kind, spelled)


def _same(rec: dict, ref: dict) -> None:
    assert rec["n_images"] == ref["n_images"]
    assert {k: rec["metrics"][k] for k in METRIC_KEYS} == {k: ref[k] for k in METRIC_KEYS}
    assert rec["per_class"] == json.loads(json.dumps(ref["per_class"]))  # TP/FP/FN and PQ per category
    assert rec["semantic"] == {k: ref[k] for k in rec["semantic"]}  # pixel accuracy, mIoU: the id maps agree
    assert sum(v["TP"] + v["FP"] for v in rec["per_class"].values()) > 0  # segments were predicted and scored




@pytest.mark.parametrize("kind", hf_tiny.KINDS)
def test_demo_set_whole_path_equals_the_transformers_reference(kind, demo_root, tmp_path) -> None:
    names = _names(demo_root / "annotations" / "panoptic_val2017.json")
    d = hf_tiny.build(kind, names, tmp_path / kind)
    rc, rec = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "results", "--limit", "4")
    assert rc == 0
    assert rec["framework"] == "transformers" and rec["model"] == f"hf-{kind}"
    assert rec["architecture"] == TYPES[kind].architecture and rec["postprocess"] == "default"
    assert rec["provenance"]["checkpoint"] == {"path": str(d), "url": None, "sha256": hf.digest(d)}
    assert json.loads(rec["provenance"]["config"])["postprocess"] == hf_tiny.PUBLISHED[kind]
    assert rec["params"] == sum(p.numel() for p in AutoModel.from_pretrained(d).parameters())
    versions = rec["provenance"]["versions"]  # the transformers family's packages, not MMDetection's
    assert versions["transformers"] and versions["torch"] and not {"mmdet", "mmcv", "mmengine"} & set(versions)
    _same(rec, reference(d, demo_root, "demo", 4, kind, {n: n for n in names}))


def test_coco_sample_with_detr_label_layout_and_mask2former_spelling(coco_sample, tmp_path) -> None:
    """DETR's hub layout: label id = COCO category id, 'N/A' for the ids no category uses; Mask2Former's labels
    spelled with other case and '_' for spaces: both map by name to the COCO sample's categories."""
    cats = json.loads((coco_sample / "annotations" / "panoptic_val2017.json").read_text())["categories"]
    by_id = {c["id"]: c["name"] for c in cats}
    detr_labels = [by_id.get(i, "N/A") for i in range(max(by_id) + 1)]
    d = hf_tiny.build("detr", [], tmp_path / "detr", labels=detr_labels)
    rc, rec = _eval(f"hf:{d}", coco_sample, "coco", tmp_path / "r1")
    assert rc == 0 and rec["framework"] == "transformers" and rec["n_images"] == 2
    _same(rec, reference(d, coco_sample, "coco", None, "detr", {n: n for n in by_id.values()}))
    spelled = {n.replace(" ", "_").title(): n for n in by_id.values()}  # 'Traffic_Light' -> 'traffic light'
    d2 = hf_tiny.build("mask2former", list(spelled), tmp_path / "m2f")
    rc, rec2 = _eval(f"hf:{d2}", coco_sample, "coco", tmp_path / "r2")
    assert rc == 0 and rec2["architecture"] == "Mask2Former"
    _same(rec2, reference(d2, coco_sample, "coco", None, "mask2former", spelled))


def test_forked_processes_and_resume_give_the_single_process_metrics(demo_root, tmp_path) -> None:
    d = hf_tiny.build("mask2former", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "m")
    _, one = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "a", "--limit", "6")
    rc, forked = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "b", "--limit", "6", "--cpu-procs", "2",
                       "--workers", "1")
    assert rc == 0 and forked["timings"]["cpu_procs"] == 2
    rc, resumed = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "a", "--limit", "6")
    assert rc == 0 and resumed["timings"]["resumed_images"] == 6
    for rec in (forked, resumed):
        assert rec["metrics"] == one["metrics"] and rec["per_class"] == one["per_class"]
    hf_tiny.build("mask2former", _names(demo_root / "annotations" / "panoptic_val2017.json"), d, seed=1)
    rc, other = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "a", "--limit", "6")  # new weights: new cache key
    assert rc == 0 and other["timings"]["resumed_images"] == 0


@pytest.mark.slow
def test_two_torchrun_ranks_give_the_single_process_metrics(demo_root, tmp_path) -> None:
    """Two ranks (gloo, the environment torchrun gives each process), each scoring half of the images."""
    import os
    import socket
    import subprocess
    import sys

    d = hf_tiny.build("mask2former", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "m")
    _, one = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "one", "--limit", "6")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    args = ["eval", "--model", f"hf:{d}", "--dataset", "demo", "--data-root", str(demo_root), "--device", "cpu",
            "--workers", "0", "--no-progress", "--limit", "6", "--results", str(tmp_path / "two"),
            "--pipeline", "transformers"]
    procs = [subprocess.Popen([sys.executable, "-m", "panbench", *args], cwd=REPO_ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                   "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                                   "OMP_NUM_THREADS": "1"}) for r in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    rows = list(csv.DictReader(open(tmp_path / "two" / "runs.csv")))
    assert len(rows) == 1  # rank 0 writes the record
    two = json.loads((tmp_path / "two" / rows[0]["record"]).read_text())
    assert two["world_size"] == 2 and two["n_images"] == 6
    assert two["metrics"] == one["metrics"] and two["per_class"] == one["per_class"]


def test_weights_saved_in_bf16_run_in_float32_without_amp(demo_root, tmp_path) -> None:
    """transformers 5 loads weights in the dtype they were saved in: panbench loads float32, so a model saved in
    bf16 gives, without --amp, the metrics of the same (bf16-rounded) weights saved in float32."""
    import shutil

    d = hf_tiny.build("mask2former", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "m")
    rounded = AutoModel.from_pretrained(d, dtype=torch.float32).to(torch.bfloat16)
    d16, d32 = shutil.copytree(d, tmp_path / "bf16"), shutil.copytree(d, tmp_path / "fp32")
    rounded.save_pretrained(d16)
    rounded.to(torch.float32).save_pretrained(d32)
    assert json.loads((d16 / "config.json").read_text())["dtype"] == "bfloat16"
    rc16, rec16 = _eval(f"hf:{d16}", demo_root, "demo", tmp_path / "r16", "--limit", "3")
    rc32, rec32 = _eval(f"hf:{d32}", demo_root, "demo", tmp_path / "r32", "--limit", "3")
    assert rc16 == rc32 == 0 and rec16["amp"] == "fp32"
    assert rec16["metrics"] == rec32["metrics"] and rec16["per_class"] == rec32["per_class"]


def test_batch_amp_and_mask_wise_postprocess(demo_root, tmp_path) -> None:
    d = hf_tiny.build("mask2former", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "m")
    rc, rec = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "r", "--limit", "4", "--batch-size", "2",
                    "--amp", "bf16", "--postprocess", "argmax")
    assert rc == 0 and rec["n_images"] == 4 and rec["batch_size"] == 2 and rec["amp"] == "bf16"
    assert rec["postprocess"] == "argmax"
    rc, mw = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "r", "--limit", "2", "--postprocess", "maskwise")
    assert rc == 0 and mw["postprocess"].startswith("maskwise")


def test_viz_draws_an_hf_model_beside_a_demo_model(demo_root, tmp_path) -> None:
    """An EoMT: viz runs an hf: model's default pipeline (the original's), which for EoMT is its processor's 64 px
    square; a Mask2Former's would be detectron2's 800 px short side, seconds per forward, and no part of drawing."""
    d = hf_tiny.build("eomt", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "m")
    image_id = load_dataset(demo_root, name="demo").image_ids[0]
    out = tmp_path / "viz.png"
    assert main(["viz", "--model", f"hf:{d}", "--model", "demo-mask2former", "--image", str(image_id), "--dataset",
                 "demo", "--data-root", str(demo_root), "--device", "cpu", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_refusals_are_one_line(demo_root, tmp_path, capsys, monkeypatch) -> None:
    names = _names(demo_root / "annotations" / "panoptic_val2017.json")
    bad = hf_tiny.build("mask2former", [*names, "unicorn", "dragon"], tmp_path / "bad")
    detr = hf_tiny.build("detr", names, tmp_path / "detr")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cases = [
        (f"hf:{tmp_path / 'empty'}", [], [f"{tmp_path / 'empty'}: no config.json", "save_pretrained"]),
        (f"hf:{bad}", [], ["'unicorn'", "'dragon'", "2 of the model's"]),
        (f"hf:{tmp_path / 'missing'}", [], ["model directory not found"]),
        ("hf:nobody-here/no-such-model", [], ["not in the Hugging Face cache", "hf download"]),
        (f"hf:{detr}", ["--postprocess", "maskwise"], ["needs a MaskFormer, Mask2Former or OneFormer model"]),
        (f"hf:{detr}", ["--checkpoint", str(detr / "config.json")], ["--checkpoint does not apply"]),
    ]
    for model, extra, needles in cases:
        capsys.readouterr()
        rc, _ = _eval(model, demo_root, "demo", tmp_path / "r", "--limit", "2", *extra)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and "Traceback" not in err, err
        for n in needles:
            assert n in err, err


def test_an_unregistered_hf_model_follows_the_dataset_of_the_others(demo_root, tmp_path, monkeypatch) -> None:
    """An EoMT: a list runs an hf: model on its default pipeline (the original's; --pipeline is refused beside an
    mmdet model), for EoMT its processor's 64 px square, for a Mask2Former detectron2's 800 px short side, which
    the dataset a run follows does not depend on."""
    d = hf_tiny.build("eomt", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "m")
    monkeypatch.chdir(REPO_ROOT)  # the default --data-root data/demo is relative
    for k, models in enumerate([f"hf:{d},demo-mask2former", f"demo-mask2former,hf:{d}"]):
        assert main(["eval", "--model", models, "--results", str(tmp_path / f"r{k}"), "--limit", "2", "--workers",
                     "0", "--cpu-procs", "1", "--no-progress"]) == 0  # no --dataset: the demo model's
        rows = list(csv.DictReader(open(tmp_path / f"r{k}" / "runs.csv")))
        assert [r["dataset"] for r in rows] == ["demo", "demo"]


def test_options_an_hf_model_refuses_stop_a_list_before_any_model_runs(demo_root, tmp_path, capsys) -> None:
    names = _names(demo_root / "annotations" / "panoptic_val2017.json")
    detr = hf_tiny.build("detr", names, tmp_path / "detr")
    m2f = hf_tiny.build("mask2former", names, tmp_path / "m2f")
    cases = [(f"demo-mask2former,hf:{detr}", ["--postprocess", "maskwise"], "is DETR"),
             (f"demo-mask2former,hf:{m2f}", ["--cfg-options", "model.test_cfg.object_mask_thr=0.9"],
              "takes only its post-processing's threshold, mask_threshold, overlap_mask_area_threshold")]
    for k, (models, extra, needle) in enumerate(cases):
        capsys.readouterr()
        rc, _ = _eval(models, demo_root, "demo", tmp_path / f"r{k}", "--limit", "2", *extra)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and needle in err, err
        assert not (tmp_path / f"r{k}" / "runs").exists()  # demo-mask2former, listed first, did not run


def test_label_mapping_rule() -> None:
    cats = SimpleNamespace(ids=[1, 2, 3, 4, 5, 6], names=["person", "traffic light", "wall-other-merged", "sky",
                                                           "floor-wood", "floor-other-merged"],
                           isthing=[1, 1, 0, 0, 0, 0])
    labels = {0: "Sky", 1: "N/A", 2: "wall", 3: "traffic_light", 4: "person", 5: "floor-wood", 6: "floor"}
    order, cat_ids, skipped = hf.map_labels(labels, cats, "m")
    assert skipped == [1]
    assert order == [3, 4, 0, 2, 5, 6] and cat_ids == [2, 1, 4, 3, 5, 6]  # things first, then stuff, by label id
    with pytest.raises(PanbenchError, match="'horse'"):
        hf.map_labels({0: "person", 1: "horse"}, cats, "m")
    two = SimpleNamespace(ids=[1, 2], names=["wall-other", "wall-merged"], isthing=[0, 0])  # 'wall' is ambiguous
    with pytest.raises(PanbenchError, match="'wall'"):
        hf.map_labels({0: "wall"}, two, "m")
    with pytest.raises(PanbenchError, match="both map to category 1"):
        hf.map_labels({0: "person", 1: "Person"}, cats, "m")


def test_a_label_maps_by_a_categorys_synonym_then_by_the_datasets_aliases() -> None:
    """ADE20K's categories carry synonyms (``painting, picture``) and its checkpoints label some classes by another of
    them: a label is found among a category's comma-separated synonyms when no earlier rule finds it, then through the
    dataset's aliases (label -> category name); a synonym two categories share, or an alias to a name that is not a
    category, maps nothing."""
    cats = SimpleNamespace(ids=[0, 1, 2, 3], names=["painting, picture", "window", "rock, stone", "stone wall, stone"],
                           isthing=[1, 1, 0, 0])
    order, cat_ids, _ = hf.map_labels({0: "painting", 1: "windowpane", 2: "rock"}, cats, "m",
                                      {"windowpane": "window", "tv": "television"})
    assert dict(zip(order, cat_ids)) == {0: 0, 1: 1, 2: 2}
    with pytest.raises(PanbenchError, match="'windowpane'"):
        hf.map_labels({0: "windowpane"}, cats, "m")  # no alias given
    with pytest.raises(PanbenchError, match="'stone'"):
        hf.map_labels({0: "stone"}, cats, "m")  # two categories' synonym
    with pytest.raises(PanbenchError, match="'tv'"):
        hf.map_labels({0: "tv"}, cats, "m", {"tv": "television"})  # an alias to no category


def test_transformers_segments_become_panbench_segments() -> None:
    """transformers' segment map -> panbench's segments: ids 1..n in segments_info order (a fused stuff class
    lists its id once per query), placeholder labels, segments without pixels and -1/0 VOID."""
    seg = torch.tensor([[1, 1, 2], [3, 2, 0], [-1, 4, 4]])
    infos = [{"id": 1, "label_id": 5}, {"id": 2, "label_id": 2}, {"id": 2, "label_id": 2},
             {"id": 3, "label_id": 6}, {"id": 7, "label_id": 2}, {"id": 4, "label_id": 5}]
    ids, segs = fusion.to_panbench_segments(seg, infos, label_of={5: 0, 2: 1}, label2cat=[11, 22])
    assert ids.dtype == np.uint32 and ids.tolist() == [[1, 1, 2], [0, 2, 0], [0, 3, 3]]
    assert segs == [{"id": 1, "category_id": 11, "iscrowd": 0}, {"id": 2, "category_id": 22, "iscrowd": 0},
                    {"id": 3, "category_id": 11, "iscrowd": 0}]


def test_batch_padding_is_cropped_from_each_images_mask_logits() -> None:
    """An image padded further by its batch gets its mask logits cropped back to its own processed size (the
    padding at the mask resolution, rounded up); class logits and an image of the batch's size pass unchanged."""
    masks = torch.arange(2 * 3 * 16 * 32, dtype=torch.float32).reshape(2, 3, 16, 32)
    outputs = {"class_queries_logits": torch.zeros(2, 3, 5), "masks_queries_logits": masks}
    small = fusion.one_image(outputs, 0, (64, 90), (64, 128))  # 90 px of 128 -> ceil(22.5) = 23 of 32 mask columns
    assert tuple(small.masks_queries_logits.shape) == (1, 3, 16, 23)
    assert torch.equal(small.masks_queries_logits[0], masks[0, :, :, :23])
    full = fusion.one_image(outputs, 1, (64, 128), (64, 128))
    assert torch.equal(full.masks_queries_logits[0], masks[1]) and tuple(full.class_queries_logits.shape) == (1, 3, 5)


def test_only_the_fields_post_processing_reads_are_cast_to_float32() -> None:
    """Under --amp the pixel decoder's features (bf16, 256 channels at a quarter of the input) are not copied to
    float32 per image: only the logits the post-processing reads are."""
    outputs = {"class_queries_logits": torch.zeros(1, 3, 5, dtype=torch.bfloat16),
               "masks_queries_logits": torch.zeros(1, 3, 8, 8, dtype=torch.bfloat16),
               "pixel_decoder_last_hidden_state": torch.zeros(1, 256, 8, 8, dtype=torch.bfloat16)}
    one = fusion.one_image(outputs, 0, (32, 32), (32, 32))
    assert set(vars(one)) == {"class_queries_logits", "masks_queries_logits"}
    assert {v.dtype for v in vars(one).values()} == {torch.float32}


def test_registry_entries_and_ls(capsys) -> None:
    entries = all_models(framework="transformers")
    assert {s.architecture for s in entries} == {"Mask2Former", "MaskFormer", "OneFormer", "DETR", "EoMT"}
    for s in entries:
        assert s.ref and s.framework == "transformers"
        assert s.dataset == "coco" or s.name.endswith(f"-{s.dataset}")  # another dataset's checkpoint says which
        assert bool(s.published) == bool(s.published_source)  # a number only with its source
    spec = resolve("hf:facebook/detr-resnet-50-panoptic")[0]
    assert spec.name == "hf-detr_r50" and spec.published == {"PQ": 43.4}
    assert ref_spec(FAMILIES["transformers"], "/some/dir/my-model/").name == "hf-my-model"
    assert main(["ls", "--only-dataset", "coco"]) == 0
    out = capsys.readouterr().out
    assert "hf-mask2former_swin-t" in out and "hf-oneformer_swin-l" in out and "57.9" in out
    eomt = {s.name: s for s in entries if s.architecture == "EoMT" and "DINOv2" in s.backbone and s.dataset == "coco"}
    assert {s.ref: (s.input_size, s.published["PQ"], s.published_fps) for s in eomt.values()} == {
        "tue-mps/coco_panoptic_eomt_small_640_2x": ("640x640", 46.7, 330),
        "tue-mps/coco_panoptic_eomt_base_640_2x": ("640x640", 51.6, 261),
        "tue-mps/coco_panoptic_eomt_large_640": ("640x640", 56.0, 128),
        "tue-mps/coco_panoptic_eomt_giant_640": ("640x640", 57.0, 55),
        "tue-mps/coco_panoptic_eomt_large_1280": ("1280x1280", 58.3, 30),
        "tue-mps/coco_panoptic_eomt_giant_1280": ("1280x1280", 59.2, 12)}
    row = next(line.split() for line in out.splitlines() if line.startswith("hf-eomt_l-1280 "))
    assert row[:10] == ["hf-eomt_l-1280", "EoMT", "ViT-L", "(DINOv2)", "coco", "1280x1280", "58.3", "(eomt)", "-", "-"]


def test_eomt_segments_equal_transformers_post_processing_image_by_image(demo_root, tmp_path) -> None:
    """Each saved prediction of an EoMT model (hub layout: the fast processor's name, padded square inputs) holds
    the segments of transformers' own ``post_process_panoptic_segmentation`` with ``stuff_classes``: the same
    pixels with the same category, image by image."""
    import numpy as np

    from panbench.pq.png import read_ids

    names = _names(demo_root / "annotations" / "panoptic_val2017.json")
    d = hf_tiny.build("eomt", names, tmp_path / "eomt")
    rc, _ = _eval(f"hf:{d}", demo_root, "demo", tmp_path / "r", "--limit", "4", "--save-predictions",
                  str(tmp_path / "p"))
    assert rc == 0
    (js,) = (p for p in (tmp_path / "p").glob("*.json") if not p.name.endswith("_instances.json"))  # AP's beside
    saved = {a["image_id"]: a for a in json.loads(js.read_text())["annotations"]}
    n = 0
    for s, seg, segs in hf_tiny.predictions(d, load_dataset(demo_root, name="demo", limit=4), "eomt",
                                            {x: x for x in names}):
        ann = saved[s.image_id]
        ids = read_ids(js.parent / js.stem / ann["file_name"], "prediction")
        ours = {(c["category_id"], (ids == c["id"]).tobytes()) for c in ann["segments_info"]}
        theirs = {(c["category_id"], (seg == c["id"]).tobytes()) for c in segs}
        assert ours == theirs, s.image_id
        assert np.array_equal(ids == 0, seg == 0)
        n += len(theirs)
    assert n > 0  # segments were predicted


def test_an_unregistered_model_is_named_by_its_config_without_changing_its_spec(demo_root, tmp_path) -> None:
    """The record names an unregistered ``hf:`` model's architecture and backbone from its config; the spec the
    run was given (the registry's, shared by every run of a list) keeps its own."""
    from panbench.data.datasets import load_dataset as load
    from panbench.evaluation.options import EvalOptions
    from panbench.evaluation.run import Run

    d = hf_tiny.build("eomt", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "m")
    spec = ref_spec(FAMILIES["transformers"], str(d))
    opts = EvalOptions(cache_root=tmp_path / "cache", device="cpu")
    run = Run(spec, load(demo_root, name="demo", limit=2), opts)
    assert (run.spec.architecture, spec.architecture) == ("EoMT", "transformers")


def test_postprocess_on_eomt_is_refused_with_the_reason(demo_root, tmp_path, capsys) -> None:
    """EoMT's query masks cover the square its processor pads each image to, which panbench's maskwise/argmax
    merging would stretch onto the image: refused in one line that says so, before any model runs (a directory
    or a registered EoMT) and at load (a model only its config names)."""
    from panbench.models.postprocess import PostProcess

    d = hf_tiny.build("eomt", _names(demo_root / "annotations" / "panoptic_val2017.json"), tmp_path / "eomt")
    rc, _ = _eval(f"demo-mask2former,hf:{d}", demo_root, "demo", tmp_path / "r", "--limit", "2", "--postprocess",
                  "maskwise")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and not (tmp_path / "r" / "runs").exists(), err
    assert "--postprocess maskwise needs a" in err and "is EoMT: EoMT's query masks cover its padded square" in err
    assert err.endswith("leave --postprocess out, or the model out of --model (nothing was run)")
    (registered,) = resolve("hf-eomt_s-2x-640")
    with pytest.raises(PanbenchError, match="--postprocess argmax needs a .* is EoMT: EoMT's query masks cover"):
        open_model(registered).check_options(None, None, "argmax")
    m = hf.load_hf_model(str(d), load_dataset(demo_root, name="demo").categories, "cpu",
                         cfg_options={"pipeline": "transformers"}).model
    with pytest.raises(PanbenchError, match="is EoMT: EoMT's query masks cover its padded square"):
        m.configure(PostProcess("maskwise"), "panbench")


def test_a_detr_with_a_timm_backbone_runs_on_timm_and_the_others_do_not() -> None:
    from transformers import DetrConfig, Mask2FormerConfig, ResNetConfig

    from panbench.models.hf.model import backbone_packages

    assert backbone_packages(DetrConfig()) == ("timm",)  # the hub's DETR config: a timm backbone
    assert backbone_packages(SimpleNamespace(use_timm_backbone=True)) == ("timm",)  # as older transformers say it
    assert backbone_packages(DetrConfig(backbone_config=ResNetConfig())) == ()
    assert backbone_packages(Mask2FormerConfig()) == ()


def test_a_loaded_model_runs_on_its_family_packages_and_its_backbone(monkeypatch) -> None:
    from panbench.evaluation import loading
    from panbench.models.protocol import Built, Weights
    from panbench.models.registry import ref_spec

    spec = ref_spec(FAMILIES["transformers"], "facebook/detr-resnet-50-panoptic")
    family = SimpleNamespace(pipeline=None, module=SimpleNamespace(modules=list))
    built = Built(family, Weights(None, None, None), "", "", packages=("timm",))
    monkeypatch.setattr(type(open_model(spec)), "load_model", lambda *a: built)
    monkeypatch.setattr(loading, "check_model", lambda *a: None)  # a stand-in model: its packages are the subject
    lm = loading.load_model(spec, None, None, False, "cpu")
    assert lm.packages == (*FAMILIES["transformers"].packages, "timm")


@pytest.mark.parametrize(("version", "asked"), [("5.24.0", {"backend": "pil"}), ("5.15.0", {"backend": "pil"}),
                                                ("5.4.0", {"backend": "pil"}), ("5.3.0", {"use_fast": False}),
                                                ("5.0.0", {"use_fast": False}), ("4.56.2", {"use_fast": False})])
def test_the_pil_processor_is_asked_for_in_the_words_of_each_transformers(version: str, asked: dict) -> None:
    """``backend=`` exists from transformers 5.4 on (Colab's 5.15 has it); 5.0-5.3 and 4.x take ``use_fast``."""
    assert hf.processor_backend(version) == asked
