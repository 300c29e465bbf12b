"""Resumed runs report only measured speeds (record, runs.csv, table, plot inputs); the cache key covers
everything that changes a per-image result."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from panbench.cli import main
from panbench.evaluation import record_fields
from panbench.evaluation.loading import Weights
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.storage import cache_key
from panbench.models.families import FAMILIES
from panbench.models.postprocess import PostProcess
from panbench.records import provenance
from panbench.records.io import load_record, load_records
from panbench.reporting.plots import speed_points
from panbench.reporting.text import format_comparison, format_record


def _run(demo_root: Path, results: Path, limit: int, capsys) -> tuple[dict, dict, str]:
    rc = main(["eval", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(results), "--limit", str(limit), "--workers", "0", "--cpu-procs", "1",
               "--warmup", "1", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out if capsys is not None else ""
    rows = list(csv.DictReader(open(results / "runs.csv")))
    rec = load_record(results / rows[-1]["record"])
    return rec, rows[-1], out


@pytest.fixture(scope="module")
def first_11(demo_root, tmp_path_factory) -> tuple[Path, dict, dict]:
    """A fresh run of 11 images (1 warm-up, 10 timed: MIN_TIMED_IMAGES): its results folder, record and
    runs.csv row. Tests take a copy of the folder."""
    results = tmp_path_factory.mktemp("first11") / "results"
    rec, row, _ = _run(demo_root, results, 11, None)
    return results, rec, row


def _copy(first_11: tuple[Path, dict, dict], tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(first_11[0], tmp_path / "results"))


def _table(results: Path, capsys) -> str:
    assert main(["table", "--results", str(results), "--format", "md"]) == 0
    return capsys.readouterr().out


def test_a_resumed_run_reports_the_speed_stored_with_the_cache(demo_root, first_11, tmp_path, capsys) -> None:
    results = _copy(first_11, tmp_path)
    _, first, row1 = first_11
    t1 = first["timings"]
    assert t1["timed_images"] == 10 and t1["images_per_s"] > 0 and t1["resumed_images"] == 0
    assert float(row1["images_per_s"]) == pytest.approx(t1["images_per_s"], rel=1e-3)

    second, row2, out = _run(demo_root, results, 11, capsys)  # every image from the cache
    t2 = second["timings"]
    assert t2["resumed_images"] == 11 and t2["timed_images"] == 0
    assert t2["images_per_s"] == pytest.approx(t1["images_per_s"]) and t2["speed_images"] == 10
    assert t2["speed_from_cache"]["device"] == first["device"] == second["device"]
    assert float(row2["images_per_s"]) > 0 and "with the speed stored with the cached images" in out
    assert "per image" not in out  # this run timed nothing: no per-image times of 0 ms
    assert second["metrics"] == first["metrics"]
    points, missing = speed_points(load_records(results))
    assert [v for _, v in points] == pytest.approx([t1["images_per_s"]] * 2) and missing == []


def test_a_resumed_run_keeps_the_load_mark_of_its_overlapped_cached_speed(demo_root, tmp_path, capsys) -> None:
    """The first run is measured while another panbench run is on the machine (a marker of a live process, the
    test's parent); the rerun, served from the cache alone, reports the stored speed: still marked ``~``."""
    import os
    import socket
    import time

    from panbench.evaluation.context import running_dir

    results = tmp_path / "results"
    other = running_dir() / f"{socket.gethostname()}-{os.getppid()}.json"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "job": "another-job",
                                 "start": time.time() - 5, "end": None, "command": "panbench eval --model x"}))
    try:
        first, _, _ = _run(demo_root, results, 11, capsys)
    finally:
        other.unlink()
    assert first["speed_context"]["overlapped"] and first["timings"]["images_per_s"] > 0
    second, _, out = _run(demo_root, results, 11, capsys)
    assert second["timings"]["resumed_images"] == 11 and second["timings"]["timed_images"] == 0
    assert second["speed_context"]["overlapped"] and second["speed_context"]["overlapped_runs"] == []
    table = _table(results, capsys)
    table = table[table.index("\n| model") + 1:]  # the comparison, after the verdict
    cols = [c.strip() for c in table.splitlines()[0].split("|")]
    speeds = [[c.strip() for c in x.split("|")][cols.index("images/s")] for x in table.splitlines()
              if "demo-panoptic-fpn" in x]
    assert speeds and all(v.endswith("~") for v in speeds), table
    from panbench.cli.eval import shared_note

    note = shared_note(second)
    assert note is not None and "cached images" in note and "rank" not in note


def test_a_cache_of_an_older_format_is_refused_in_one_line(demo_root, tmp_path, capsys) -> None:
    """A cache that an older panbench wrote (the same run's key.json under another key: its CACHE_FORMAT
    differs) is not read; the run says so in one line and scores every image again, to the same numbers."""
    results = tmp_path / "results"
    first, _, _ = _run(demo_root, results, 3, capsys)
    (run_dir,) = (results / "cache").iterdir()
    run_dir.rename(run_dir.with_name(run_dir.name.rsplit("-", 1)[0] + "-" + "0" * 16))
    rc = main(["eval", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(results), "--limit", "3", "--workers", "0", "--cpu-procs", "1", "--no-progress"])
    err = capsys.readouterr().err
    second = load_record(results / list(csv.DictReader(open(results / "runs.csv")))[-1]["record"])
    assert rc == 0
    notes = [line for line in err.splitlines() if "cached by an older panbench" in line]
    assert len(notes) == 1 and "0" * 16 in notes[0], err
    assert second["timings"]["resumed_images"] == 0 and second["metrics"] == first["metrics"]


def test_no_stored_speed_means_no_speed_anywhere(demo_root, first_11, tmp_path, capsys) -> None:
    results = _copy(first_11, tmp_path)
    for f in (results / "cache").rglob("timing-*.json"):  # a cache written before speeds were stored
        f.unlink()
    rec, row, out = _run(demo_root, results, 11, capsys)
    assert rec["timings"]["images_per_s"] is None and rec["timings"]["resumed_images"] == 11
    assert row["images_per_s"] == "" and "speed not measured" in out
    row_line = next(x for x in format_comparison([rec]).splitlines() if x.startswith("demo-panoptic-fpn"))
    assert row_line.endswith(f"{'-':>7}")
    table = _table(results, capsys)
    table = table[table.index("\n| model") + 1:]  # the comparison, after the verdict
    line = next(x for x in table.splitlines() if "demo-panoptic-fpn" in x)
    cols = [c.strip() for c in table.splitlines()[0].split("|")]
    assert [c.strip() for c in line.split("|")][cols.index("images/s")] == "-"
    points, missing = speed_points([rec])
    assert points == [] and missing == ["demo-panoptic-fpn"]


def test_fewer_timed_images_than_a_speed_needs_record_no_speed_and_say_why(demo_root, tmp_path, capsys) -> None:
    rec, row, out = _run(demo_root, tmp_path / "results", 3, capsys)  # 2 timed, past the warm-up image
    assert rec["timings"]["timed_images"] == 2 and rec["timings"]["images_per_s"] is None
    assert row["images_per_s"] == "" and "2 timed images: a speed needs at least 10" in format_record(rec)


def test_warm_up_only_run_records_no_speed(demo_root, tmp_path, capsys) -> None:
    rec, row, out = _run(demo_root, tmp_path / "results", 1, capsys)  # the one image is the warm-up batch
    assert rec["timings"]["timed_images"] == 0 and rec["timings"]["images_per_s"] is None
    assert row["images_per_s"] == "" and "speed not measured" in format_record(rec)


def test_old_records_with_zero_speed_are_shown_as_unmeasured(tmp_path) -> None:
    from panbench.records.io import load_record
    from panbench.records.rows import csv_row, measured_speed

    raw = {"model": "m", "dataset": "demo", "metrics": {k: 1.0 for k in record_fields.METRIC_KEYS}, "n_images": 3,
           "timings": {"images_per_s": 0.0}, "device": "cpu", "date": "2025", "record": "r.json"}
    (tmp_path / "r.json").write_text(json.dumps(raw))
    rec = load_record(tmp_path / "r.json")
    assert measured_speed(rec) is None and csv_row(rec)["images_per_s"] == ""


# ---- the cache key ----

BASE = dict(cfg_hash="c" * 16, checkpoint_sha256="d" * 64, fingerprint="f" * 16)


def _parts(opts: EvalOptions, device: str = "cpu", cfg_hash: str = "", checkpoint_sha256: str = "",
           fingerprint: str = "", packages: tuple[str, ...] = FAMILIES["mmdet"].packages) -> dict:
    """The cache key's parts for a model with this config hash and these weights running on ``packages`` (no
    model built)."""
    lm = SimpleNamespace(cfg_hash=cfg_hash, weights=Weights(None, checkpoint_sha256, None),  # what the key reads
                         packages=packages, inference=None)
    return record_fields.cache_key_parts(lm, fingerprint, opts, device)


def _key(opts: EvalOptions | None = None, device: str = "cpu",
         packages: tuple[str, ...] = FAMILIES["mmdet"].packages) -> str:
    return cache_key(_parts(opts or EvalOptions(), device, **BASE, packages=packages))


# every family's packages, and a transformers model with a timm backbone (DETR's hub checkpoints)
RUNS_ON = {**{name: f.packages for name, f in FAMILIES.items()},
           "transformers+timm": (*FAMILIES["transformers"].packages, "timm")}


@pytest.mark.parametrize("runs_on", RUNS_ON)
def test_a_new_version_of_any_package_a_model_runs_on_changes_the_cache_key(runs_on, monkeypatch) -> None:
    packages = RUNS_ON[runs_on]
    base = _key(packages=packages)
    real = provenance.package_version
    for pkg in ("panbench", *packages):
        monkeypatch.setattr(provenance, "package_version", lambda m, pkg=pkg: "0.0.0-other" if m == pkg else real(m))
        if pkg == "panbench":
            monkeypatch.setattr("panbench.package.__version__", "0.0.0-other")
        assert _key(packages=packages) != base, pkg
        monkeypatch.undo()
    assert _key(packages=packages) == base


def test_cache_key_changes_with_everything_that_changes_a_result(monkeypatch) -> None:
    base = _key()
    assert _key() == base
    changed = {
        "device type": _key(device="cuda"),
        "amp": _key(replace(EvalOptions(), amp="bf16")),
        "batch size": _key(replace(EvalOptions(), batch_size=2)),
        "postprocess": _key(replace(EvalOptions(), postprocess=PostProcess("argmax"))),
        "boundary": _key(replace(EvalOptions(), boundary=True)),  # the cache then holds boundary-PQ sums too
    }
    for k, v in BASE.items():
        changed[k] = cache_key(_parts(EvalOptions(), **{**BASE, k: v + "x"}))
    for pkg in ("panbench", "mmdet", "mmcv", "mmengine", "torch"):
        real = record_fields.versions
        monkeypatch.setattr(record_fields, "versions", lambda p, pkg=pkg, real=real: {**real(p), pkg: "0.0.0-other"})
        changed[f"{pkg} version"] = _key()
        monkeypatch.setattr(record_fields, "versions", real)
    for what, key in changed.items():
        assert key != base, what
    assert len(set(changed.values())) == len(changed)


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_process_layout_does_not_split_the_cache(batch_size) -> None:
    """An image gets the same input whichever process runs it (batches hold images of one padded shape): a
    resume with another --cpu-procs or another GPU reuses the cache, at every batch size."""
    opts = replace(EvalOptions(), batch_size=batch_size)
    assert _key(replace(opts, cpu_procs=1)) == _key(replace(opts, cpu_procs=2))
    assert _key(opts, device="cuda:0") == _key(opts, device="cuda:1")
