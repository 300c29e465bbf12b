"""``--pipeline original|transformers`` for ``hf:`` models (panbench.models.hf.original): the original's input sizes,
the pipeline in the record, its config text and cache key, like with like against the published numbers, and the
post-processing's kept queries upsampled alone giving what every query upsampled gives.  The originals' own code run
on the same outputs is tests/models/test_originals.py (``make test-vision``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers", reason="hf: models need transformers (make setup installs it)")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from panbench.cli import main  # noqa: E402
from panbench.errors import PanbenchError  # noqa: E402
from panbench.models.hf import original  # noqa: E402
from panbench.models.hf.types import TYPES  # noqa: E402

IMAGENET = SimpleNamespace(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                           size={"shortest_edge": 640, "longest_edge": 640})
D2, DETR, EOMT = (original.protocol_for(TYPES[t], IMAGENET, "coco") for t in ("mask2former", "detr", "eomt"))


@pytest.mark.parametrize(("hw", "d2", "detr", "eomt"), [
    ((480, 640), (800, 1067), (800, 1066), (480, 640)),  # COCO's most common size: detectron2 rounds, DETR truncates
    ((640, 480), (1067, 800), (1066, 800), (640, 480)),
    ((427, 640), (800, 1199), (800, 1199), (427, 640)),
    ((360, 640), (750, 1333), (750, 1333), (360, 640)),  # the longest edge bounds the resize
    ((333, 517), (800, 1242), (800, 1242), (412, 640)),
])
def test_input_sizes_are_the_originals(hw, d2, detr, eomt) -> None:
    assert D2.mean == (123.675, 116.28, 103.53) and D2.std == (58.395, 57.12, 57.375)  # detectron2's PIXEL_MEAN/STD
    assert original.resized_size(D2, *hw) == d2
    assert original.resized_size(DETR, *hw) == detr
    assert original.resized_size(EOMT, *hw) == eomt


def test_padding_to_the_size_divisibility_and_eomts_square() -> None:
    assert original.padded_size(D2, [(800, 1067), (800, 1199)]) == (800, 1216)
    assert original.padded_size(DETR, [(800, 1066), (750, 1333)]) == (800, 1333)
    rgb = np.random.default_rng(0).integers(0, 256, (333, 517, 3), dtype=np.uint8)
    x, size = original.preprocess(EOMT, rgb)
    assert x.shape == (3, 640, 640) and size == (412, 640)
    pad = (0 - torch.tensor(EOMT.mean)) / torch.tensor(EOMT.std)  # the uint8 image padded with 0, then normalised
    assert torch.equal(x[:, 412:, :], pad.view(3, 1, 1).expand(3, 228, 640))


def test_a_384_square_hub_processor_runs_at_the_originals_size_by_default(tmp_path) -> None:
    d = hf_tiny.build("mask2former", ["person", "sky"], tmp_path / "m")
    cfg = json.loads((d / "preprocessor_config.json").read_text())
    cfg["size"] = {"height": 384, "width": 384}  # as transformers' conversion script writes every Mask2Former
    (d / "preprocessor_config.json").write_text(json.dumps(cfg))
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((480, 640, 3), np.uint8)).save(img)
    from panbench.models.hf.model import load_hf_model

    cats = type("C", (), {"names": ["person", "sky"], "ids": [1, 2], "isthing": [1, 0]})()
    for pipeline, shape in (("original", (800, 1067)), ("transformers", (384, 384))):
        built = load_hf_model(str(d), cats, "cpu", cfg_options={"pipeline": pipeline})
        item = built.model.pipeline({"img_path": str(img)})
        assert tuple(item["pixel_values"].shape[-2:]) == shape
        assert built.pipeline == pipeline and json.loads(built.cfg_text)["pipeline"] == pipeline


def _run(root: Path, model: str, results: Path, *extra: str) -> dict:
    rc = main(["eval", "--model", model, "--dataset", "demo", "--data-root", str(root), "--results", str(results),
               "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress", "--limit", "2",
               "--flops-images", "0", *extra])
    assert rc == 0
    rows = list(csv.DictReader(open(results / "runs.csv")))
    return json.loads((results / rows[-1]["record"]).read_text())


def test_the_record_and_cache_key_name_the_pipeline(demo_root, tmp_path) -> None:
    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    d = hf_tiny.build("mask2former", names, tmp_path / "m")
    own = _run(demo_root, f"hf:{d}", tmp_path / "r")
    stock = _run(demo_root, f"hf:{d}", tmp_path / "r", "--pipeline", "transformers")
    assert own["provenance"]["pipeline"] == "original" and stock["provenance"]["pipeline"] == "transformers"
    assert "Mask2Former@9b0651c" in json.loads(own["provenance"]["config"])["original"]
    assert own["provenance"]["config_sha256_16"] != stock["provenance"]["config_sha256_16"]
    keys = [json.loads(p.read_text()) for p in (tmp_path / "r" / "cache").rglob("key.json")]
    assert sorted(k.get("pipeline") for k in keys) == ["original", "transformers"]


def test_pipeline_refused_for_a_model_of_another_framework(demo_root, tmp_path, capsys) -> None:
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path), "--pipeline", "transformers", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--pipeline applies to hf: models" in err[0]


def test_published_numbers_are_compared_under_their_own_pipeline_only() -> None:
    from panbench.records.schema import RunRecord
    from panbench.reporting.labels import other_pipeline

    base = {"model": "hf-x", "metrics": {}, "published": {"PQ": 50.0}, "published_rules": "panopticapi",
            "published_pipeline": "original"}
    same = RunRecord.from_json({**base, "provenance": {"pipeline": "original"}})
    other = RunRecord.from_json({**base, "provenance": {"pipeline": "transformers"}})
    assert other_pipeline(same) is None
    assert "published under the original pipeline, this run transformers" in str(other_pipeline(other))
    zoo = RunRecord.from_json({"model": "mask2former", "metrics": {}, "published": {"PQ": 51.9},
                               "published_rules": "panopticapi"})
    assert other_pipeline(zoo) is None  # mmdet's own inference made the zoo's numbers


@pytest.mark.parametrize("own_mask", [True, False])
def test_kept_queries_upsampled_alone_give_every_querys_upsampling(own_mask) -> None:
    """The originals upsample every query to the padded input; interpolation is per query, so upsampling only the
    kept ones gives the same map, bit for bit."""
    g = torch.Generator().manual_seed(0)
    cls = torch.randn(20, 6, generator=g) * 4
    masks = torch.randn(20, 56, 72, generator=g) * 3
    kept = original.query_fusion(cls, masks, (224, 288), (213, 281), (480, 640), [True, True, True, False, False],
                                 0.3, 0.0, own_mask)
    every = original.image_masks(masks, (224, 288), (213, 281), (480, 640))
    scores, labels = torch.softmax(cls, -1).max(-1)
    keep = labels.ne(5) & (scores > 0.3)
    assert torch.equal(every[keep], original.image_masks(masks[keep], (224, 288), (213, 281), (480, 640)))
    assert kept.info and kept.id_map.shape == (480, 640)


@pytest.mark.parametrize("own_mask", [True, False])
def test_masks_made_a_few_queries_at_a_time_give_the_map_of_all_at_once(own_mask, monkeypatch) -> None:
    """At Mapillary's size with its threshold 0.0 every query is kept: ``query_fusion`` holds the masks of a chunk of
    queries at a time (``CHUNK_VALUES``), a later chunk winning a pixel only with a larger value, which gives the
    map, segments and scores of all the queries at once, ties included (equal masks: the first query wins)."""
    g = torch.Generator().manual_seed(1)
    cls = torch.randn(24, 6, generator=g) * 4
    masks = torch.randn(24, 30, 40, generator=g) * 3 - 4  # mostly below 0.5: segments that pass the overlap test
    masks[7], masks[19] = masks[3], masks[3]  # equal values in different chunks: the first query keeps the pixels
    cls[7], cls[19] = cls[3], cls[3]
    args = ((32, 48), (30, 40), (90, 120), [True, True, True, False, False], 0.0, 0.8, own_mask)
    whole = original.query_fusion(cls, masks, *args)
    for values in (90 * 120, 5 * 90 * 120, 23 * 90 * 120):  # chunks of 1, 5 and 23 queries
        monkeypatch.setattr(original, "CHUNK_VALUES", values)
        chunked = original.query_fusion(cls, masks, *args)
        assert torch.equal(chunked.id_map, whole.id_map) and chunked.info == whole.info
    assert len(whole.info) > 3


def _segments(built, img: Path) -> tuple[np.ndarray, list]:
    m = built.model
    return m.to_segments(m.forward([m.pipeline({"img_path": str(img)})], "cpu", None)[0])


def test_eomts_fusion_step_alone_keeps_the_originals_segments(demo_root, tmp_path) -> None:
    """EoMT's transformers fusion is its original's but for ties at the thresholds: on the original's masks
    (``original-masks``: its processor's own compute_segments, which takes mask logits) the segments are the
    original's."""
    from panbench.data.datasets import load_dataset
    from panbench.models.hf.model import load_hf_model

    ds = load_dataset(demo_root, name="demo", limit=4)
    d = hf_tiny.build("eomt", list(ds.categories.names), tmp_path / "m")
    own, step = (load_hf_model(str(d), ds.categories, "cpu", cfg_options={"pipeline": p})
                 for p in ("original", "original-masks"))
    found = 0
    for sample in ds.samples:
        (a, sa), (b, sb) = _segments(own, sample.image_path), _segments(step, sample.image_path)
        assert np.array_equal(a, b) and [s["category_id"] for s in sa] == [s["category_id"] for s in sb]
        found += len(sa)
    assert found > 0


def _coco_names(coco_sample: Path) -> list[str]:
    return [c["name"] for c in json.loads((coco_sample / "annotations" / "panoptic_val2017.json").read_text())
            ["categories"]]


def test_eval_of_a_384_square_mask2former_records_the_originals_input(coco_sample, tmp_path) -> None:
    """The hub's 384x384 preprocessor config (transformers' conversion script): ``eval`` runs the original's
    800-1333 input by default and its record says so; under transformers' pipeline its config says 384x384."""
    d = hf_tiny.build("mask2former", _coco_names(coco_sample), tmp_path / "m")
    cfg = json.loads((d / "preprocessor_config.json").read_text())
    (d / "preprocessor_config.json").write_text(json.dumps({**cfg, "size": {"height": 384, "width": 384}}))
    args = ["eval", "--model", f"hf:{d}", "--data-root", str(coco_sample), "--results", str(tmp_path / "r"),
            "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress", "--flops-images", "0"]
    for extra, pipeline in (([], "original"), (["--pipeline", "transformers"], "transformers")):
        assert main([*args, *extra]) == 0
        rows = list(csv.DictReader(open(tmp_path / "r" / "runs.csv")))
        rec = json.loads((tmp_path / "r" / rows[-1]["record"]).read_text())
        config = json.loads(rec["provenance"]["config"])
        assert rec["provenance"]["pipeline"] == config["pipeline"] == pipeline
        assert ("shortest edge 800, longest at most 1333, padded to a multiple of 32" in config.get("original", "")) \
            == (pipeline == "original")
        assert config["processor"]["size"] == {"height": 384, "width": 384}


def test_a_registered_checkpoints_published_numbers_meet_only_a_run_under_their_pipeline(coco_sample, tmp_path,
                                                                                         monkeypatch, capsys) -> None:
    """A registered hf checkpoint (here a tiny local one registered for the test) on COCO: under its published
    numbers' pipeline (original) the record has a delta to them; under transformers' none, and the record and
    ``table --vs-published`` say why."""
    from panbench.models.hf import types

    d = hf_tiny.build("mask2former", _coco_names(coco_sample), tmp_path / "m")
    monkeypatch.setattr(types, "_HF_TABLE", [("hf-tiny", str(d), "Mask2Former", "Swin", {"PQ": 50.0}, "a test")])
    res = tmp_path / "r"
    args = ["eval", "--model", "hf-tiny", "--data-root", str(coco_sample), "--results", str(res), "--device", "cpu",
            "--workers", "0", "--cpu-procs", "1", "--no-progress", "--flops-images", "0"]
    recs = {}
    for pipeline in ("original", "transformers"):
        assert main([*args, "--pipeline", pipeline]) == 0
        rows = list(csv.DictReader(open(res / "runs.csv")))
        recs[pipeline] = json.loads((res / rows[-1]["record"]).read_text())
    own, stock = recs["original"], recs["transformers"]
    assert own["published_pipeline"] == stock["published_pipeline"] == "original"
    assert own["delta_to_published"]["PQ"] == pytest.approx(own["metrics"]["PQ"] - 50.0)
    assert not stock["delta_to_published"]
    capsys.readouterr()
    assert main(["table", "--results", str(res), "--vs-published", "--all-columns", "--format", "csv"]) == 0
    rows = {r["cfg_options"]: r for r in csv.DictReader(capsys.readouterr().out.splitlines())
            if r.get("model") == "hf-tiny"}
    assert rows["pipeline=original"]["published_rules"] == "panopticapi" and rows["pipeline=original"]["PQ_delta"]
    row = rows["pipeline=transformers"]
    assert row["published_rules"] == "panopticapi, published under the original pipeline, this run transformers: " \
        "no difference" and row["PQ_delta"] == "" and row["PQ_pub"] == "50.0"


def test_speed_times_the_pipeline_asked_for_and_records_it(demo_root, tmp_path, capsys) -> None:
    """``panbench speed --pipeline``: the original's input (shortest edge 800) by default, the processor's (64 here)
    under transformers'; the record's input size and provenance say which."""
    names = [c["name"] for c in json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
             ["categories"]]
    d = hf_tiny.build("mask2former", names, tmp_path / "m")
    shorts = {}
    for pipeline in ("original", "transformers"):
        out = tmp_path / pipeline
        assert main(["speed", "--model", f"hf:{d}", "--dataset", "demo", "--data-root", str(demo_root), "--limit",
                     "1", "--warmup-iters", "0", "--iters", "1", "--device", "cpu", "--no-e2e", "--results",
                     str(out), "--pipeline", pipeline]) == 0
        rec = json.loads(next((out / "speed").glob("*.json")).read_text())
        assert rec["provenance"]["pipeline"] == pipeline and f"(pipeline {pipeline})" in capsys.readouterr().out
        shorts[pipeline] = min(int(x) for x in rec["input_size"].split("x"))
    assert shorts == {"original": 800, "transformers": 64}


def test_a_sweep_passes_the_pipeline_to_each_cells_eval_and_refuses_it_for_other_frameworks(demo_root,
                                                                                            tmp_path) -> None:
    from panbench.cli import build_parser
    from panbench.cli.submit import _eval_args, _new_sweep
    from panbench.errors import PanbenchError

    args = build_parser().parse_args(["submit", "--model", "hf:/nowhere", "--dataset", "demo", "--data-root",
                                      str(demo_root), "--results", str(tmp_path), "--pipeline", "transformers"])
    forwarded = _eval_args(args, None)
    assert forwarded[forwarded.index("--pipeline") + 1] == "transformers"
    mixed = build_parser().parse_args(["submit", "--model", "demo-mask2former", "--dataset", "demo", "--data-root",
                                       str(demo_root), "--results", str(tmp_path), "--pipeline", "transformers"])
    with pytest.raises(PanbenchError, match="--pipeline applies to hf: models"):
        _new_sweep(mixed)


def test_each_dataset_runs_at_the_originals_test_size_there_and_an_unknown_one_is_refused(tmp_path) -> None:
    """The originals' configs test Cityscapes at 1024-2048, ADE20K at 640-2560 and Mapillary Vistas at 2048-2048 (its
    OBJECT_MASK_THRESHOLD 0.0; OneFormer's ADE20K 0.5): the model loaded for a dataset runs its size and threshold
    there and records them; a model type whose original publishes none there (DETR on Cityscapes) is refused under
    ``--pipeline original`` and runs under ``transformers``; EoMT's square comes from its processor anywhere."""
    from panbench.models.hf.model import load_hf_model
    from panbench.models.protocol import ForDataset

    cats = SimpleNamespace(names=["person", "sky"], ids=[1, 2], isthing=[1, 0])
    d = hf_tiny.build("mask2former", cats.names, tmp_path / "m2f")
    want = {"coco": (800, 1333, 0.8), "cityscapes": (1024, 2048, 0.8), "ade20k": (640, 2560, 0.8),
            "mapillary": (2048, 2048, 0.0)}
    for name, (short, long, threshold) in want.items():
        built = load_hf_model(str(d), cats, "cpu", dataset=ForDataset(name))
        p = built.model.protocol
        assert (p.short, p.long) == (short, long) and built.model.grid_own("threshold") == threshold
        assert f"shortest edge {short}, longest at most {long}" in built.cfg_text
        assert json.loads(built.cfg_text)["postprocess"]["threshold"] == threshold
    one = load_hf_model(str(hf_tiny.build("oneformer", cats.names, tmp_path / "one")), cats, "cpu",
                        dataset=ForDataset("ade20k"))
    assert (one.model.protocol.short, one.model.grid_own("threshold")) == (640, 0.5)
    detr = hf_tiny.build("detr", cats.names, tmp_path / "detr")
    with pytest.raises(PanbenchError, match="DETR's own test sizes, which its configs give for coco, not cityscapes: "
                                            "pass --pipeline transformers"):
        load_hf_model(str(detr), cats, "cpu", dataset=ForDataset("cityscapes"))
    plain = load_hf_model(str(detr), cats, "cpu", cfg_options={"pipeline": "transformers"},
                          dataset=ForDataset("cityscapes"))
    assert plain.model.protocol is None
    eomt = load_hf_model(str(hf_tiny.build("eomt", cats.names, tmp_path / "eomt")), cats, "cpu",
                         dataset=ForDataset("cityscapes"))
    assert eomt.model.protocol.long == eomt.model.protocol.short


def test_an_hf_record_from_before_the_pipelines_reads_as_transformers_run(tmp_path) -> None:
    """A record an older panbench wrote for a registered hf checkpoint (transformers' pipeline, its delta to the
    originals' published number beside): read back, it names the transformers pipeline and shows no delta."""
    from panbench.records.io import migrate
    from panbench.records.schema import RunRecord
    from panbench.reporting.labels import other_pipeline

    old = {"model": "hf-mask2former_swin-t", "framework": "transformers", "metrics": {"PQ": 40.0},
           "published": {"PQ": 53.2}, "published_source": "facebookresearch/Mask2Former MODEL_ZOO.md",
           "published_rules": "panopticapi", "delta_to_published": {"PQ": -13.2}, "provenance": {"command": "x"}}
    rec = RunRecord.from_json(migrate(old))
    assert rec.provenance["pipeline"] == "transformers" and rec.published_pipeline == "original"
    assert "this run transformers: no difference" in str(other_pipeline(rec))
    mmdet = RunRecord.from_json(migrate({**old, "framework": "mmdet", "model": "mask2former"}))
    assert other_pipeline(mmdet) is None and "pipeline" not in mmdet.provenance


def test_eomts_instances_under_the_originals_input_read_its_whole_padded_square(tmp_path) -> None:
    """AP and mIoU come from transformers' post-processing of the network's outputs; EoMT's takes the padding off
    its square itself, so its share is the whole square, as under transformers' pipeline (a crop would stretch its
    masks); Mask2Former's is cropped to the image's resized input."""
    from panbench.models.hf.model import load_hf_model

    cats = SimpleNamespace(names=["person", "sky"], ids=[1, 2], isthing=[1, 0])
    img = tmp_path / "wide.png"
    Image.fromarray(np.zeros((300, 640, 3), np.uint8)).save(img)
    for kind in ("eomt", "mask2former"):
        m = load_hf_model(str(hf_tiny.build(kind, cats.names, tmp_path / kind)), cats, "cpu").model
        m.enable_instances()
        item = m.pipeline({"img_path": str(img)})
        out = m.forward([item], "cpu", None)[0]
        masks = out.outputs.masks_queries_logits
        padded = tuple(item["pixel_values"].shape[-2:])
        whole = masks.shape[-1] * padded[0] == masks.shape[-2] * padded[1]  # the square's (or padded input's) shape
        assert whole == (kind == "eomt"), (kind, tuple(masks.shape), padded)
        assert m.to_instances(out) is not None


def test_a_model_type_without_a_known_original_defaults_to_transformers_pipeline() -> None:
    from dataclasses import replace

    from panbench.errors import InputError
    from panbench.models.hf.types import pipeline_of

    unknown = replace(TYPES["mask2former"], original=None)
    assert pipeline_of("x", None, unknown) == "transformers" and pipeline_of("x", None, TYPES["detr"]) == "original"
    with pytest.raises(InputError, match="knows no original inference of Mask2Former; pass --pipeline transformers"):
        pipeline_of("x", {"pipeline": "original"}, unknown)
    with pytest.raises(InputError, match="DETR's original resizes its id map"):
        pipeline_of("x", {"pipeline": "original-masks"}, TYPES["detr"])
