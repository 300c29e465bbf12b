"""`panbench compare` on `score --name` records: paired intervals equal to the library's, the pairing and
refusal rules, schema-1 records, and the run `table` shows."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_analysis_cli import (
    ANALYSIS_KEYS,
    CATS,
    _name,
    _write,
    score_args,
)

from panbench.analysis import AnalysisSet
from panbench.cli import main
from panbench.data.synth import PanopticImage, perturb, random_image, write_panoptic
from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import load_records
from panbench.records.schema import ANALYSIS_FIELDS


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The generated ground truth and two systems' predictions, written once (no test writes to them)."""
    return _write(tmp_path_factory.mktemp("files"))


class _Stdout:
    """capsys's ``readouterr`` for a module-scoped fixture (which cannot take capsys): what ``main`` printed."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def readouterr(self) -> SimpleNamespace:
        out = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return SimpleNamespace(out=out, err="")


@pytest.fixture(scope="module")
def scored_once(files, tmp_path_factory) -> dict:
    """sys-a's and sys-b's `score --name` runs, scored once for the module; each test gets a copy (two_runs)."""
    results, out = tmp_path_factory.mktemp("scored") / "res", _Stdout()
    with contextlib.redirect_stdout(out.buffer):
        a = _name(files, out, results, "sys-a", 0)["rec"]
        b = _name(files, out, results, "sys-b", 1)["rec"]
    return {"results": results, "a": a, "b": b}


@pytest.fixture
def two_runs(scored_once, files, tmp_path) -> dict:
    """The two runs in a results folder of the test's own (a copy: tests edit its records and add runs to it)."""
    results = tmp_path / "res"
    shutil.copytree(scored_once["results"], results)
    return {"results": results, "a": copy.deepcopy(scored_once["a"]), "b": copy.deepcopy(scored_once["b"]),
            "files": files}


def compare(capsys, results: Path, *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args, "--results", str(results)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_compare_same_seed_same_result_and_other_seed_other_result(two_runs, capsys) -> None:
    r = two_runs["results"]
    outs = [json.loads(compare(capsys, r, "sys-a", "sys-b", "--json", "--bootstrap-seed", s)[1])
            for s in ("3", "3", "4")]
    assert outs[0] == outs[1] and outs[0]["metrics"] != outs[2]["metrics"]
    m = outs[0]["metrics"]["PQ"]
    assert outs[0]["difference"] == "B - A" and m["a"] == two_runs["a"]["metrics"]["PQ"]
    assert m["b"] == two_runs["b"]["metrics"]["PQ"] and m["interval"][0] <= m["b"] - m["a"] <= m["interval"][1]


def test_compare_equals_the_library_paired_bootstrap(two_runs, capsys) -> None:
    from panbench.analysis import RunSums, paired_bootstrap

    r = two_runs["results"]
    out = json.loads(compare(capsys, r, "sys-a", "sys-b", "--json", "--resamples", "200")[1])
    a, b = (AnalysisSet.load(r / two_runs[k]["analysis_file"]) for k in ("a", "b"))
    lib = paired_bootstrap(RunSums.from_analysis(b), RunSums.from_analysis(a), a.isthing, n_resamples=200,
                           category_ids=a.category_ids)
    assert {k: v["interval"] for k, v in out["metrics"].items()} == lib["metrics"]
    assert {k: v["interval"] for k, v in out["per_class"].items()} == {k: lib["per_class"][k] for k in out["per_class"]}
    assert out["per_class"]  # categories present in either run


def test_a_run_against_itself_is_zero_everywhere(two_runs, capsys) -> None:
    r = two_runs["results"]
    code, text, _ = compare(capsys, r, "sys-a", "sys-a")
    assert code == 0 and not any(line.rstrip().endswith("*") for line in text.splitlines())
    out = json.loads(compare(capsys, r, "sys-a", str(r / two_runs["a"]["record"]), "--json")[1])
    ivs = [v["interval"] for v in out["metrics"].values()] + [v["interval"] for v in out["per_class"].values()]
    assert ivs and all(iv == [0.0, 0.0] for iv in ivs)


def test_compare_marks_an_interval_that_excludes_zero(two_runs, capsys) -> None:
    r = two_runs["results"]
    out = json.loads(compare(capsys, r, "sys-a", "sys-b", "--json")[1])
    code, text, _ = compare(capsys, r, "sys-a", "sys-b", "--top", "0")
    rows = {line[:24].strip(): line for line in text.splitlines()[5:] if not line.startswith("per class")}
    shown = [*out["metrics"].items(), *((c["name"], c) for c in out["per_class"].values())]
    assert len(rows) == len(shown)
    for name, v in shown:
        assert rows[name].rstrip().endswith("*") == v["excludes_zero"], name
        assert v["excludes_zero"] == (v["interval"][0] > 0 or v["interval"][1] < 0)
    marks = [v["excludes_zero"] for _, v in shown]
    assert any(marks) and not all(marks)  # both kinds of row are checked (the fixture has a class that differs)


def test_compare_shows_a_class_undefined_in_one_run_blank_not_0(tmp_path, capsys) -> None:
    """A category with no ground truth, predicted by B only: A has no TP, FP or FN there, so its PQ is undefined:
    None in --json and '-' in the table (not 0.00)."""
    rng = np.random.default_rng(3)
    cats = [*CATS, {"id": 99, "name": "never", "isthing": 1, "supercategory": "synthetic", "color": [9, 9, 9]}]
    gt = [(i, random_image(rng, 60, 80, CATS)) for i in range(1, 11)]  # MIN_IMAGES: fewer get no interval
    f = dict(zip(("gt_json", "gt_dir"), write_panoptic(tmp_path, "gt", gt, cats)))
    relabelled = [(i, PanopticImage(g.ids, [{**g.segments_info[0], "category_id": 99}, *g.segments_info[1:]]))
                  for i, g in gt]
    for k, pred in enumerate((gt, relabelled)):
        f[f"pred{k}_json"], f[f"pred{k}_dir"] = write_panoptic(tmp_path, f"pred{k}", pred, cats)
        _name(f, capsys, tmp_path / "res", f"sys{k}", k)
    out = json.loads(compare(capsys, tmp_path / "res", "sys0", "sys1", "--json")[1])
    never = out["per_class"]["99"]
    assert never["a"] is None and never["b"] == 0.0 and never["interval"] == [0.0, 0.0]
    text = compare(capsys, tmp_path / "res", "sys0", "sys1", "--top", "0")[1]
    row = next(line for line in text.splitlines() if line.startswith("never"))
    assert row.split()[1:4] == ["-", "0.00", "-"]


def one_line(code: int, err: str) -> str:
    assert code == 2 and "\n" not in err.strip() and "Traceback" not in err, err
    return err


def test_compare_refuses_runs_of_other_images(two_runs, tmp_path, capsys) -> None:
    other = _write(tmp_path / "other", n=11, seed=9, systems=1)
    _name(other, capsys, two_runs["results"], "sys-c", 0)
    err = one_line(*compare(capsys, two_runs["results"], "sys-a", "sys-c")[::2])
    assert "different datasets" in err


def test_compare_refuses_a_one_image_run_and_a_sixty_image_run_in_either_order(tmp_path, capsys) -> None:
    """Runs on other images are refused before the image count is judged: no difference of PQ on 60 images
    and PQ on 1 image is printed as the difference "on this image"."""
    res = tmp_path / "res"
    _name(_write(tmp_path / "one", n=1, systems=1), capsys, res, "one-image", 0)  # the first of the 60 images
    _name(_write(tmp_path / "sixty", n=60, systems=1), capsys, res, "sixty-images", 0)
    for a, b in (("one-image", "sixty-images"), ("sixty-images", "one-image")):
        for extra in ((), ("--json",)):
            err = one_line(*compare(capsys, res, a, b, *extra)[::2])
            assert "A (" in err and "were scored on different datasets" in err and err.index(a) < err.index(b), err
            assert "1 image" in err and "60 images" in err and "no interval" not in err and "PQ on" not in err


def test_compare_pairs_a_model_name_with_its_run_on_the_same_images(two_runs, tmp_path, capsys) -> None:
    """sys-b's latest run is on another image set; compare takes its earlier run on sys-a's images (either
    order, and with sys-a given as a record path), and says which record it used."""
    r = two_runs["results"]
    other = _write(tmp_path / "other", n=11, seed=9, systems=1)
    _name(other, capsys, r, "sys-b", 0)  # the latest sys-b record: other images
    for args in (("sys-a", "sys-b"), ("sys-b", "sys-a"), (str(r / two_runs["a"]["record"]), "sys-b"),
                 ("sys-b", str(r / two_runs["a"]["record"]))):
        code, out, err = compare(capsys, r, *args, "--json")
        assert code == 0, err
        used = {v["model"]: v["record"] for v in (json.loads(out)["a"], json.loads(out)["b"])}
        assert used["sys-b"] == two_runs["b"]["record"]
    code, text, _ = compare(capsys, r, "sys-a", "sys-b")
    assert two_runs["b"]["record"] in text  # the text output names the record it compared


def test_compare_refuses_same_dataset_other_image_ids(two_runs, tmp_path, capsys) -> None:
    """Same fingerprint, other ids: the records are edited to claim one dataset."""
    r = two_runs["results"]
    path = r / two_runs["b"]["analysis_file"]
    a = AnalysisSet.load(path)
    a.image_ids = [f"x{i}" for i in a.image_ids]
    a.save(path)
    err = one_line(*compare(capsys, r, "sys-a", "sys-b")[::2])
    assert "different images" in err


def test_compare_refuses_a_record_without_analysis_file(two_runs, capsys) -> None:
    r = two_runs["results"]
    path = r / two_runs["b"]["record"]
    rec = json.loads(path.read_text())
    for k in ANALYSIS_FIELDS:
        rec.pop(k, None)
    rec["schema"] = 1
    path.write_text(json.dumps(rec))
    err = one_line(*compare(capsys, r, "sys-a", "sys-b")[::2])
    assert "no per-image analysis file" in err and "rerun" in err
    assert "no record of model 'nobody'" in one_line(*compare(capsys, r, "sys-a", "nobody")[::2])


# ---- schema-1 records ----

OLD_RECORD = {  # a record as panbench wrote it before the analyses (schema 1), trimmed to what readers use
    "schema": 1, "model": "old-model", "architecture": "external", "backbone": "?", "dataset": "syn",
    "postprocess": "external", "date": "2026-01-01T00:00:00+00:00", "n_images": 12,
    "metrics": {k: 10.0 for k in METRIC_KEYS}, "semantic": {"pixel_acc": 50.0, "mIoU": 20.0, "mDice": 30.0},
    "n_categories": {"All": 3, "Things": 2, "Stuff": 1}, "per_class": {}, "published": {}, "delta_to_published": {},
    "params": None, "device": "external", "world_size": 1, "batch_size": None,
    "timings": {"scoring_s": 1.0, "images_per_s": None}, "memory": {}, "provenance": {},
    "record": "runs/20260101T000000Z_old-model_syn.json",
}


def test_schema_1_records_are_still_read(two_runs, capsys) -> None:
    r = two_runs["results"]
    (r / OLD_RECORD["record"]).write_text(json.dumps(OLD_RECORD))
    recs = load_records(r)
    assert [x["schema"] for x in recs] == [1, 2, 2] and recs[0]["model"] == "old-model"
    assert main(["table", "--results", str(r)]) == 0
    assert "old-model" in capsys.readouterr().out
    err = one_line(*compare(capsys, r, "old-model", "sys-a")[::2])
    assert "schema 1" in err


def test_compare_and_score_never_import_torch(two_runs) -> None:
    import subprocess
    import sys

    f = two_runs["files"]
    code = ("import sys; from panbench.cli import main; "
            f"main(['compare', 'sys-a', 'sys-b', '--results', {str(two_runs['results'])!r}]); "
            f"main({score_args(f, 0, '--boundary', '--json')!r}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mmdet', 'mmcv', 'mmengine')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_compare_finds_a_model_by_its_registry_alias(two_runs, capsys) -> None:
    """`mask2former` with --dataset demo names the record of demo-mask2former (the records are relabelled)."""
    r = two_runs["results"]
    for k, model in (("a", "sys-a"), ("b", "demo-mask2former")):
        path = r / two_runs[k]["record"]
        path.write_text(json.dumps({**json.loads(path.read_text()), "model": model, "dataset": "demo"}))
    code, out, err = compare(capsys, r, "sys-a", "mask2former", "--only-dataset", "demo", "--json")
    assert code == 0, err
    assert json.loads(out)["b"]["model"] == "demo-mask2former"
    assert "no record of model 'mask2former'" in one_line(*compare(capsys, r, "sys-a", "mask2former")[::2])


def test_an_eval_record_pairs_with_the_score_name_record_of_its_saved_predictions(tmp_path, capsys,
                                                                                  monkeypatch) -> None:
    """eval --save-predictions, then score --name on those files: the two records share the dataset fingerprint
    and image ids (score computes them as eval does), so compare and images pair them (eval's annotation file named
    relative to the current folder, score's absolute), compare gives [0, 0] everywhere, and the analyses of the two
    records are equal."""
    from panbench.data.demo import make_split
    from panbench.evaluation.storage import results_name

    root, res, out = tmp_path / "demo", tmp_path / "res", tmp_path / "preds"
    make_split(root, "val2017", 10, seed=7)  # MIN_IMAGES: fewer images get no interval
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", "demo", "--results",
                 str(res), "--workers", "0", "--no-progress", "--flops-images", "0",  # no GFLOPs pass: none read here
                 "--save-predictions", str(out)]) == 0
    ann, name = root / "annotations", results_name("panoptic_val2017", "demo-mask2former")
    assert main(["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
                 "--pred-json", str(out / f"{name}.json"), "--pred-dir", str(out / name), "--name", "saved",
                 "--dataset-name", "demo", "--results", str(res), "--json"]) == 0
    capsys.readouterr()
    ev, sc = (next(r for r in load_records(res) if r["model"] == m) for m in ("demo-mask2former", "saved"))
    assert ev["provenance"]["dataset"]["fingerprint"] == sc["provenance"]["dataset"]["fingerprint"]
    # the segment scores read back from the saved JSON: both score analyses equal, but for the model's own
    # threshold, which eval knows (object_mask_thr) and score of saved files does not
    own = ev["score_threshold"].pop("own"), ev["score_threshold"].pop("gain")
    assert own[0]["threshold"] == 0.8 and sc["score_threshold"].pop("own") is None
    assert sc["score_threshold"].pop("gain") is None
    assert ev["calibration"]["segments"] > 0
    assert {k: ev[k] for k in ANALYSIS_KEYS} == {k: sc[k] for k in ANALYSIS_KEYS}
    code, text, err = compare(capsys, res, "demo-mask2former", "saved", "--only-dataset", "demo", "--json")
    assert code == 0, err
    pair = json.loads(text)
    ivs = [v["interval"] for v in pair["metrics"].values()] + [v["interval"] for v in pair["per_class"].values()]
    assert pair["n_images"] == 10 and all(iv == [0.0, 0.0] for iv in ivs)
    # the curve at 0.95 is the score of the saved predictions with every segment scoring below it removed (VOID)
    from panbench.data.synth import write_png
    from panbench.pq.png import read_ids

    doc, cut, removed = json.loads((out / f"{name}.json").read_text()), tmp_path / "cut", 0
    cut.mkdir()
    for a in doc["annotations"]:
        ids = read_ids(out / name / a["file_name"], a["file_name"])
        low = [s for s in a["segments_info"] if s["score"] < 0.95]
        ids[np.isin(ids, [s["id"] for s in low])] = 0
        write_png(cut / a["file_name"], ids)
        a["segments_info"] = [s for s in a["segments_info"] if s["score"] >= 0.95]
        removed += len(low)
    (tmp_path / "cut.json").write_text(json.dumps(doc))
    assert main(["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
                 "--pred-json", str(tmp_path / "cut.json"), "--pred-dir", str(cut), "--json", "--no-analysis"]) == 0
    rescored, st = json.loads(capsys.readouterr().out), ev["score_threshold"]
    at = st["thresholds"].index(0.95)
    assert removed and all(st[k][at] == pytest.approx(rescored[k], abs=1e-9) for k in ("PQ", "PQ_th", "PQ_st", "SQ",
                                                                                          "RQ"))
    assert st["PQ"][at] != st["PQ"][0]  # the removal changed PQ
    capsys.readouterr()
    code = main(["images", "--run", "saved", "--vs", "demo-mask2former", "--results", str(res), "--only-dataset",
                 "demo"])
    assert code == 0, capsys.readouterr().err
    # score --name --no-analysis: the same fingerprint (the ground truth's images), so it pairs too
    assert main(["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
                 "--pred-json", str(out / f"{name}.json"), "--pred-dir", str(out / name), "--name", "plain",
                 "--dataset-name", "demo", "--results", str(res), "--no-analysis"]) == 0
    plain = next(r for r in load_records(res) if r["model"] == "plain")
    assert plain["provenance"]["dataset"]["fingerprint"] == ev["provenance"]["dataset"]["fingerprint"]


def test_compare_refuses_a_negative_seed_without_a_traceback(two_runs, capsys) -> None:
    with pytest.raises(SystemExit) as e:  # argparse's usage error
        main(["compare", "sys-a", "sys-b", "--bootstrap-seed", "-1", "--results", str(two_runs["results"])])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--bootstrap-seed" in err and "Traceback" not in err


def test_score_orders_images_as_eval_does_when_annotations_are_in_another_order(files, tmp_path, capsys) -> None:
    """panbench orders a dataset's images by the ground truth's `images` list (eval's PanopticDataset); score
    does the same when `annotations` come in another order, so that the per-image file, the fingerprint and
    compare agree with an eval of the same images."""
    from panbench.data.datasets import dataset_fingerprint

    gt = json.loads(Path(files["gt_json"]).read_text())
    gt["annotations"] = gt["annotations"][::-1]  # images stay in id order
    shuffled = tmp_path / "gt_reversed.json"
    shuffled.write_text(json.dumps(gt))
    f = {**files, "gt_json": shuffled}
    assert main([*score_args(f), "--name", "sys", "--dataset-name", "synth", "--results", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    (rec,) = load_records(tmp_path / "r")
    ids = [im["id"] for im in gt["images"]]
    assert ids != [a["image_id"] for a in gt["annotations"]]
    assert AnalysisSet.load(tmp_path / "r" / rec["analysis_file"]).image_ids == [str(i) for i in ids]
    # eval's fingerprint of the same images
    assert dataset_fingerprint(shuffled.read_bytes(), ids) == rec["provenance"]["dataset"]["fingerprint"]


# ---- compare picks the run `table` shows; score --name files its record under its ground truth's dataset ----

ABLATION = ("model.test_cfg.object_mask_thr=0.95", "model.test_cfg.iou_thr=0.95")


@pytest.fixture(scope="module")
def demo_ablation(tmp_path_factory) -> dict:
    """Demo evals as a user makes them: demo-maskformer (its predictions saved), demo-mask2former, then an
    ablation of demo-mask2former with --cfg-options: the latest demo-mask2former record is the ablation."""
    from panbench.data.demo import make_split
    from panbench.evaluation.storage import results_name

    tmp = tmp_path_factory.mktemp("demo_ablation")
    root, res, preds = tmp / "demo", tmp / "res", tmp / "preds"
    make_split(root, "val2017", 12, seed=0)
    common = ["--dataset", "demo", "--data-root", str(root), "--results", str(res), "--workers", "0", "--no-progress",
              "--flops-images", "0"]  # no GFLOPs pass: compare and table --ci read none
    assert main(["eval", "--model", "demo-maskformer", *common, "--save-predictions", str(preds)]) == 0
    assert main(["eval", "--model", "demo-mask2former", *common]) == 0
    assert main(["eval", "--model", "demo-mask2former", *common, "--cfg-options", *ABLATION]) == 0
    recs = load_records(res)
    name = results_name("panoptic_val2017", "demo-maskformer")
    return {"root": root, "results": res, "pred_json": preds / f"{name}.json", "pred_dir": preds / name,
            "default": next(r for r in recs if r["model"] == "demo-mask2former"
                            and not r["provenance"].get("cfg_options")),
            "ablation": next(r for r in recs if r["provenance"].get("cfg_options"))}


def _ci_row(capsys, res: Path, with_cfg: bool) -> list[float]:
    import io

    import pandas as pd

    assert main(["table", "--results", str(res), "--ci", "--reference", "demo-maskformer", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    (row,) = [r for _, r in df.iterrows() if r["model"] == "demo-mask2former" and bool(r["cfg_options"]) == with_cfg]
    return [float(row["PQ_diff_low"]), float(row["PQ_diff_high"])]


def test_compare_takes_the_default_settings_run_that_table_shows_with_the_same_interval(demo_ablation, capsys) -> None:
    """The ablation is the latest demo-mask2former record; compare still takes the default-settings run (the
    row `table` shows without settings), says that another run exists, names the settings, and prints the
    interval that `table --ci` prints for the same pair."""
    d = demo_ablation
    code, out, err = compare(capsys, d["results"], "demo-maskformer", "demo-mask2former", "--only-dataset", "demo",
                             "--json")
    assert code == 0, err
    pair = json.loads(out)
    assert pair["b"]["record"] == d["default"]["record"] and pair["b"]["settings"] == ""
    assert "demo-mask2former: compared its run with default settings; it also has runs with" in err
    table_iv = _ci_row(capsys, d["results"], with_cfg=False)
    assert table_iv == pair["metrics"]["PQ"]["interval"]  # CSV: every digit
    text = compare(capsys, d["results"], "demo-maskformer", "demo-mask2former", "--only-dataset", "demo")[1]
    assert text.splitlines()[1].startswith("B: demo-mask2former (runs/")  # named as the verdict names it


def test_compare_settings_choose_the_ablation_and_name_it(demo_ablation, capsys) -> None:
    d = demo_ablation
    wanted = " ".join(ABLATION)  # in another order than the label, separated by a space: the same settings
    code, out, err = compare(capsys, d["results"], "demo-maskformer", "demo-mask2former", "--only-dataset", "demo",
                             "--settings-b", wanted, "--json")
    assert code == 0, err
    pair = json.loads(out)
    assert pair["b"]["record"] == d["ablation"]["record"]
    assert pair["b"]["settings"] == "model.test_cfg.iou_thr=0.95; model.test_cfg.object_mask_thr=0.95"
    assert _ci_row(capsys, d["results"], with_cfg=True) == pair["metrics"]["PQ"]["interval"]  # CSV: every digit
    assert _ci_row(capsys, d["results"], with_cfg=False) != _ci_row(capsys, d["results"], with_cfg=True)
    code, _, err = compare(capsys, d["results"], "demo-maskformer", "demo-mask2former", "--only-dataset", "demo",
                           "--settings", "batch 4")
    assert "--settings batch 4: demo-maskformer has no run with these settings; its runs have: 'default'" in \
        one_line(code, err)


def test_score_name_files_its_record_under_the_dataset_of_its_ground_truth(demo_ablation, tmp_path, capsys) -> None:
    """Predictions saved by an eval on the demo set, scored with --name and no --dataset: the record is filed
    under demo (the dataset of the eval records of the same images), and compare pairs it with a demo run."""
    import shutil

    d = demo_ablation
    res = tmp_path / "res"
    shutil.copytree(d["results"], res)
    ann = d["root"] / "annotations"
    score = ["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
             "--pred-json", str(d["pred_json"]), "--pred-dir", str(d["pred_dir"]), "--name", "m2f saved"]
    assert main([*score, "--results", str(res)]) == 0
    capsys.readouterr()
    rec = next(r for r in load_records(res) if r["model"] == "m2f saved")
    assert rec["dataset"] == "demo" and rec["record"].endswith("_m2f_saved_demo.json")
    code, out, err = compare(capsys, res, "m2f saved", "demo-mask2former", "--only-dataset", "demo", "--json")
    assert code == 0, err
    assert json.loads(out)["a"]["model"] == "m2f saved"
    # an empty results folder: the dataset its folder names (ROOT/annotations/...: demo; another root: its name)
    assert main([*score, "--results", str(tmp_path / "empty")]) == 0
    mine = tmp_path / "mydata" / "annotations"
    shutil.copytree(ann, mine)
    assert main([*score, "--results", str(tmp_path / "empty2"), "--gt-json", str(mine / "panoptic_val2017.json"),
                 "--gt-dir", str(mine / "panoptic_val2017")]) == 0
    capsys.readouterr()
    assert [r["dataset"] for r in load_records(tmp_path / "empty")] == ["demo"]
    assert [r["dataset"] for r in load_records(tmp_path / "empty2")] == ["mydata"]
    # an explicit --dataset-name that the records of the same images contradict: refused, nothing written
    before = sorted((res / "runs").iterdir())
    err = one_line(main([*score, "--results", str(res), "--dataset-name", "coco"]), capsys.readouterr().err)
    assert "--dataset-name coco:" in err and "'demo' records" in err and sorted((res / "runs").iterdir()) == before


def test_compare_of_too_few_images_or_resamples_shows_no_interval_and_says_why(tmp_path, capsys) -> None:
    rng = np.random.default_rng(4)
    gt = [(i, random_image(rng, 60, 80, CATS)) for i in (1, 2)]
    f = dict(zip(("gt_json", "gt_dir"), write_panoptic(tmp_path, "gt", gt, CATS)))
    for k, pred in enumerate((gt, [(i, perturb(rng, g, CATS)) for i, g in gt])):
        f[f"pred{k}_json"], f[f"pred{k}_dir"] = write_panoptic(tmp_path, f"pred{k}", pred, CATS)
        _name(f, capsys, tmp_path / "res", f"sys{k}", k)
    err = one_line(*compare(capsys, tmp_path / "res", "sys0", "sys1")[::2])
    assert "no interval: 2 images: too few for a bootstrap interval, which needs at least 10" in err
    assert main(["table", "--results", str(tmp_path / "res")]) == 0
    out = capsys.readouterr()
    assert "]*" not in out.out and "beats" not in out.out
    assert "no paired difference (2 images: too few for a bootstrap interval" in out.out + out.err


def test_compare_with_one_resample_shows_no_interval(two_runs, capsys) -> None:
    err = one_line(*compare(capsys, two_runs["results"], "sys-a", "sys-b", "--resamples", "1")[::2])
    assert "1 resamples: too few for a 95% interval (use at least 100" in err
