"""``eval --rules``: the record holds PQ under each rule, the numbers ``score --rules`` gives on the predictions the
run saved; a model whose published numbers were computed under other rules than panopticapi's gets them computed
without asking (docs/pq-rules.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.run import Run

LIMIT = 4


def test_eval_rules_are_score_s_on_the_saved_predictions(demo_root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rules = "torchmetrics,eomt,vernier-corrected"
    assert main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
                 "--results", str(tmp_path / "res"), "--workers", "0", "--no-progress", "--device", "cpu",
                 "--cpu-procs", "1", "--no-ap", "--flops-images", "0", "--limit", str(LIMIT), "--rules", rules,
                 "--save-predictions", str(tmp_path / "pred")]) == 0
    rec = json.loads(next((tmp_path / "res" / "runs").glob("*.json")).read_text())
    assert list(rec["rules"]) == ["torchmetrics", "vernier-corrected", "eomt"]
    pred_json = next((tmp_path / "pred").glob("*.json"))
    gt = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    ids = {a["image_id"] for a in json.loads(pred_json.read_text())["annotations"]}
    subset = tmp_path / "gt.json"
    subset.write_text(json.dumps({**gt, "images": [i for i in gt["images"] if i["id"] in ids],
                                  "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}))
    capsys.readouterr()
    assert main(["score", "--gt-json", str(subset), "--gt-dir", str(demo_root / "annotations" / "panoptic_val2017"),
                 "--pred-json", str(pred_json), "--pred-dir", str(pred_json.with_suffix("")), "--rules", rules,
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rules"] == rec["rules"]


def test_a_model_published_under_eomt_s_rules_computes_them_where_its_run_is_comparable(
        demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the run compares with the published numbers (the model's own dataset, clean, its own weights, numbers
    published) and only there."""
    from dataclasses import replace

    from panbench.data.datasets import load_dataset
    from panbench.models.registry import resolve

    spec = resolve("demo-maskformer", dataset="demo")[0]
    ds = load_dataset(demo_root, name="demo", limit=2)
    opts = EvalOptions(device="cpu", workers=0, progress=False, cpu_procs=1, flops_images=0, ap=False,
                       results_dir=tmp_path, cache_root=tmp_path / "cache")
    eomt = Run(replace(spec, published_rules="eomt"), ds, opts)
    assert eomt._rules() == ()  # the demo set: no published number to compare with
    monkeypatch.setattr(Run, "compares_published", lambda self, opts, lm: True)
    assert eomt._rules() == ("eomt",)
    assert Run(replace(spec, published_rules="panopticapi"), ds, replace(opts, rules=("torchmetrics",)))._rules() == \
        ("torchmetrics",)
