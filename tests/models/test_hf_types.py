"""The model types of the ``hf:`` family (panbench/models/hf/types.py): every panoptic model type the installed
transformers ships is either run (a tiny random model through ``hf:DIR``) or refused by name in one line;
EoMT-DINOv3 is run like EoMT (its PQ is ``panbench score``'s on the saved predictions, its AP pycocotools' on the
saved instances, its mIoU the panoptic output's) and its zoo checkpoints are registered with their published
numbers."""

from __future__ import annotations

import ast
import csv
import json
from dataclasses import fields
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
import numpy as np  # noqa: E402

from panbench.cli import main  # noqa: E402
from panbench.data.datasets import load_dataset  # noqa: E402
from panbench.errors import PanbenchError  # noqa: E402
from panbench.models.hf.model import load_hf_model  # noqa: E402
from panbench.models.hf.types import REFUSED, TYPES  # noqa: E402
from panbench.models.registry import all_models, resolve  # noqa: E402
from panbench.package import REPO_ROOT  # noqa: E402
from panbench.pq.matching import METRIC_KEYS  # noqa: E402

DINOV3 = "eomt_dinov3"


def _names(root: Path) -> list[str]:
    return [c["name"] for c in json.loads((root / "annotations" / "panoptic_val2017.json").read_text())["categories"]]


def _eval(model: str, root: Path, results: Path, *extra: str) -> tuple[int, dict | None]:
    stock = [] if "," in model else ["--pipeline", "transformers"]  # the references: transformers' own inference
    rc = main(["eval", *stock, "--model", model, "--dataset", "demo", "--data-root", str(root),
               "--results", str(results), "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress",
               *extra])
    if rc != 0:
        return rc, None
    rows = list(csv.DictReader(open(results / "runs.csv")))
    return rc, json.loads((results / rows[-1]["record"]).read_text())


def panoptic_processor_classes() -> set[str]:
    """The processor classes of the installed transformers that have ``post_process_panoptic_segmentation``
    (defined or inherited), read from the source of its ``models/*/*processing*.py`` (no class is imported:
    a torchvision-only or video processor counts without torchvision)."""
    import transformers

    bases: dict[str, list[str]] = {}
    has: set[str] = set()
    for f in sorted((Path(transformers.__file__).parent / "models").rglob("*processing*.py")):
        if f.name.startswith("modular_"):  # the source of generated files, not a module transformers imports
            continue
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
                if any(isinstance(n, ast.FunctionDef) and n.name == "post_process_panoptic_segmentation"
                       for n in node.body):
                    has.add(node.name)
    grew = True
    while grew:
        new = {c for c, bs in bases.items() if c not in has and any(b in has for b in bs)}
        has |= new
        grew = bool(new)
    return has


def transformers_panoptic_types() -> dict[str, str]:
    """Model type -> why it is panoptic: transformers' universal-segmentation models, and the model types whose
    image, video or multimodal processor has ``post_process_panoptic_segmentation``."""
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    try:  # without torchvision video_processing_auto refuses to be read: its table is in auto_mappings
        from transformers.models.auto.video_processing_auto import VIDEO_PROCESSOR_MAPPING_NAMES
        video = dict(VIDEO_PROCESSOR_MAPPING_NAMES)
    except ImportError:
        from transformers.models.auto.auto_mappings import VIDEO_PROCESSOR_MAPPING_NAMES as names
        video = dict(names)
    found = {t: f"AutoModelForUniversalSegmentation: {c}"
             for t, c in MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES.items()}
    panoptic = panoptic_processor_classes()
    for table in (IMAGE_PROCESSOR_MAPPING_NAMES, video, PROCESSOR_MAPPING_NAMES):
        for model_type, names in table.items():
            classes = names.values() if isinstance(names, dict) else names if isinstance(names, tuple) else [names]
            hit = sorted(c for c in classes if c in panoptic)
            if hit:
                found.setdefault(model_type, f"{hit[0]}.post_process_panoptic_segmentation")
    return found


PANOPTIC_TYPES = transformers_panoptic_types()


def test_the_enumeration_finds_transformers_panoptic_models_and_processors() -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES

    assert set(MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES) <= set(PANOPTIC_TYPES)
    assert {"DetrImageProcessorPil", "EomtImageProcessorPil", "OneFormerProcessor"} <= panoptic_processor_classes()
    assert "table-transformer" in PANOPTIC_TYPES  # a detector sharing DETR's processor: found through the tables


@pytest.mark.parametrize("model_type", sorted(PANOPTIC_TYPES))
def test_every_panoptic_model_type_of_transformers_is_run_or_refused_by_name(model_type, demo_root, tmp_path,
                                                                            capsys) -> None:
    """A transformers upgrade that adds a panoptic model type fails here until the type has a description
    (and a tiny model in tests/hf_tiny.py) or a reason to be refused."""
    if model_type in TYPES:
        assert model_type in hf_tiny.BUILDS, f"{model_type}: add a tiny model to tests/hf_tiny.py build()"
        d = hf_tiny.build(model_type, _names(demo_root), tmp_path / model_type)
        rc, rec = _eval(f"hf:{d}", demo_root, tmp_path / "r", "--limit", "2", "--no-ap")
        assert rc == 0 and rec is not None, capsys.readouterr().err
        assert rec["architecture"] == TYPES[model_type].architecture
        assert json.loads(rec["provenance"]["config"])["postprocess"] == TYPES[model_type].settings
        assert sum(v["TP"] + v["FP"] for v in rec["per_class"].values()) > 0  # segments were predicted
    elif model_type in REFUSED:
        from transformers import AutoConfig

        d = tmp_path / model_type
        AutoConfig.for_model(model_type).save_pretrained(d)
        capsys.readouterr()
        rc, _ = _eval(f"hf:{d}", demo_root, tmp_path / "r", "--limit", "2")
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and "Traceback" not in err, err
        assert f"model type '{model_type}' is {REFUSED[model_type]}" in err and ", ".join(sorted(TYPES)) in err
    else:
        pytest.fail(f"transformers' panoptic model type '{model_type}' ({PANOPTIC_TYPES[model_type]}) has no "
                    "description: add it to TYPES in panbench/models/hf/types.py with a tiny model in "
                    "tests/hf_tiny.py, or its reason to REFUSED")


def test_a_video_or_unknown_model_type_is_refused_in_one_line_naming_the_supported_types(demo_root, tmp_path,
                                                                                       capsys) -> None:
    """Before any model of the list runs: the directory's config.json names its type."""
    from transformers import AutoConfig

    supported = "panbench runs the model types detr, eomt, eomt_dinov3, mask2former, maskformer, oneformer"
    for model_type, needles in [("videomt", ["'videomt' is a video model", "panbench evaluates single images"]),
                                ("segformer", ["'segformer' is not a panoptic model type panbench describes"])]:
        d = tmp_path / model_type
        AutoConfig.for_model(model_type).save_pretrained(d)
        capsys.readouterr()
        rc, _ = _eval(f"demo-mask2former,hf:{d}", demo_root, tmp_path / model_type / "r", "--limit", "2")
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and "Traceback" not in err, err
        assert all(n in err for n in [f"hf:{d}", supported, *needles]), err
        assert not (tmp_path / model_type / "r" / "runs").exists()  # demo-mask2former, listed first, did not run
        with pytest.raises(PanbenchError) as e:  # a hub snapshot is refused by the loader, in the same words
            load_hf_model(str(d), load_dataset(demo_root, name="demo", limit=1).categories, "cpu")
        assert str(e.value) == err.removeprefix("panbench: error: ")


def test_eomt_and_eomt_dinov3_share_one_description() -> None:
    eomt, dinov3 = TYPES["eomt"], TYPES[DINOV3]
    differ = {f.name for f in fields(eomt) if getattr(eomt, f.name) != getattr(dinov3, f.name)}
    assert differ == {"backbone"} and dinov3.backbone == "ViT (DINOv3)"
    assert (dinov3.stuff_keyword, dinov3.pad_square, dinov3.pixel_mask) == ("stuff_classes", True, False)


def test_the_family_reads_model_types_only_through_their_descriptions() -> None:
    """No module of panbench/models/hf/ but types.py holds a model type's name: each reads the description."""
    names = set(TYPES) | set(REFUSED)
    for path in sorted((REPO_ROOT / "panbench" / "models" / "hf").glob("*.py")):
        if path.name == "types.py":
            continue
        found = {n.value for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Constant) and n.value in names}
        assert not found, f"{path.name} compares model types {sorted(found)}: read panbench/models/hf/types.py"


def test_postprocess_maskwise_on_eomt_dinov3_is_refused_with_its_descriptions_reason(demo_root, tmp_path,
                                                                                    capsys) -> None:
    d = hf_tiny.build(DINOV3, _names(demo_root), tmp_path / "m")
    capsys.readouterr()  # the build's progress bar
    rc, _ = _eval(f"hf:{d}", demo_root, tmp_path / "r", "--limit", "2", "--postprocess", "maskwise")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and TYPES[DINOV3].postprocess_refusal in err, err


def test_a_tiny_eomt_dinov3_pq_is_panbench_score_of_its_saved_predictions(demo_root, tmp_path, capsys) -> None:
    """Saved the way the hub ships it (EomtImageProcessorFast's config): the record's PQ, per class, equals
    ``panbench score`` on the PNGs and JSON that --save-predictions wrote, and the segments equal transformers'
    post-processing called by hand with the release's settings."""
    from test_hf_ap import LIMIT, by_hand, own_gt_dataset

    d = hf_tiny.build(DINOV3, _names(demo_root), tmp_path / "m")
    assert json.loads((d / "preprocessor_config.json").read_text())["image_processor_type"] == "EomtImageProcessorFast"
    root = own_gt_dataset(by_hand(d, demo_root, "eomt", LIMIT)[0], demo_root, tmp_path)  # PQ above 0
    rc, rec = _eval(f"hf:{d}", root, tmp_path / "r", "--save-predictions", str(tmp_path / "p"))
    assert rc == 0 and rec is not None and rec["n_images"] == LIMIT and rec["architecture"] == "EoMT"
    assert rec["backbone"] == "ViT (DINOv3)" and rec["metrics"]["PQ"] > 0
    (js,) = (p for p in (tmp_path / "p").glob("*.json") if not p.name.endswith("_instances.json"))
    capsys.readouterr()
    assert main(["score", "--gt-json", str(root / "annotations" / "panoptic_val2017.json"), "--gt-dir",
                 str(root / "annotations" / "panoptic_val2017"), "--pred-json", str(js), "--pred-dir",
                 str(js.parent / js.stem), "--json", "--procs", "1", "--no-analysis"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert {k: rec["metrics"][k] for k in METRIC_KEYS} == {k: scored[k] for k in METRIC_KEYS}
    ref = hf_tiny.reference(d, load_dataset(root, name="demo"), DINOV3, {n: n for n in _names(root)})
    assert {k: rec["metrics"][k] for k in METRIC_KEYS} == {k: ref[k] for k in METRIC_KEYS}
    assert rec["per_class"] == json.loads(json.dumps(ref["per_class"]))


@pytest.mark.slow
def test_a_tiny_eomt_dinov3_ap_is_pycocotools_and_its_miou_the_panoptic_outputs(demo_root, tmp_path) -> None:
    """As for EoMT (tests/models/test_hf_ap.py): AP equals pycocotools' COCOeval on the saved instance JSON, whose
    instances are the processor's post_process_instance_segmentation called by hand; mIoU is the panoptic
    output's (the description's ``no_semantic``)."""
    from ap_cases import pycocotools_ap
    from pycocotools import mask as cocomask
    from test_hf_ap import AP_KEYS, LIMIT, by_hand, own_gt_dataset, reference_gt

    d = hf_tiny.build(DINOV3, _names(demo_root), tmp_path / "m")
    root = own_gt_dataset(by_hand(d, demo_root, "eomt", LIMIT)[0], demo_root, tmp_path)
    rc, rec = _eval(f"hf:{d}", root, tmp_path / "r", "--save-predictions", str(tmp_path / "p"))
    assert rc == 0 and rec is not None
    (saved,) = sorted((tmp_path / "p").glob("*_instances.json"))
    ref = pycocotools_ap(reference_gt(root), saved)
    got = np.array([rec["ap"][k] / 100 if rec["ap"][k] >= 0 else -1.0 for k in AP_KEYS])
    assert np.max(np.abs(got - ref)) <= 1e-9, (got, ref)
    assert rec["ap"]["AP"] > 0
    hand = sorted(by_hand(d, root, "eomt")[0], key=lambda h: (h["image_id"], -h["score"]))
    results = json.loads(saved.read_text())
    assert [(r["image_id"], r["category_id"], r["score"]) for r in results] == \
        [(h["image_id"], h["category_id"], h["score"]) for h in hand]
    for r, h in zip(results, hand):
        assert (cocomask.decode(r["segmentation"]).astype(bool) == h["mask"]).all()
    assert rec["miou_source"] == "panoptic" and rec["miou"] == rec["semantic"]["mIoU"]


def test_eomt_dinov3_checkpoints_are_listed_with_the_zoos_published_numbers(capsys) -> None:
    rows = {s.name: s for s in all_models(framework="transformers") if "DINOv3" in s.backbone}
    assert {n: (s.ref, s.input_size, s.published["PQ"], s.published_fps) for n, s in rows.items()} == {
        "hf-eomt_dinov3_s-2x-640": ("tue-mps/eomt-dinov3-coco-panoptic-small-640", "640x640", 47.2, 246),
        "hf-eomt_dinov3_b-2x-640": ("tue-mps/eomt-dinov3-coco-panoptic-base-640", "640x640", 53.1, 240),
        "hf-eomt_dinov3_l-640": ("tue-mps/eomt-dinov3-coco-panoptic-large-640", "640x640", 56.8, 137),
        "hf-eomt_dinov3_l-1280": ("tue-mps/eomt-dinov3-coco-panoptic-large-1280", "1280x1280", 58.9, 33)}
    for s in rows.values():
        assert s.architecture == "EoMT" and s.dataset == "coco" and s.published_fps_device == "NVIDIA H100"
        assert "model_zoo/dinov3.md" in s.published_source and "torch.compile default" in s.published_source
    assert resolve("hf:tue-mps/eomt-dinov3-coco-panoptic-large-640")[0].name == "hf-eomt_dinov3_l-640"
    assert main(["ls", "--only-dataset", "coco"]) == 0
    out = capsys.readouterr().out.splitlines()
    row = next(line.split() for line in out if line.startswith("hf-eomt_dinov3_l-1280 "))
    assert row[:11] == ["hf-eomt_dinov3_l-1280", "EoMT", "ViT-L", "(DINOv3)", "coco", "1280x1280", "58.9", "(eomt)",
                        "-", "-", "33"]  # the published PQ marked with its rules (EoMT's evaluation)
