"""The result record is declared once (RunRecord) and made by one function for ``eval`` and
``score --name``; its schema field is SCHEMA_VERSION."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest
from helpers import eval_demo_record

from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import external_fields, load_record, make_record, write_record
from panbench.records.schema import ANALYSIS_FIELDS, RECORD_FIELDS, SCHEMA_VERSION, RunRecord

RES = {**{k: 50.0 for k in METRIC_KEYS}, "pixel_acc": 1.0, "mIoU": 2.0, "mDice": 3.0, "n_images": 2,
       "n_categories": {"All": 2, "Things": 1, "Stuff": 1}, "per_class": {}, "unlisted_gt": {"pixels": 0, "images": 0}}


def _external(name: str, args: Namespace, fingerprint: str | None = None, **analyses: object) -> RunRecord:
    """The record ``score --name`` makes (before it is written)."""
    from panbench.pq.coco_format import read_ground_truth

    files = {"truth": read_ground_truth(args.gt_json), **{k: getattr(args, k) for k in ("gt_dir", "pred_json",
                                                                                      "pred_dir")}}
    return make_record(RES, **external_fields(name, "coco", seconds=1.5, fingerprint=fingerprint, **files),
                       **analyses)


AP_MIOU = ("ap", "ap_source", "miou", "miou_source")  # written when computed (score --instances, eval)


def test_external_record_has_the_declared_fields_in_order(tmp_path) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text('{"categories": [{"id": 1, "name": "a", "isthing": 1}], "annotations": []}')
    args = Namespace(gt_json=str(gt), gt_dir=str(tmp_path), pred_json=str(gt), pred_dir=str(tmp_path))
    rec = _external("sys", args)
    # an external system has no AMP, precision, image selection (tables show its selection as "external") or
    # speed context (its speed was not measured); a diagnosis only where a format mistake is found, the user's
    # evaluators' fields only with --evaluator, other rules' numbers only with --rules, no published numbers' rules
    declared = [k for k in RECORD_FIELDS if k not in ("amp", "precision", "selection", "speed_context",
                                                                   "record", "corruption", "diagnosis", *AP_MIOU,
                                                                   *ANALYSIS_FIELDS, "evaluators", "rules",
                                                                   "rules_attribution", "published_rules",
                                                                   "published_pipeline")]
    assert list(rec) == declared  # scored with --no-analysis: no analysis fields
    analyses = {k: {} for k in ANALYSIS_FIELDS if k != "analysis_file"}
    rec = _external("sys", args, "f" * 16, **analyses)
    assert list(rec) == [k for k in RECORD_FIELDS if k not in ("amp", "precision", "selection", *AP_MIOU,
                                                                            "speed_context", "record", "corruption",
                                                                            "analysis_file", "diagnosis",
                                                                            "evaluators", "rules",
                                                                            "rules_attribution", "published_rules",
                                                                            "published_pipeline")]
    assert rec["provenance"]["dataset"]["fingerprint"] == "f" * 16
    assert rec["schema"] == SCHEMA_VERSION and rec["metrics"]["PQ"] == 50.0 and rec["semantic"]["mDice"] == 3.0


def test_make_record_orders_fields_as_declared_and_refuses_unknown_ones() -> None:
    rec = make_record(RES, provenance={}, model="m", amp="fp32", device="cpu")
    assert list(rec) == ["schema", "model", "date", "n_images", "metrics", "semantic", "n_categories", "per_class",
                         "unlisted_gt", "device", "amp", "provenance"]
    with pytest.raises(TypeError, match="unknown record fields"):
        make_record(RES, modle="m")


OLD_HEADER = ("model,architecture,backbone,dataset,postprocess,PQ,SQ,RQ,PQ_th,SQ_th,RQ_th,PQ_st,SQ_st,RQ_st,"
              "pixel_acc,mIoU,mDice,n_images,images_per_s,device,params,date,record")  # before the framework column


def test_runs_csv_has_the_framework_and_an_older_file_keeps_every_row_under_its_header(tmp_path) -> None:
    import pandas as pd

    gt = tmp_path / "gt.json"
    gt.write_text('{"categories": [{"id": 1, "name": "a", "isthing": 1}], "annotations": []}')
    args = Namespace(gt_json=str(gt), gt_dir=str(tmp_path), pred_json=str(gt), pred_dir=str(tmp_path))
    old_row = "old,Mask2Former,R-50,coco,default," + ",".join(["40.0"] * 12) + ",60,1.5,cpu,44,2001-01-01,runs/o.json"
    (tmp_path / "runs.csv").write_text(OLD_HEADER + "\n" + old_row + "\n" + old_row.replace("old,", "old2,") + "\n")
    write_record(tmp_path, _external("sys", args))
    df = pd.read_csv(tmp_path / "runs.csv", keep_default_na=False).set_index("model")
    assert list(df.index) == ["old", "old2", "sys"] and list(df.columns[:1]) == ["framework"]
    assert df.loc["old", "framework"] == "" and df.loc["old", "n_images"] == 60 and df.loc["old", "params"] == "44"
    assert df.loc["sys", "framework"] == "external" and df.loc["sys", "PQ"] == 50.0
    write_record(tmp_path, _external("sys2", args))  # appended as it is
    assert (tmp_path / "runs.csv").read_text().count("\n") == 5


FIXTURE = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


def test_a_schema_1_record_loads_as_today_s_record() -> None:
    rec = load_record(FIXTURE)  # schema 1: no framework, selection or published_source
    assert (rec.schema, rec.framework, rec.published_source) == (1, "mmdet", "MMDetection model zoo")
    assert rec.selection == {"limit": None, "subset": None, "images": 10}
    assert rec.n_categories == {"All": 133, "Things": 80, "Stuff": 53} and rec.ci is None and "ci" not in rec


def test_selection_of_a_schema_1_record_comes_from_its_command(tmp_path) -> None:
    raw = json.loads(FIXTURE.read_text())
    raw["provenance"] = {"command": "panbench eval --model m --subset ids.txt --limit 5"}
    raw["timings"] = {"images_per_s": 0}  # written for an unmeasured speed before it was None
    (tmp_path / "r.json").write_text(json.dumps(raw))
    rec = load_record(tmp_path / "r.json")
    assert rec.selection == {"limit": 5, "subset": "ids.txt", "images": 10} and rec.timings["images_per_s"] is None


def test_write_record_leaves_its_input_as_it_was_and_writes_the_same_json(tmp_path) -> None:
    rec = make_record(RES, model="m", dataset="demo", device="cpu", provenance={}, timings={"images_per_s": None},
                      selection={"limit": None, "subset": None, "images": 2})
    written = write_record(tmp_path, rec)
    assert rec.record is None and "record" not in rec and written.record == "runs/" + Path(written.record).name
    on_disk = json.loads((tmp_path / written.record).read_text())
    assert list(on_disk) == list(rec) + ["record"] and load_record(tmp_path / written.record) == written


def test_eval_and_score_name_make_their_records_through_the_one_record_maker(demo_root, tmp_path, monkeypatch
                                                                             ) -> None:
    import panbench.records.io as build
    from panbench.cli import main

    made: list = []
    maker = build.record_run

    def spy(results_dir, res, analysis=None, **fields):
        made.append(rec := maker(results_dir, res, analysis, **fields))
        return rec

    monkeypatch.setattr(build, "record_run", spy)
    results = tmp_path / "res"
    eval_demo_record(demo_root, results)
    gt = demo_root / "annotations" / "panoptic_val2017"
    assert main(["score", "--gt-json", f"{gt}.json", "--gt-dir", str(gt), "--pred-json", f"{gt}.json", "--pred-dir",
                 str(gt), "--procs", "1", "--name", "sys", "--results", str(results)]) == 0
    assert [(r.model, r.framework) for r in made] == [("demo-mask2former", "mmdet"), ("sys", "external")]
    for r in made:  # what the maker returned is what it wrote
        assert load_record(results / str(r.record)) == r
