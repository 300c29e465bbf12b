"""The analyses through `score`: `score --json` keys equal to the library's on the same files, bit-identical
metrics with and without them, and `score --name` records with their per-image file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import analysis_fields

from panbench.analysis import AnalysisSet, analyze
from panbench.cli import main
from panbench.data.synth import coco_like_categories, perturb, random_image, write_panoptic
from panbench.pq.coco_format import parse_categories, read_json
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import METRIC_KEYS
from panbench.pq.score import load_pairs, read_pair, read_truth
from panbench.pq.sums import PQStats, pq_summary
from panbench.records.io import load_records

CATS = coco_like_categories()
# what score writes without --boundary for predictions without segment scores (the score analyses need them:
# tests/analysis/test_score_analyses.py)
ANALYSIS_KEYS = set(analysis_fields()) - {"score_threshold", "calibration"}


def _write(tmp: Path, n: int = 12, seed: int = 0, systems: int = 2) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    gt = [(i, random_image(rng, int(rng.integers(40, 90)), int(rng.integers(40, 90)), CATS)) for i in range(1, n + 1)]
    out = dict(zip(("gt_json", "gt_dir"), write_panoptic(tmp, "gt", gt, CATS)))
    for k in range(systems):
        out[f"pred{k}_json"], out[f"pred{k}_dir"] = write_panoptic(tmp, f"pred{k}", [(i, perturb(rng, g, CATS))
                                                                                     for i, g in gt], CATS)
    return out


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return _write(tmp_path)


def score_args(f: dict[str, Path], k: int = 0, *extra: str) -> list[str]:
    return ["score", "--gt-json", str(f["gt_json"]), "--gt-dir", str(f["gt_dir"]), "--pred-json",
            str(f[f"pred{k}_json"]), "--pred-dir", str(f[f"pred{k}_dir"]), *extra]


def score_json(capsys, f, k: int = 0, *extra: str) -> dict:
    assert main(score_args(f, k, "--json", *extra)) == 0
    return json.loads(capsys.readouterr().out)


def library(f: dict[str, Path], k: int = 0) -> tuple[dict, dict]:
    """The analyses computed with the library, image by image, from the same files."""
    cats = parse_categories(read_json(f["gt_json"], "gt"), f["gt_json"])
    _, pairs = load_pairs(read_truth(f["gt_json"]), f[f"pred{k}_json"])
    recs, bstats = [], PQStats.zeros(len(cats))
    for pair in pairs:
        result = score_pair(cats, *read_pair(f["gt_dir"], f[f"pred{k}_dir"], pair), boundary=True)
        recs.append(result.match)
        bstats.add_image(result.boundary)
    a = AnalysisSet.from_images(recs, len(cats), [gt["image_id"] for gt, _ in pairs])
    b = pq_summary(bstats, cats.ids, cats.isthing)
    return analyze(a, cats.isthing), {k: b[k] for k in METRIC_KEYS}


def test_score_json_keys_equal_the_library(files, capsys) -> None:
    out = score_json(capsys, files, 0, "--boundary")
    lib, boundary = library(files)
    assert {k: out[k] for k in ANALYSIS_KEYS} == json.loads(json.dumps(lib))
    assert out["boundary"] == boundary and set(out["boundary"]) == set(METRIC_KEYS)
    assert set(out["by_size"]) == {"small", "medium", "large"}
    assert set(out["ci"]) == {"PQ", "SQ", "RQ", "PQ_th", "PQ_st"}
    assert all(set(v) >= {"count", "delta_PQ"} for v in out["errors"].values())
    assert "boundary" not in score_json(capsys, files)  # opt-in


def test_analyses_leave_the_metrics_bit_identical(files, capsys) -> None:
    plain = score_json(capsys, files, 0, "--no-analysis")
    full = score_json(capsys, files, 0, "--boundary")
    assert not ANALYSIS_KEYS & set(plain)
    assert {k: full[k] for k in plain} == plain  # every metric, per class included, bit for bit


def test_analyses_of_the_coco_sample_leave_its_metrics_bit_identical(coco_sample, tmp_path, capsys) -> None:
    from helpers import write_perturbed_sample

    ann = coco_sample / "annotations"
    pj, pd = write_perturbed_sample(ann, tmp_path, seed=3)
    base = ["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
            "--pred-json", str(pj), "--pred-dir", str(pd), "--json"]
    assert main([*base, "--no-analysis"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*base, "--boundary"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert {k: full[k] for k in plain} == plain and ANALYSIS_KEYS - {"ci"} | {"boundary"} <= set(full)
    assert "ci" not in full  # two images: too few for an interval (MIN_IMAGES)


def test_workers_give_the_same_analyses_bit_for_bit(tmp_path, capsys) -> None:
    f = _write(tmp_path, n=17, seed=5, systems=1)
    one = score_json(capsys, f, 0, "--boundary")
    two = score_json(capsys, f, 0, "--boundary", "--procs", "2")
    assert two == one and ANALYSIS_KEYS <= set(one)


def test_text_output_shows_the_analyses(files, capsys) -> None:
    assert main(score_args(files, 0, "--boundary")) == 0
    text = capsys.readouterr().out
    for word in ("95% interval", "by size", "PQ-dagger", "errors", "boundary PQ"):
        assert word in text


def test_the_numpy_paths_give_the_same_json_bit_for_bit(files) -> None:
    """`score --boundary --json` with every C kernel (PQ's pixel pass, the match, boundary PQ) and with their
    numpy twins on the per-image path (tests/kernel_references.py): the same output, every analysis to the last
    digit."""
    import os
    import subprocess
    import sys

    outs = []
    tests = str(Path(__file__).parents[1])
    for twins in (False, True):
        code = "\n".join(["import sys", f"sys.path.insert(0, {tests!r})", "import pytest",
                          "from kernel_references import numpy_kernels", "from panbench.pq import batch",
                          "m = pytest.MonkeyPatch()", f"if {twins}:", "    numpy_kernels(m)",
                          "    m.setattr(batch, 'available', lambda: False)", "from panbench.cli import main",
                          "from panbench.pq import kernels", "code = main(sys.argv[1:])",
                          f"assert (kernels._native.pair_counts.__module__ == 'kernel_references') == {twins}",
                          "sys.exit(code)"])
        r = subprocess.run([sys.executable, "-c", code, *score_args(files, 0, "--boundary", "--json")],
                           capture_output=True, text=True, env=os.environ)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(json.loads(r.stdout))
    assert outs[0] == outs[1] and outs[0]["boundary"] and outs[0]["errors"]


def test_no_analysis_with_boundary_is_refused(files, capsys) -> None:
    assert main(score_args(files, 0, "--no-analysis", "--boundary")) == 2
    assert "--boundary" in capsys.readouterr().err


def _name(f, capsys, results: Path, name: str, k: int = 0, *extra: str) -> dict:
    assert main(score_args(f, k, "--name", name, "--dataset-name", "syn", "--results", str(results), "--json",
                           *extra)) == 0
    out = json.loads(capsys.readouterr().out)
    rec = [r for r in load_records(results) if r["model"] == name][-1]
    return {"out": out, "rec": rec}


def test_score_name_record_carries_the_analyses_and_the_per_image_file(files, tmp_path, capsys) -> None:
    results = tmp_path / "res"
    r = _name(files, capsys, results, "sys a", 0, "--boundary")
    rec, out = r["rec"], r["out"]
    assert rec["schema"] == 2
    for k in analysis_fields(boundary=True):
        assert rec.get(k) == out.get(k), k
    path = results / rec["analysis_file"]
    assert path.name == Path(rec["record"]).stem + ".analysis.npz" and path.parent == (results / rec["record"]).parent
    a = AnalysisSet.load(path)
    cats = parse_categories(read_json(files["gt_json"], "gt"), files["gt_json"])
    assert a.category_ids == cats.ids and a.isthing == cats.isthing and a.n_images == 12
    assert json.loads(json.dumps(analyze(a, cats.isthing))) == {k: rec[k] for k in ANALYSIS_KEYS}
    assert rec["provenance"]["dataset"]["fingerprint"]
