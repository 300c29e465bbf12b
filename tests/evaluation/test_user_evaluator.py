"""``--evaluator``: a user's evaluator refused in one line before any model loads when it cannot be loaded or breaks
the contract; its fields in the record and the table; a cache made without it runs the images again for it; a run
killed part-way resumes to the numbers of one that was not (forked processes, torchrun ranks and a resume from
chunks: tests/evaluation/test_eval_analysis.py, whose runs all add the example evaluator)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import killed_part_way

from panbench.cli import main
from panbench.errors import PanbenchError
from panbench.evaluators import Evaluators
from panbench.evaluators.contract import load_evaluator
from panbench.package import REPO_ROOT
from panbench.pq.matching import CategoryTable

EXAMPLE = REPO_ROOT / "examples" / "evaluators" / "image_count.py"
LIMIT = 8  # the run a SIGKILL stops part-way (3 of its images cached) and its reference
FEW = 2  # the runs that check who runs which images: two images show it as eight would


def _args(demo_root: Path, results: Path, *extra: str, limit: int = LIMIT) -> list[str]:
    return ["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root), "--results",
            str(results), "--workers", "0", "--no-progress", "--device", "cpu", "--cpu-procs", "1", "--no-ap",
            "--flops-images", "0", "--limit", str(limit), *extra]


def _record(results: Path) -> dict:
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


BROKEN = {
    "no_method.py": "class E:\n    def reset(self): pass\n    def process(self, image): return 1\n",
    "fails.py": "raise RuntimeError('boom')\n",
    "bad_init.py": "class E:\n    def __init__(self, x): pass\n",
    "lock.py": EXAMPLE.read_text().replace("self.images = self.gt_segments = 0",
                                           "self.images = self.gt_segments = 0\n        import threading\n"
                                           "        self.lock = threading.Lock()"),
    "reset.py": EXAMPLE.read_text().replace("self.images = self.gt_segments = 0", "raise KeyError('r')"),
}


@pytest.mark.parametrize(("spec", "words"), [
    ("nosuchmodule_xyz:E", "module nosuchmodule_xyz cannot be imported"),
    ("{dir}/missing.py:E", "missing.py not found"),
    ("{dir}/no_method.py:Other", "has no Other"),
    ("{dir}/no_method.py:E", "lacks add, merge, evaluate"),
    ("{dir}/fails.py:E", "failed to import (RuntimeError: boom)"),
    ("{dir}/bad_init.py:E", "E() failed (TypeError"),
    ("just_a_module", "give module:Class"),
    ("{dir}/lock.py:ImageCount", "its state does not pickle (TypeError: cannot pickle '_thread.lock' object)"),
    ("{dir}/reset.py:ImageCount", "reset() failed on loading (KeyError: 'r')"),
])
def test_an_evaluator_that_cannot_be_loaded_is_refused_in_one_line_before_any_model(
        spec: str, words: str, demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    from panbench.evaluation import run

    monkeypatch.setattr(run, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    capsys.readouterr()
    assert main(_args(demo_root, tmp_path / "res", "--evaluator", spec.format(dir=tmp_path))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and err[0].startswith("panbench: error: "), err


def test_two_evaluators_of_one_name_or_a_built_in_name_are_refused() -> None:
    class AP:  # the built-in's name
        def reset(self): ...
        def process(self, image): ...
        def add(self, share): ...
        def merge(self, other): ...
        def evaluate(self): return {}

    cats = CategoryTable([1], ["a"], [True])
    with pytest.raises(PanbenchError, match="the name of a built-in evaluator"):
        Evaluators.for_run(cats, extra=[AP()])
    with pytest.raises(PanbenchError, match="given twice"):
        Evaluators.for_run(cats, extra=[load_evaluator(f"{EXAMPLE}:ImageCount") for _ in range(2)])


def test_a_share_that_is_not_json_is_refused_in_one_line(demo_root: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "obj.py").write_text(EXAMPLE.read_text().replace('return {"gt_segments": len(image.gt_segments)}',
                                                                 "return object()"))
    capsys.readouterr()
    assert main(_args(demo_root, tmp_path / "res", "--evaluator", f"{tmp_path / 'obj.py'}:ImageCount")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "evaluator ImageCount: process() returned a share that is not JSON" in err[-1], err


@pytest.fixture(scope="module")
def with_example(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results folder of a run with the example evaluator, made once (its tests only read it)."""
    results = tmp_path_factory.mktemp("with_example")
    assert main(_args(demo_root, results, "--evaluator", f"{EXAMPLE}:ImageCount")) == 0
    return results


def test_its_fields_go_into_the_record_and_the_tables_every_column(with_example: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fields = _record(with_example)["evaluators"]["ImageCount"]
    assert fields["images"] == LIMIT and fields["gt_segments"] > LIMIT
    capsys.readouterr()
    assert main(["table", "--results", str(with_example), "--all-columns", "--format", "csv"]) == 0
    head, row = list(csv.reader(io.StringIO(capsys.readouterr().out)))[:2]
    at = dict(zip(head, row))
    assert at["ImageCount.images"] == str(LIMIT) and at["ImageCount.gt_segments"] == str(fields["gt_segments"])


def test_a_cache_made_without_it_runs_the_images_again_for_it(demo_root: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(demo_root, tmp_path, limit=FEW)) == 0
    without = _record(tmp_path)
    capsys.readouterr()
    assert main(_args(demo_root, tmp_path, "--evaluator", f"{EXAMPLE}:ImageCount", limit=FEW)) == 0
    err = capsys.readouterr().err
    assert f"no share of ImageCount@1 ({FEW} images" in err, err  # every cached image run again
    rec = _record(tmp_path)
    assert rec["evaluators"]["ImageCount"]["images"] == FEW and rec["metrics"] == without["metrics"]


@pytest.mark.slow
def test_a_run_killed_part_way_resumes_to_the_same_numbers_and_fields(with_example: Path, demo_root: Path,
                                                                       tmp_path: Path) -> None:
    """A real SIGKILL once the cache holds some images (a chunk per image), before any record, then a resume: the
    metrics, per-class values, image count and the evaluator's fields of a run that was not killed."""
    whole = with_example
    killed = tmp_path / "killed"
    args = _args(demo_root, killed, "--evaluator", f"{EXAMPLE}:ImageCount", "--cache-every", "1")
    held = killed_part_way(args, killed, 3)
    assert 3 <= held < LIMIT and not (killed / "runs").exists(), held  # killed part-way
    r = subprocess.run([sys.executable, "-m", "panbench", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "resuming" in r.stderr and "already scored" in r.stderr, r.stderr
    a, b = _record(whole), _record(killed)
    assert a["evaluators"] == b["evaluators"] and a["metrics"] == b["metrics"] and a["per_class"] == b["per_class"]
    assert a["n_images"] == b["n_images"] == LIMIT


def test_score_runs_it_over_the_files_into_its_output_and_the_record(coco_sample: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """COCO's own PNGs, the ground truth scored as its own prediction."""
    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    gt_dir = coco_sample / "annotations" / "panoptic_val2017"
    truth = json.loads(gt_json.read_text())["annotations"]
    files = ["score", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json", str(gt_json),
             "--pred-dir", str(gt_dir), "--evaluator", f"{EXAMPLE}:ImageCount"]
    capsys.readouterr()
    assert main([*files, "--json"]) == 0
    want = {"ImageCount": {"images": len(truth), "gt_segments": sum(len(a["segments_info"]) for a in truth)}}
    assert json.loads(capsys.readouterr().out)["evaluators"] == want
    assert main([*files, "--name", "truth", "--results", str(tmp_path)]) == 0
    assert f"ImageCount: images {len(truth)}, gt_segments" in capsys.readouterr().out
    assert _record(tmp_path)["evaluators"] == want


def test_the_python_api_takes_the_class_as_docs_api_md_shows(demo_root: Path, tmp_path: Path) -> None:
    from panbench.data.datasets import load_dataset
    from panbench.evaluation.options import EvalOptions
    from panbench.evaluation.run import evaluate_model
    from panbench.models.registry import resolve

    ds = load_dataset(demo_root, name="demo", limit=4)
    opts = EvalOptions(device="cpu", workers=0, progress=False, cpu_procs=2, flops_images=0, ap=False,
                       results_dir=tmp_path, cache_root=tmp_path / "cache", evaluators=(f"{EXAMPLE}:ImageCount",))
    record = evaluate_model(resolve("demo-mask2former", dataset="demo")[0], ds, opts)
    assert record.timings["cpu_procs"] == 2  # forked processes send its state back
    assert record.evaluators == {"ImageCount": {"images": 4, "gt_segments": sum(len(s.gt_ann["segments_info"])
                                                                                for s in ds.samples)}}


def test_an_exception_in_its_code_is_one_line_naming_it_the_method_and_the_image(
        demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "div.py").write_text(EXAMPLE.read_text().replace('return {"gt_segments": len(image.gt_segments)}',
                                                                 "return 1 // 0"))
    capsys.readouterr()
    assert main(_args(demo_root, tmp_path / "res", "--evaluator", f"{tmp_path / 'div.py'}:ImageCount")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("panbench: error: evaluator ImageCount: process() failed on image ") and \
        "(ZeroDivisionError: integer division or modulo by zero); fix the evaluator" in err[-1], err
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize(("change", "words"), [
    ((' # one image\'s share (JSON), computed without changing the state\n        return',
      ' # one image\'s share (JSON), computed without changing the state\n        self.images += 1\n        return'),
     "process() changed its state; return the image's share from process() and add it in add()"),
    (('return {"images": self.images, "gt_segments": self.gt_segments}', 'return {"images": {1, 2}}'),
     "evaluate() returned fields that are not JSON"),
    (('return {"images": self.images, "gt_segments": self.gt_segments}', 'return {"images": float("nan")}'),
     "evaluate() returned fields that are not JSON (Out of range float values"),
    (('return {"gt_segments": len(image.gt_segments)}', 'import sys; sys.exit(3)'),
     "process() called sys.exit(3) on image"),
])
def test_a_broken_contract_is_one_line_naming_the_evaluator(change: tuple[str, str], words: str, coco_sample: Path,
                                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """detectron2's habit (state changed in process()), fields that are not JSON: ``score`` on COCO's sample."""
    text = EXAMPLE.read_text()
    assert change[0] in text
    (tmp_path / "e.py").write_text(text.replace(*change))
    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    gt_dir = coco_sample / "annotations" / "panoptic_val2017"
    capsys.readouterr()
    assert main(["score", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json", str(gt_json),
                 "--pred-dir", str(gt_dir), "--evaluator", f"{tmp_path / 'e.py'}:ImageCount", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def test_what_an_evaluator_prints_goes_to_stderr_and_score_json_stays_json(coco_sample: Path, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.read_text().replace('return {"gt_segments": len(image.gt_segments)}',
                                       'print("seen", image.image_id); return {"gt_segments": len(image.gt_segments)}')
    (tmp_path / "e.py").write_text(text)
    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    gt_dir = coco_sample / "annotations" / "panoptic_val2017"
    capsys.readouterr()
    assert main(["score", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json", str(gt_json),
                 "--pred-dir", str(gt_dir), "--evaluator", f"{tmp_path / 'e.py'}:ImageCount", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["evaluators"]["ImageCount"]["images"] == 2 and err.count("seen ") == 2, (out, err)


def test_a_version_of_zero_is_its_own_and_a_later_run_of_an_image_replaces_its_cached_share(tmp_path: Path) -> None:
    """Chunks read in the order they were written, whatever the pids of their processes."""
    from panbench.evaluation.storage import StatsCache
    from panbench.evaluators.contract import cache_key_of

    class Zero:
        version = 0

    assert cache_key_of(Zero()) == "Zero@0"
    cats = CategoryTable([1], ["a"], [True])
    gt = np.ones((4, 4), np.uint32)
    segs = [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 16}]
    first = Evaluators.for_run(cats, observer=StatsCache(tmp_path, flush_every=1))
    first.score(0, gt, segs, gt, segs, "image 0")
    old = next(tmp_path.glob("chunk-*.npz"))
    old.rename(tmp_path / "chunk-r0-99999-000001.npz")  # a pid that sorts after this process's
    again = Evaluators.for_run(cats, observer=StatsCache(tmp_path, flush_every=1),
                               extra=[load_evaluator(f"{EXAMPLE}:ImageCount")])
    done, lacking = again.resume(again.observer.load(), [0], set())
    assert not done and lacking == {"ImageCount@1": 1}
    again.score(0, gt, segs, gt, segs, "image 0")
    third = Evaluators.for_run(cats, observer=StatsCache(tmp_path), extra=[load_evaluator(f"{EXAMPLE}:ImageCount")])
    assert third.resume(third.observer.load(), [0], set()) == (frozenset({0}), {})


def test_eval_refuses_it_with_images_that_have_no_ground_truth(demo_root: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["eval", "--model", "demo-mask2former", "--images", str(demo_root / "val2017"), "--save-predictions",
                 str(tmp_path / "p"), "--evaluator", f"{EXAMPLE}:ImageCount"]) == 2
    assert "--evaluator reads scored images; --images has no ground truth" in capsys.readouterr().err


def test_eval_score_and_the_python_api_give_it_the_same_fields_through_the_one_composite(
        demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One user evaluator (the example, and the example declaring nothing, which gets the id maps) driven by ``eval``
    (two forked processes; torchrun's ranks and a resume after SIGKILL: test_eval_analysis.py and the test above),
    ``score`` (two threads) on the predictions eval saved, and ``PanopticQuality(evaluators=...)`` on the same maps:
    the same fields each way."""
    from panbench.metrics import PanopticQuality
    from panbench.pq.png import read_ids

    everything = tmp_path / "everything.py"
    everything.write_text(EXAMPLE.read_text().replace('    needs = {"segments"}', ""))
    specs = [f"{EXAMPLE}:ImageCount", f"{everything}:ImageCount"]
    fields, images = [], 2 * FEW  # two images per forked process: each process's state is merged
    for spec in specs:
        out = tmp_path / f"pred-{len(fields)}"
        assert main(_args(demo_root, tmp_path / "res", "--cpu-procs", "2", "--evaluator", spec, "--save-predictions",
                          str(out), "--no-resume", limit=images)) == 0
        fields.append(_record(tmp_path / "res")["evaluators"])
    pred_json = next(out.glob("*.json"))
    pred = json.loads(pred_json.read_text())
    gt = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    ids = {a["image_id"] for a in pred["annotations"]}
    assert len(ids) == images
    subset = tmp_path / "gt.json"  # the ground truth of the images eval ran
    subset.write_text(json.dumps({**gt, "images": [i for i in gt["images"] if i["id"] in ids],
                                  "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}))
    gt_dir = demo_root / "annotations" / "panoptic_val2017"
    for spec in specs:
        capsys.readouterr()
        assert main(["score", "--gt-json", str(subset), "--gt-dir", str(gt_dir), "--pred-json", str(pred_json),
                     "--pred-dir", str(pred_json.with_suffix("")), "--procs", "2", "--evaluator", spec,
                     "--json"]) == 0
        fields.append(json.loads(capsys.readouterr().out)["evaluators"])
        metric = PanopticQuality(json.loads(subset.read_text())["categories"], evaluators=[spec])
        by_id = {a["image_id"]: a for a in pred["annotations"]}
        for a in json.loads(subset.read_text())["annotations"]:
            p = by_id[a["image_id"]]
            metric.update(read_ids(pred_json.with_suffix("") / p["file_name"], "pred").copy(), p["segments_info"],
                          read_ids(gt_dir / a["file_name"], "gt").copy(), a["segments_info"], image_id=a["image_id"])
        fields.append(metric.compute().evaluators)
    assert fields[0]["ImageCount"]["images"] == images and all(f == fields[0] for f in fields), fields


def test_the_metric_takes_one_evaluator_named_alone_as_a_string(coco_sample: Path) -> None:
    from panbench.metrics import PanopticQuality

    metric = PanopticQuality(coco_sample / "annotations" / "panoptic_val2017.json", evaluators=f"{EXAMPLE}:ImageCount")
    assert [type(ev).__name__ for ev in metric.evaluators] == ["ImageCount"]
