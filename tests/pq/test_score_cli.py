"""`panbench score`: output formats, and one-line errors (exit 2, no traceback) for bad input."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.synth import coco_like_categories, perturb, random_image, write_panoptic
from panbench.pq import score
from panbench.pq.matching import METRIC_KEYS

CATS = coco_like_categories()


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    gt = [(i, random_image(rng, 40 + 3 * i, 50, CATS)) for i in range(1, 4)]
    pred = [(i, perturb(rng, g, CATS)) for i, g in gt]
    gj, gd = write_panoptic(tmp_path, "gt", gt, CATS)
    pj, pd = write_panoptic(tmp_path, "pred", pred, CATS)
    return {"gt_json": gj, "gt_dir": gd, "pred_json": pj, "pred_dir": pd}


def args(c: dict[str, Path], *extra: str) -> list[str]:
    return ["score", "--gt-json", str(c["gt_json"]), "--gt-dir", str(c["gt_dir"]),
            "--pred-json", str(c["pred_json"]), "--pred-dir", str(c["pred_dir"]), *extra]


def test_json_output_has_metrics_per_class_and_n_images(case, capsys) -> None:
    assert main(args(case, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(METRIC_KEYS) <= set(out) and out["n_images"] == 3
    assert set(out["per_class"]) == {str(c["id"]) for c in CATS}
    assert set(out["per_class"][str(CATS[0]["id"])]) == {"PQ", "SQ", "RQ", "TP", "FP", "FN", "IoU", "Dice"}
    assert {"pixel_acc", "mIoU", "mDice"} <= set(out)


def test_json_per_class_is_null_for_a_category_absent_from_both_sides_and_averages_to_pq(case, capsys) -> None:
    """A category with no TP, FP or FN has PQ, SQ, RQ null (the table's '-'); the mean of the others is PQ."""
    assert main(args(case, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    absent = [v for v in out["per_class"].values() if v["TP"] + v["FP"] + v["FN"] == 0]
    assert absent and all(v["PQ"] is None and v["SQ"] is None and v["RQ"] is None for v in absent)
    present = [v["PQ"] for v in out["per_class"].values() if v["PQ"] is not None]
    assert len(present) == out["n_categories"]["All"]
    assert sum(present) / len(present) == pytest.approx(out["PQ"], abs=1e-9)


def test_table_output(case, capsys) -> None:
    assert main(args(case)) == 0
    table = capsys.readouterr().out
    assert "All" in table and "Things" in table and "Stuff" in table


@pytest.mark.parametrize("workers", [2, 3, None])
@pytest.mark.parametrize("boundary", [False, True])
def test_per_image_path_on_threads_equals_one_thread_bit_for_bit(tmp_path, capsys, monkeypatch, workers,
                                                                 boundary) -> None:
    """The per-image path (an install without the batch kernels; boundary PQ) scores its chunks on the threads
    too, and prints what one thread prints.  ``None``: no --procs, the default, on a machine with 3 available
    cores."""
    import threading

    monkeypatch.setattr(score.batch, "available", lambda: False)
    rng = np.random.default_rng(workers or 4)
    gt = [(i, random_image(rng, int(rng.integers(30, 70)), int(rng.integers(30, 70)), CATS)) for i in range(1, 40)]
    pred = [(i, perturb(rng, g, CATS)) for i, g in gt]
    gj, gd = write_panoptic(tmp_path, "gt", gt, CATS)
    pj, pd = write_panoptic(tmp_path, "pred", pred, CATS)
    c = {"gt_json": gj, "gt_dir": gd, "pred_json": pj, "pred_dir": pd}
    extra = ["--json", *(["--boundary"] if boundary else [])]
    assert main(args(c, *extra, "--procs", "1")) == 0
    one = capsys.readouterr().out
    ran: list[str] = []
    real = score._score_one

    def noted(*a):  # noqa: ANN002, ANN202
        ran.append(threading.current_thread().name)
        return real(*a)

    pools: list[int] = []
    real_pool = score.batch.Workers

    def pool(threads, name):  # noqa: ANN001, ANN202
        pools.append(threads)
        return real_pool(threads, name)

    monkeypatch.setattr(score, "_score_one", noted)
    monkeypatch.setattr(score.batch, "Workers", pool)
    monkeypatch.setattr(score, "available_cores", lambda: 3)
    assert main(args(c, *extra, *(["--procs", str(workers)] if workers else []))) == 0
    many = capsys.readouterr().out
    assert pools == [workers or 3] and len(ran) == 39  # every image, on the pool's threads
    assert all(name.startswith("panbench-score") for name in ran)
    assert json.loads(one)["n_images"] == 39 and json.loads(one)["per_class"]
    assert many == one  # the whole JSON, per class included, bit for bit


def test_default_workers_are_the_available_cores_at_most_one_per_image(monkeypatch) -> None:
    monkeypatch.setattr(score.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert score.available_cores() == 3
    assert [score.default_workers(n) for n in (0, 1, 2, 3, 1000)] == [1, 1, 2, 3, 3]


def test_one_worker_scores_in_this_thread(case, capsys, monkeypatch) -> None:
    monkeypatch.setattr(score, "available_cores", lambda: 8)
    monkeypatch.setattr(score.batch, "Workers", lambda *a: pytest.fail("--procs 1 started threads"))
    assert main(args(case, "--json", "--procs", "1")) == 0


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _edit_pred(case, fn) -> None:
    _edit_json(case["pred_json"], fn)


def _first_png(case) -> Path:
    data = json.loads(case["pred_json"].read_text())
    return case["pred_dir"] / data["annotations"][0]["file_name"]


def _write_ids(path: Path, ids: np.ndarray) -> None:
    from panbench.data.synth import write_png

    write_png(path, ids)


def _load_ids(path: Path) -> np.ndarray:
    from panbench.pq.kernels import rgb2id
    from panbench.pq.png import decode_png

    return rgb2id(decode_png(path, "test")).copy()


BAD = {
    "malformed_json": (lambda c: c["pred_json"].write_text("{not json"), "not valid JSON"),
    "missing_field": (lambda c: _edit_pred(c, lambda d: d["annotations"][0].pop("segments_info")),
                      "missing field 'segments_info'"),
    "missing_png": (lambda c: _first_png(c).unlink(), "not found"),
    "truncated_png": (lambda c: _first_png(c).write_bytes(_first_png(c).read_bytes()[:200]), "truncated or corrupt"),
    "escaping_name": (lambda c: _edit_pred(c, lambda d: d["annotations"][0].update(file_name="../gt.json")),
                      "points outside"),
    "png_id_not_in_json": (lambda c: _edit_pred(c, lambda d: d["annotations"][0]["segments_info"].pop()),
                           "absent from segments_info"),
    "json_id_not_in_png": (lambda c: _edit_pred(c, lambda d: d["annotations"][0]["segments_info"].append(
        {"id": 12345, "category_id": CATS[0]["id"]})), "absent from the PNG"),
    "unknown_category": (lambda c: _edit_pred(c, lambda d: d["annotations"][0]["segments_info"][0].update(
        category_id=999)), "unknown category_id 999; use the category ids of the ground-truth JSON"),
    "unknown_category_in_the_ground_truth": (lambda c: _edit_json(c["gt_json"], lambda d: d["annotations"][0][
        "segments_info"][0].update(category_id=999)), "unknown category_id 999; add the category to its 'categories'"),
    "annotations_not_a_list": (lambda c: _edit_pred(c, lambda d: d.update(annotations={"a": 1})),
                               "field 'annotations' is a dict, not a list"),
    "a_field_of_the_wrong_type": (lambda c: _edit_pred(c, lambda d: d["annotations"][0].update(segments_info=None)),
                                  "field 'segments_info' has the wrong type (NoneType, not list); write a list of "
                                  "segments"),
    "duplicate_image_ids": (lambda c: _edit_pred(c, lambda d: d["annotations"].append(d["annotations"][0])),
                            "duplicate image id"),
    "duplicate_segment_ids": (lambda c: _edit_pred(c, lambda d: d["annotations"][0]["segments_info"].append(
        d["annotations"][0]["segments_info"][0])), "duplicate segment id"),
    "wrong_size": (lambda c: _write_ids(_first_png(c), _load_ids(_first_png(c))[:-1]), "predict at the original"),
    "missing_prediction": (lambda c: _edit_pred(c, lambda d: d["annotations"].pop()), "no prediction for image"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_exit_2(case, capsys, name) -> None:
    breaker, expected = BAD[name]
    breaker(case)
    assert main(args(case)) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err and "Traceback" not in err
    assert err.startswith("panbench: error: ")


def test_bad_input_through_the_console_script(case) -> None:
    BAD["unknown_category"][0](case)
    cmd = [sys.executable, "-m", "panbench", *args(case)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "image 1" in r.stderr
    r = subprocess.run([sys.executable, "-m", "panbench", "--debug", *args(case)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1].startswith(
        "panbench: error: ")  # the traceback, then the same line and exit code as without --debug


def test_score_with_name_stores_a_record_for_the_table(case, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    assert main(args(case, "--name", "Mask DINO (detectron2)", "--dataset-name", "coco", "--results", str(res),
                     "--json")) == 0
    scored = json.loads(capsys.readouterr().out)
    assert main(["table", "--results", str(res), "--only-dataset", "coco", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "Mask DINO (detectron2)" in out and f"{scored['PQ']:.3f}"[:5] in out


@pytest.mark.parametrize("name", ["demo-maskformer", "mask2former"])
def test_score_name_of_a_registered_model_is_refused_in_one_line(case, tmp_path, capsys, name) -> None:
    """A registered model's name (or alias) as --name would file a run beside that model's own and the table would
    rank two rows of one name: refused before any image is read."""
    with pytest.raises(SystemExit) as e:
        main(args(case, "--name", name, "--results", str(tmp_path)))
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and f"argument --name: {name}: the name of a registered model" in err[-1], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("named", [False, True], ids=["plain", "with --name"])
def test_score_never_imports_torch(case, tmp_path, named) -> None:
    code = ("import sys\nfrom panbench.cli import main\nassert main(sys.argv[1:]) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mmdet', 'mmcv', 'mmengine')))")
    extra = ["--name", "elsewhere", "--dataset-name", "coco", "--results", str(tmp_path / "res")] if named else []
    r = subprocess.run([sys.executable, "-c", code, *args(case, *extra)], capture_output=True, text=True)
    assert r.returncode == 0 and "Things" in r.stdout, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    if named:  # the record names the stack that scored it: no model's
        (rec,) = (tmp_path / "res" / "runs").glob("*.json")
        assert set(json.loads(rec.read_text())["provenance"]["versions"]) == {"panbench", "python", "numpy"}


def test_a_score_without_a_record_loads_neither_the_record_schema_nor_logging(case) -> None:
    """The analyses and the terminal text annotate with the record type only: its dataclass (several
    milliseconds to build) is loaded where a record is written or read; the threads are panbench.pq.threads',
    not concurrent.futures' (which loads logging)."""
    code = ("import sys\nfrom panbench.cli import main\nassert main(sys.argv[1:]) == 0\n"
            "print([m in sys.modules for m in ('panbench.records.schema', 'concurrent.futures', 'logging')])")
    r = subprocess.run([sys.executable, "-c", code, *args(case)], capture_output=True, text=True)
    assert r.returncode == 0 and "Things" in r.stdout and "interval" in r.stdout, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[False, False, False]"


def test_an_image_id_written_as_a_string_is_named_as_such(case, capsys) -> None:
    def stringify(d):
        d["annotations"][0]["image_id"] = str(d["annotations"][0]["image_id"])

    _edit_pred(case, stringify)
    assert main(args(case)) == 2
    err = capsys.readouterr().err
    assert "image_id '1' is written as a str but the ground truth has 1; write the image ids as the ground-truth " \
           "JSON does" in err and len(err.strip().splitlines()) == 1


def test_a_prediction_for_an_image_the_ground_truth_lacks_is_named_in_a_note(case, capsys) -> None:
    def add(d):
        d["annotations"].append({**d["annotations"][0], "image_id": 99})

    _edit_pred(case, add)
    assert main(args(case, "--json")) == 0
    err = capsys.readouterr().err
    assert "1 prediction(s) for images the ground truth does not have (first: image 99) are not scored" in err


def _threads_after(load: str, **env: str) -> tuple[int, bool]:
    """The threads of a fresh process once ``load`` has loaded numpy, and whether it left OPENBLAS_NUM_THREADS set."""
    from panbench.cli.score import BLAS_THREADS

    code = (f"import os\n{load}\n"
            "print(len(os.listdir('/proc/self/task')), 'OPENBLAS_NUM_THREADS' in os.environ)")
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_THREADS}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**clean, **env})
    n, left = r.stdout.split()
    return int(n), left == "True"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or len(getattr(os, "sched_getaffinity", lambda _: ())(0)) < 2,
                    reason="counts threads in /proc, on at least two cores")
def test_score_loads_numpy_without_blas_worker_threads_and_leaves_the_environment_alone() -> None:
    if _threads_after("import numpy")[0] == 1:
        pytest.skip("this numpy's BLAS starts no worker threads when it loads")
    helper = "from panbench.cli.score import _numpy_without_blas_threads as load\nload()\nimport numpy"
    assert _threads_after(helper) == (1, False)
    assert _threads_after(helper, OPENBLAS_NUM_THREADS="2") == (2, True)  # the user's count is kept


HEAP_PROBE = """
import ctypes, sys
from panbench.cli.score import _reuse_freed_memory
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p

def heap():
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            return lo, hi
    return 0, 0

def kept(mib):  # a block of mib MiB: from the heap, and the heap still holds it once freed
    p = libc.malloc(mib << 20)
    lo, hi = heap()
    libc.free(ctypes.c_void_p(p))
    return lo <= p < hi and heap()[1] - heap()[0] >= mib << 20

before = kept(4)  # a mapping of its own (glibc then raises its threshold to 4 MiB)
_reuse_freed_memory()
print(before, kept(8), kept(24))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_score_has_glibc_keep_what_it_frees_for_reuse() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    r = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, check=True, env=env)
    assert r.stdout.split() == ["False", "True", "True"]
