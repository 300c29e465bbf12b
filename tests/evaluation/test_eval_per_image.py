"""Per-image tables of `panbench eval --per-image` and `panbench score --name --per-image`: their TP/FP/FN (all,
things, stuff) and IoU sums add up to the run's record, on the demo set and on the 2-image COCO sample; the two
commands give the same table for the same predictions; `panbench images` lists the images where a run is worst or
loses most to another run, in the order of the tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from panbench.analysis.per_image import COLUMNS
from panbench.cli import main

pytestmark = pytest.mark.slow
LIMIT = 6


def _record(results: Path) -> dict:
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"image_id": str})


def check_sums(table: pd.DataFrame, rec: dict, ann: Path, matched: bool = True) -> None:
    """The table's counts and IoU sums are the record's, its image ids and file names the run's images."""
    cats = {c["id"]: bool(c["isthing"]) for c in json.loads(ann.read_text())["categories"]}
    per = rec["per_class"]
    assert list(table.columns) == list(COLUMNS)
    assert list(table["image_id"]) == [str(i) for i in rec["provenance"]["dataset"]["image_ids"]]
    names = {str(im["id"]): im["file_name"] for im in json.loads(ann.read_text())["images"]}
    assert list(table["file_name"]) == [names[i] for i in table["image_id"]]
    for key in ("TP", "FP", "FN"):
        assert int(table[key].sum()) == sum(v[key] for v in per.values())
        assert int(table[key + "_th"].sum()) == sum(v[key] for c, v in per.items() if cats[int(c)])
        assert int(table[key + "_st"].sum()) == sum(v[key] for c, v in per.items() if not cats[int(c)])
        assert (table[key] == table[key + "_th"] + table[key + "_st"]).all()
    iou = sum(v["SQ"] * v["TP"] / 100 for v in per.values())
    assert table["IoU_sum"].sum() == pytest.approx(iou, abs=1e-9)
    assert table["FP"].sum() + table["FN"].sum() > 0 and (table["TP"].sum() > 0 or not matched)  # worth checking


def _eval(root: Path, results: Path, model: str, *extra: str) -> dict:
    rc = main(["eval", "--model", model, "--dataset", "demo", "--data-root", str(root), "--results", str(results),
               "--workers", "0", "--cpu-procs", "1", "--no-progress", "--device", "cpu", "--limit", str(LIMIT),
               "--no-resume", "--no-ap", *extra])
    assert rc == 0
    return _record(results)


@pytest.fixture(scope="module")
def demo_runs(demo_root, tmp_path_factory) -> Path:
    """Two demo models' runs in one results folder, each with its per-image table and saved predictions."""
    results = tmp_path_factory.mktemp("per_image")
    for model in ("mask2former", "panoptic-fpn"):
        _eval(demo_root, results, model, "--per-image", str(results / f"{model}.csv"),
              "--save-predictions", str(results / "pred"))
    return results


def test_eval_table_adds_up_to_the_record_on_the_demo_set(demo_runs, demo_root) -> None:
    ann = demo_root / "annotations" / "panoptic_val2017.json"
    for model in ("mask2former", "panoptic-fpn"):
        rec = next(json.loads(p.read_text()) for p in (demo_runs / "runs").glob("*.json")
                   if json.loads(p.read_text())["model"] == f"demo-{model}")
        table = _read(demo_runs / f"{model}.csv")
        assert len(table) == LIMIT
        check_sums(table, rec, ann)


def test_score_name_writes_the_same_table_as_eval(demo_runs, demo_root, tmp_path, capsys) -> None:
    rec = next(json.loads(p.read_text()) for p in (demo_runs / "runs").glob("*.json")
               if json.loads(p.read_text())["model"] == "demo-mask2former")
    pred = rec["provenance"]["predictions"]
    ann = demo_root / "annotations"
    pytest.importorskip("pyarrow", reason="Parquet is written by pandas through pyarrow")
    gt = json.loads((ann / "panoptic_val2017.json").read_text())  # the images the run scored
    keep = set(rec["provenance"]["dataset"]["image_ids"])
    gt["images"] = [im for im in gt["images"] if im["id"] in keep]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    rc = main(["score", "--gt-json", str(tmp_path / "gt.json"), "--gt-dir", str(ann / "panoptic_val2017"),
               "--pred-json", pred["json"], "--pred-dir", pred["dir"], "--name", "ext", "--results",
               str(tmp_path), "--per-image", str(tmp_path / "ext.parquet"), "--procs", "1"])
    assert rc == 0
    scored = _read(tmp_path / "ext.parquet")
    ours = _read(demo_runs / "mask2former.csv")
    check_sums(scored, {**_record(tmp_path), "provenance": rec["provenance"]}, tmp_path / "gt.json")
    pd.testing.assert_frame_equal(scored, ours, check_dtype=False)


def test_images_lists_the_worst_images_and_the_largest_losses(demo_runs, capsys) -> None:
    a, b = _read(demo_runs / "mask2former.csv"), _read(demo_runs / "panoptic-fpn.csv")
    capsys.readouterr()
    assert main(["images", "--results", str(demo_runs), "--run", "demo-mask2former", "--worst", "3"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert listed == list(a.sort_values("PQ", kind="stable")["image_id"][:3])
    assert main(["images", "--results", str(demo_runs), "--run", "demo-mask2former", "--vs", "demo-panoptic-fpn",
                 "--worst", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    loss = (a["PQ"] - b["PQ"]).to_numpy()
    expect = [a["image_id"][k] for k in np.argsort(loss, kind="stable")[:4]]
    assert [line.split()[0] for line in out[1:]] == expect
    assert "demo-panoptic-fpn" in out[0] and float(out[1].split()[4]) == pytest.approx(loss.min(), abs=0.01)


def test_a_bad_table_path_stops_before_any_model_runs(demo_root, tmp_path, capsys, monkeypatch) -> None:
    rc = main(["eval", "--model", "mask2former", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(tmp_path), "--per-image", str(tmp_path / "t.xlsx")])
    assert rc == 2 and "must end in .csv or .parquet" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pyarrow" else real(n, *a))
    rc = main(["eval", "--model", "mask2former", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(tmp_path), "--per-image", str(tmp_path / "t.parquet")])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install pyarrow" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_eval_and_score_tables_add_up_on_the_coco_sample(coco_sample, tmp_path) -> None:
    """On the 2-image COCO sample: eval's table of a tiny transformers model (tests/hf_tiny.py, COCO's 133 labels;
    random, so false positives and negatives only) and score --name's table of perturbed ground truth
    (panbench.data.synth.perturb: matches, misses, extras) add up to their records."""
    pytest.importorskip("transformers")
    import hf_tiny
    from PIL import Image

    from panbench.data.synth import PanopticImage, perturb
    from panbench.pq.png import read_ids

    ann = coco_sample / "annotations"
    gt = json.loads((ann / "panoptic_val2017.json").read_text())
    d = hf_tiny.build("mask2former", [c["name"] for c in gt["categories"]], tmp_path / "m")
    assert main(["eval", "--model", f"hf:{d}", "--data-root", str(coco_sample), "--results", str(tmp_path / "e"),
                 "--workers", "0", "--cpu-procs", "1", "--no-progress", "--no-resume", "--no-ap",
                 "--per-image", str(tmp_path / "e.csv")]) == 0
    table = _read(tmp_path / "e.csv")
    assert len(table) == 2 and table["FP"].sum() + table["FN"].sum() > 0
    check_sums(table, _record(tmp_path / "e"), ann / "panoptic_val2017.json", matched=False)

    rng = np.random.default_rng(0)
    (tmp_path / "pred").mkdir()
    anns = []
    for a in gt["annotations"]:
        p = perturb(rng, PanopticImage(read_ids(ann / "panoptic_val2017" / a["file_name"], "gt"),
                                       a["segments_info"]), gt["categories"])
        rgb = np.stack([p.ids % 256, p.ids // 256 % 256, p.ids // 65536], -1).astype(np.uint8)
        Image.fromarray(rgb).save(tmp_path / "pred" / a["file_name"])
        anns.append({"image_id": a["image_id"], "file_name": a["file_name"], "segments_info": p.segments_info})
    (tmp_path / "pred.json").write_text(json.dumps({"annotations": anns}))
    assert main(["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
                 "--pred-json", str(tmp_path / "pred.json"), "--pred-dir", str(tmp_path / "pred"), "--name", "ext",
                 "--results", str(tmp_path / "s"), "--per-image", str(tmp_path / "s.csv"), "--procs", "1"]) == 0
    rec = _record(tmp_path / "s")
    check_sums(_read(tmp_path / "s.csv"), {**rec, "provenance": {"dataset": {"image_ids": [142238, 439180]}}},
               ann / "panoptic_val2017.json")
