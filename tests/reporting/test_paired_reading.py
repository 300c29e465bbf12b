"""What `table`, `report` and `compare` read (panbench/reporting/pairing.py, cli/compare.py, the report's gallery):
of each analysis file only the columns they sum, kept as sparse rows (never the dense N x C sums), each pair's
bootstrap made once per command (a report asks twice), no run's saved predictions where the gallery has no image to
draw them on, and a ground truth's file names and thing flags without parsing its segments; the numbers those of
the dense pairing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from analysis_records import ground_truth
from helpers import scored_runs

from panbench.analysis import AnalysisSet, RunSums, paired_bootstrap
from panbench.analysis.paired import PAIRED_COLUMNS, THRESHOLD_COLUMNS
from panbench.cli import main
from panbench.records.io import load_records
from panbench.reporting import pairing, report


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> Path:
    """Three runs of 16 generated images (their predictions perturbed with seeds 1-3), on the same images."""
    from analysis_records import add_run

    root = tmp_path_factory.mktemp("paired_reading")
    gt_json, images = ground_truth(root)
    for k, model in enumerate(("alpha", "beta", "gamma")):
        add_run(root, model, gt_json, images, pred_seed=k + 1, date=f"2001-01-01T00:00:0{k}+00:00")
    return root


def _dense_interval(results: Path, x: str, ref: str) -> list[float]:
    runs = {r.model: r for r in load_records(results)}
    a, b = (AnalysisSet.load(results / str(runs[m].analysis_file)) for m in (x, ref))
    return paired_bootstrap(RunSums.from_analysis(a), RunSums.from_analysis(b), a.isthing,
                            per_class=False)["metrics"]["PQ"]


def test_the_pairing_reads_only_the_summed_columns_and_never_makes_the_dense_sums(three_runs, monkeypatch) -> None:
    records = load_records(three_runs)
    want = {r.model: _dense_interval(three_runs, r.model, "alpha") for r in records if r.model != "alpha"}
    read, load = [], AnalysisSet.load

    def loading(path, keys=None):  # noqa: ANN001, ANN202
        read.append(keys)
        return load(path, keys)

    monkeypatch.setattr(AnalysisSet, "load", staticmethod(loading))
    monkeypatch.setattr(AnalysisSet, "per_image", lambda *a: pytest.fail("the dense N x C sums were made"))
    monkeypatch.setattr(pairing, "_BOOTSTRAPS", {})
    out, notes = pairing.paired_differences(records, three_runs, reference="alpha")
    assert read == [PAIRED_COLUMNS] * 3 and not notes
    got = {r.model: p["interval"]["PQ"] for r, p in zip(records, out) if not p.get("reference")}
    assert got == want and len(got) == 2


def test_each_pair_is_bootstrapped_once_per_command_and_again_when_its_file_changes(three_runs, monkeypatch,
                                                                                      tmp_path) -> None:
    res = tmp_path / "res"
    shutil.copytree(three_runs, res)
    made, pair = [], pairing.paired_sparse

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        made.append(args[0].name)
        return pair(*args, **kwargs)

    monkeypatch.setattr(pairing, "paired_sparse", counted)
    monkeypatch.setattr(pairing, "_BOOTSTRAPS", {})
    records = load_records(res)
    first = pairing.paired_differences(records, res, reference="alpha")
    assert pairing.paired_differences(list(reversed(records)), res, reference="alpha")[0] == first[0][::-1]
    assert sorted(made) == ["beta", "gamma"]  # the second reading made none
    first[0][1]["interval"]["PQ"][0] = 99.0  # a caller's change reaches no other caller
    assert pairing.paired_differences(records, res, reference="alpha")[0][1]["interval"]["PQ"][0] != 99.0
    beta = res / str(next(r for r in records if r.model == "beta").analysis_file)
    gamma = res / str(next(r for r in records if r.model == "gamma").analysis_file)
    beta.write_bytes(gamma.read_bytes())  # beta's file rewritten: its pair made again, of the new numbers
    again = pairing.paired_differences(records, res, reference="alpha")[0]
    assert sorted(made) == ["beta", "beta", "gamma"] and again[1]["interval"] == again[2]["interval"]


def test_compare_reads_only_the_columns_it_pairs(tmp_path, monkeypatch, capsys) -> None:
    results = scored_runs(tmp_path)  # two `score --name` runs: analysis files with their category table
    capsys.readouterr()
    read, load = [], AnalysisSet.load

    def loading(path, keys=None):  # noqa: ANN001, ANN202
        read.append(keys)
        return load(path, keys)

    monkeypatch.setattr(AnalysisSet, "load", staticmethod(loading))
    assert main(["compare", "sys-a", "sys-b", "--results", str(results), "--resamples", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert read == [THRESHOLD_COLUMNS] * 2
    runs = {r.model: load(results / str(r.analysis_file)) for r in load_records(results)}
    b_minus_a = paired_bootstrap(RunSums.from_analysis(runs["sys-b"]), RunSums.from_analysis(runs["sys-a"]),
                                 runs["sys-a"].isthing, n_resamples=200, per_class=False)
    assert out["metrics"]["PQ"]["interval"] == b_minus_a["metrics"]["PQ"]


def test_the_gallery_reads_the_summed_columns_and_no_saved_predictions_without_an_image_to_draw_on(
        three_runs, monkeypatch, tmp_path) -> None:
    res = tmp_path / "res"
    shutil.copytree(three_runs, res)
    for path in (res / "runs").glob("*.json"):  # runs that saved predictions, of a dataset not at hand
        rec = json.loads(path.read_text())
        rec["provenance"]["predictions"] = {"json": str(tmp_path / "pred.json"), "dir": str(tmp_path)}
        path.write_text(json.dumps(rec))
    (tmp_path / "pred.json").write_text(json.dumps({"annotations": []}))
    read: list[str] = []
    columns, load = [], AnalysisSet.load

    def loading(path, keys=None):  # noqa: ANN001, ANN202
        columns.append(keys)
        return load(path, keys)

    monkeypatch.setattr(AnalysisSet, "load", staticmethod(loading))
    monkeypatch.setattr(report, "_saved", lambda r, image_id, cache: read.append(r.model))
    html = report.gallery_section(load_records(res), res, tmp_path, lambda p: f"<img {p}>")
    assert "where each model loses most" in html and "<img" not in html and read == []
    assert columns == [PAIRED_COLUMNS] * 3  # of each run's per-image columns, those its per-image sums read


def _large_ground_truth(path: Path, n_images: int = 1500, n_segments: int = 40) -> Path:
    """A panoptic ground-truth JSON whose segments_info arrays are most of its bytes, as COCO's are."""
    cats = [{"id": k, "name": f"c{k}", "isthing": int(k < 5)} for k in range(1, 9)]
    segs = [{"id": 1000 + s, "category_id": 1 + s % 8, "area": 50 + s, "bbox": [s, s, 10, 10], "iscrowd": 0}
            for s in range(n_segments)]
    doc = {"images": [{"id": i, "file_name": f"{i:012d}.jpg", "height": 64, "width": 64} for i in range(n_images)],
           "annotations": [{"image_id": i, "file_name": f"{i:012d}.png", "segments_info": segs}
                           for i in range(n_images)], "categories": cats}
    path.write_text(json.dumps(doc))
    return path


def _peak(fn):  # noqa: ANN001, ANN202
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_file_names_and_thing_flags_are_read_without_parsing_the_segments(tmp_path) -> None:
    from panbench.analysis.per_image import file_names_of

    gt = _large_ground_truth(tmp_path / "gt.json")
    _, whole = _peak(lambda: json.loads(gt.read_text()))
    names, peak = _peak(lambda: file_names_of(gt, [7, 1499, 5000]))
    assert names == ["000000000007.jpg", "000000001499.jpg", ""] and peak < 0.5 * whole
    pairing._isthing.cache_clear()
    flags, peak = _peak(lambda: pairing._isthing(str(gt)))
    assert flags == (True,) * 4 + (False,) * 4 and peak < 0.5 * whole
