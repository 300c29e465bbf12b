"""`panbench score --instances FILE.json`: COCO mask AP of any system's instance results, equal to pycocotools on
the same file; the AP in the record; one-line errors for a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.records.io import load_records

pytest.importorskip("hotcoco", reason="AP is computed with hotcoco (pip install hotcoco)")


@pytest.fixture
def instances(coco_sample: Path, tmp_path: Path) -> Path:
    from ap_cases import coco_sample_accumulator, perturbed_predictions

    acc, ids_by_image, _ = coco_sample_accumulator(coco_sample)
    perturbed_predictions(acc, ids_by_image, seed=7)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(acc.results()))
    return path


def score_args(root: Path, *extra: str) -> list[str]:
    ann = root / "annotations"
    return ["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
            "--pred-json", str(ann / "panoptic_val2017.json"), "--pred-dir", str(ann / "panoptic_val2017"),
            "--procs", "1", *extra]


def test_score_instances_gives_pycocotools_ap_and_writes_it_in_the_record(coco_sample: Path, instances: Path,
                                                                         tmp_path: Path, capsys) -> None:
    from ap_cases import assert_same_ap, coco_sample_accumulator, pycocotools_ap

    results = tmp_path / "results"
    assert main(score_args(coco_sample, "--instances", str(instances), "--json", "--no-analysis",
                           "--name", "sys", "--results", str(results))) == 0
    out = json.loads(capsys.readouterr().out)
    gt = coco_sample_accumulator(coco_sample)[0].gt_dataset()
    assert_same_ap(out["ap"], pycocotools_ap(gt, str(instances)))
    assert out["PQ"] == 100.0 and out["ap_source"] == "instances JSON"
    (rec,) = load_records(results)
    assert rec.ap == out["ap"] and rec.ap_source == "instances JSON"
    assert main(score_args(coco_sample, "--instances", str(instances), "--no-analysis")) == 0
    assert "mask AP (things): AP " in capsys.readouterr().out
    assert main(["table", "--results", str(results), "--format", "csv"]) == 0
    table = capsys.readouterr().out.splitlines()
    row = dict(zip(table[0].split(","), table[1].split(",")))
    assert abs(float(row["AP"]) - out["ap"]["AP"]) < 1e-3 and row["mIoU_from"] == "panoptic"
    assert float(row["mIoU"]) == pytest.approx(out["mIoU"], abs=1e-3)


@pytest.mark.parametrize("content, says", [
    ("{}", "not a list"),
    ('[{"image_id": 142238, "category_id": 1, "score": 0.5, "segmentation": [[1, 2, 3, 4]]}]', "RLE mask"),
    ('[{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": "04"}}]',
     "which the ground truth does not annotate"),
    ('[{"image_id": 142238, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": "04"}}]',
     "full size"),
])
def test_a_bad_instances_file_is_a_one_line_error(coco_sample: Path, tmp_path: Path, capsys, content: str,
                                                  says: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(score_args(coco_sample, "--instances", str(bad), "--no-analysis")) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and str(bad) in err and len(err.splitlines()) == 1


def test_score_instances_never_imports_torch(coco_sample: Path, instances: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from panbench.cli import main; "
            f"rc = main({score_args(coco_sample, '--instances', str(instances), '--no-analysis', '--json')!r}); "
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mmdet', 'mmcv', 'mmengine')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.splitlines()[-1] == "0 []"


def test_score_instances_and_evaluators_take_the_one_decode_of_each_png(coco_sample: Path, instances: Path,
                                                                          tmp_path: Path, monkeypatch, capsys) -> None:
    """An evaluator that needs only the segments (the example declares ``needs = {"segments"}``) keeps the C batch
    path; AP's ground truth and an evaluator that declares nothing read the id maps that PQ's scoring decodes: each
    PNG read once, on the per-image path, with the numbers of the batch path."""
    from panbench.pq import batch, score

    example = Path(__file__).resolve().parents[2] / "examples" / "evaluators" / "image_count.py"
    reads: list[str] = []
    in_c: list[bool] = []
    read_ids, score_batch = score.read_ids, batch.score_batch
    monkeypatch.setattr(score, "read_ids", lambda path, *a, **k: (reads.append(Path(path).name), read_ids(path, *a,
                                                                                                          **k))[1])
    monkeypatch.setattr(batch, "score_batch", lambda *a: (in_c.append(a[7]), score_batch(*a))[1])
    assert main(score_args(coco_sample, "--json")) == 0
    alone = json.loads(capsys.readouterr().out)
    assert in_c == [batch.available()]  # alone: the batch path, in C where built
    reads.clear()
    in_c.clear()
    assert main(score_args(coco_sample, "--evaluator", f"{example}:ImageCount", "--json")) == 0
    counted = json.loads(capsys.readouterr().out)
    pngs = sorted(p.name for p in (coco_sample / "annotations" / "panoptic_val2017").glob("*.png"))
    assert in_c == [batch.available()] and counted["evaluators"]["ImageCount"]["images"] == len(pngs)
    reads.clear()
    in_c.clear()
    everything = tmp_path / "everything.py"  # the example declaring nothing: it gets the id maps too
    everything.write_text(example.read_text().replace("    needs = {\"segments\"}", ""))
    assert main(score_args(coco_sample, "--instances", str(instances), "--evaluator", f"{everything}:ImageCount",
                           "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert in_c == [] and sorted(reads) == sorted(pngs * 2)  # no batch: each ground truth and each prediction once
    assert out["evaluators"] == counted["evaluators"] and out["ap_source"] == "instances JSON"
    for got in (counted, out):
        assert {k: v for k, v in got.items() if k not in ("ap", "ap_source", "evaluators")} == alone
