"""A registered checkpoint of each dataset beyond COCO, end to end, offline: the tiny official-format input of the
dataset converted (``panbench data NAME --from``), a random-weight transformers Mask2Former saved with the real
checkpoint's label set (tests/data/hub_labels.py) in the Hugging Face cache under the real hub id, and
``panbench eval --model <registered name>`` without ``--dataset`` (the model's own dataset):

- it runs at the original's test size on that dataset (the record's config text) and under its threshold there;
- its record names the dataset's card (version and hash) and the published numbers with their delta;
- ``panbench score`` of the predictions it saved gives exactly the record's metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
from ade_tiny import make_ade  # noqa: E402
from hub_labels import ADE20K_HUB, cityscapes_hub  # noqa: E402
from test_cityscapes_ade20k import make_cityscapes  # noqa: E402
from tiny_releases import make_vistas, vistas_categories  # noqa: E402

from panbench.cli import main  # noqa: E402
from panbench.data.catalog import DATASETS  # noqa: E402
from panbench.models.registry import resolve  # noqa: E402
from panbench.pq.matching import METRIC_KEYS  # noqa: E402

# dataset -> (registered name, the original's test input there, its threshold there)
CASES = {"cityscapes": ("hf-mask2former_swin-t-cityscapes", (1024, 2048), 0.8),
         "ade20k": ("hf-mask2former_swin-l-ade20k", (640, 2560), 0.8),
         "mapillary": ("hf-mask2former_swin-l-mapillary", (2048, 2048), 0.0)}


def _official(name: str, src: Path, tmp: Path) -> tuple[Path, list[str]]:
    """The dataset's tiny download under ``src`` (the folder ``--from`` takes) and the real checkpoint's labels."""
    if name == "cityscapes":
        pytest.importorskip("cityscapesscripts")
        make_cityscapes(src)
        return src, cityscapes_hub()
    if name == "ade20k":
        pytest.importorskip("panopticapi")
        make_ade(src)
        return src, ADE20K_HUB
    cats = vistas_categories(tmp / "m2f")
    make_vistas(src, cats)
    return src, [c["name"] for c in sorted(cats, key=lambda c: c["id"])]  # contiguous id = id - 1


def in_hub_cache(model_dir: Path, hub_id: str, cache: Path) -> None:
    """``model_dir``'s files as the Hugging Face cache holds a downloaded snapshot of ``hub_id``."""
    rev = "0" * 40
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    for f in model_dir.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_registered_checkpoint_runs_its_datasets_protocol_and_scores_as_its_saved_predictions(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import huggingface_hub.constants

    model, (short, long), threshold = CASES[name]
    (spec,) = resolve(model)
    assert spec.dataset == name and spec.published["PQ"] is not None
    src, labels = _official(name, tmp_path / "download", tmp_path)
    root = tmp_path / name
    assert main(["data", name, "--from", str(src), "--root", str(root)]) == 0
    in_hub_cache(hf_tiny.build("mask2former", labels, tmp_path / "model"), str(spec.ref), tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    results, preds = tmp_path / "results", tmp_path / "preds"
    assert main(["eval", "--model", model, "--data-root", str(root), "--results", str(results), "--workers", "0",
                 "--cpu-procs", "1", "--no-progress", "--no-ap", "--save-predictions", str(preds)]) == 0
    row = list(csv.DictReader(open(results / "runs.csv")))[-1]
    rec = json.loads((results / row["record"]).read_text())
    assert rec["dataset"] == name and rec["model"] == model
    assert rec["provenance"]["dataset"]["card"] == DATASETS[name].card.stamp()
    config = json.loads(rec["provenance"]["config"])
    assert f"shortest edge {short}, longest at most {long}" in config["original"]
    assert config["postprocess"]["threshold"] == threshold
    assert rec["published"] == spec.published and rec["published_pipeline"] == "original"
    assert rec["delta_to_published"]["PQ"] == pytest.approx(rec["metrics"]["PQ"] - spec.published["PQ"])
    capsys.readouterr()
    ann = root / "annotations"
    (pred_json,) = preds.glob("*.json")
    assert main(["score", "--gt-json", str(ann / f"{name}_panoptic_val.json"), "--gt-dir",
                 str(ann / f"{name}_panoptic_val"), "--pred-json", str(pred_json), "--pred-dir",
                 str(pred_json.with_suffix("")), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert {k: scored[k] for k in METRIC_KEYS} == rec["metrics"]


def test_published_ap_and_miou_get_a_delta_where_both_are_measured_and_published() -> None:
    """A Cityscapes checkpoint publishes PQ, AP and mIoU: each gets its delta where the run measured it (mIoU: of the
    model's semantic output, as published)."""
    from panbench.evaluation.record_fields import delta

    (spec,) = resolve("hf-mask2former_swin-l-cityscapes")
    assert spec.published == {"PQ": 66.6, "AP": 43.6, "mIoU": 82.9} and spec.input_size == "1024-2048"
    res = dict.fromkeys(METRIC_KEYS, 60.0)
    d = delta(res, spec.published, {"ap": {"AP": 40.0}, "miou": 80.0, "miou_source": "semantic"})
    assert d["PQ"] == pytest.approx(-6.6) and d["AP"] == pytest.approx(-3.6) and d["mIoU"] == pytest.approx(-2.9)
    assert delta(res, spec.published, {})["AP"] is None  # published, not measured
    # the panoptic output's mIoU is not the semantic inference's the source publishes: no difference
    assert delta(res, spec.published, {"miou": 80.0, "miou_source": "panoptic"})["mIoU"] is None
    assert "AP" not in delta(res, {"PQ": 45.5, "mIoU": 60.8}, {"ap": {"AP": 1.0}})  # measured, not published
