"""Runs writing into one results folder at once each keep their record, its analysis file and its ``runs.csv``
row: a record's name is claimed atomically (``records.io.write_record``), never replacing a file."""

from __future__ import annotations

import csv
import errno
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import atomic_write, load_records, make_record, record_files, write_record

DATE = "2026-01-02T03:04:05+00:00"  # every racing run stamped in the same second
RES = {**{k: 50.0 for k in METRIC_KEYS}, "pixel_acc": 1.0, "mIoU": 2.0, "mDice": 3.0, "n_images": 2,
       "n_categories": {"All": 2, "Things": 1, "Stuff": 1}, "per_class": {}, "unlisted_gt": {"pixels": 0, "images": 0}}


class _Analysis:
    """Stands for an AnalysisSet: its file says which run saved it."""

    def __init__(self, worker: int) -> None:
        self.worker = worker

    def save(self, path: Path) -> None:
        atomic_write(Path(path), f"analysis of worker {self.worker}".encode())


def _record(worker: int):
    return make_record(RES, model="same-system", dataset="coco", device="cpu", date=DATE,
                       provenance={"worker": worker}, selection={"limit": None, "subset": None, "images": 2})


def _write_at_once(results: str, worker: int, barrier) -> None:
    barrier.wait()
    write_record(Path(results), _record(worker), analysis=_Analysis(worker))


def _check_every_run_kept(results: Path, n: int) -> None:
    """n records, each named in its own ``record`` field and in one ``runs.csv`` row, each with its own analysis
    file beside it; no temporary file left."""
    files = record_files(results, "same-system", "coco")
    assert len(files) == n, sorted(p.name for p in (results / "runs").iterdir())
    recs = [json.loads(p.read_text()) for p in files]
    assert [r["record"] for r in recs] == [str(p.relative_to(results)) for p in files]
    with open(results / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["record"] for r in rows) == sorted(r["record"] for r in recs)  # one row each, distinct
    for p, r in zip(files, recs, strict=True):
        assert r["analysis_file"] == str(p.relative_to(results)).removesuffix(".json") + ".analysis.npz"
        if "worker" in r["provenance"]:  # the analysis file of the same run
            assert (results / r["analysis_file"]).read_text() == f"analysis of worker {r['provenance']['worker']}"
    assert sorted(p.name for p in (results / "runs").iterdir()) == sorted(
        [p.name for p in files] + [Path(r["analysis_file"]).name for r in recs])
    assert len(load_records(results)) == n


def _at_once(target, results: Path, n: int) -> None:
    """``target(results, k, barrier)`` in ``n`` forked processes released together by one barrier; each exits 0."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=target, args=(str(results), k, barrier)) for k in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * n


def test_runs_writing_records_in_the_same_second_each_keep_theirs(tmp_path) -> None:
    n = 10
    _at_once(_write_at_once, tmp_path, n)
    _check_every_run_kept(tmp_path, n)
    workers = {json.loads(p.read_text())["provenance"]["worker"] for p in record_files(tmp_path, "same-system", "coco")}
    assert workers == set(range(n))


def test_twelve_score_name_at_once_keep_every_record_and_row(coco_sample, tmp_path) -> None:
    ann = coco_sample / "annotations"
    gt, gt_dir = ann / "panoptic_val2017.json", ann / "panoptic_val2017"
    results = tmp_path / "res"
    cmd = [sys.executable, "-m", "panbench", "score", "--gt-json", str(gt), "--gt-dir", str(gt_dir), "--pred-json",
           str(gt), "--pred-dir", str(gt_dir), "--name", "same-system", "--results", str(results), "--procs", "1"]
    t0 = time.time()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(12)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    elapsed = time.time() - t0
    assert [p.returncode for p in procs] == [0] * 12, errors
    _check_every_run_kept(results, 12)
    if elapsed < 10:  # 12 dates over at most 11 seconds: some runs were stamped in the same second
        assert any("~" in p.name for p in record_files(results, "same-system", "coco"))


def test_a_taken_name_is_never_replaced(tmp_path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    stem = "20260102T030405Z_same-system_coco"
    (runs / f"{stem}.json").write_text("someone else's")
    (runs / f"{stem}~1.analysis.npz").write_text("someone else's")  # an analysis file without its record
    rec = write_record(tmp_path, _record(0), analysis=_Analysis(0))
    assert rec.record == f"runs/{stem}~2.json" and rec.analysis_file == f"runs/{stem}~2.analysis.npz"
    assert (runs / f"{stem}.json").read_text() == (runs / f"{stem}~1.analysis.npz").read_text() == "someone else's"
    assert not (runs / f"{stem}~1.json").exists()
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        [f"{stem}.json", f"{stem}~1.analysis.npz", f"{stem}~2.json", f"{stem}~2.analysis.npz"])


def test_without_hard_links_the_names_are_claimed_under_the_lock(tmp_path, monkeypatch) -> None:
    def no_links(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src))

    monkeypatch.setattr(os, "link", no_links)
    for k in range(3):
        write_record(tmp_path, _record(k), analysis=_Analysis(k))
    _check_every_run_kept(tmp_path, 3)


def test_record_files_are_in_the_order_of_their_twins(tmp_path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    names = ["20260102T030405Z_m_d.json"] + [f"20260102T030405Z_m_d~{k}.json" for k in (1, 2, 10)]
    names += ["20260102T030406Z_m_d.json", "20260102T030405Z_m_d~1.analysis.npz", ".20260102T030405Z_m_d.json.x.tmp1"]
    for n in names:
        (runs / n).write_text("{}")
    assert [p.name for p in record_files(tmp_path, "m", "d")] == names[:5]


def test_a_record_that_cannot_be_written_leaves_no_file(tmp_path, monkeypatch) -> None:
    import panbench.records.io as records

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(records, "atomic_write_text", full)
    with pytest.raises(OSError, match="No space left"):
        write_record(tmp_path, _record(0), analysis=_Analysis(0))
    assert list((tmp_path / "runs").iterdir()) == []  # neither the analysis file linked nor a temporary file


def _summary_at_once(results: str, worker: int, barrier) -> None:
    from panbench.robustness.summary import write_summary

    barrier.wait()
    write_summary(Path(results), {"date": DATE, "model": "same-system", "dataset": "coco", "worker": worker})


def test_robustness_summaries_and_speed_records_of_one_second_each_keep_their_file(tmp_path) -> None:
    """write_new, which writes the robustness summaries and the speed records: 8 writers behind a barrier with one
    date each keep their file; the speed record names the file it was written to."""
    n = 8
    _at_once(_summary_at_once, tmp_path, n)
    files = sorted((tmp_path / "robustness").iterdir())
    assert len(files) == n and {json.loads(p.read_text())["worker"] for p in files} == set(range(n))

    from panbench.records.io import write_new

    first = tmp_path / "speed" / "a.json"
    written = [write_new(first, lambda path: path.name.encode()) for _ in range(3)]
    assert [p.name for p in written] == ["a.json", "a~1.json", "a~2.json"]
    assert [p.read_text() for p in written] == ["a.json", "a~1.json", "a~2.json"]
    assert sorted(p.name for p in first.parent.iterdir()) == ["a.json", "a~1.json", "a~2.json"]  # no temporary


@pytest.mark.parametrize("at", [".npz", ".json"], ids=["analysis-claimed", "record-claimed"])
@pytest.mark.parametrize("links", [True, False], ids=["hard-link", "no-hard-links"])
def test_a_ctrl_c_as_a_record_is_claimed_finds_it_counted_with_its_analysis(tmp_path, monkeypatch, links,
                                                                           at) -> None:
    """SIGINT sent the instant the analysis file's or the record's name is claimed (a hard link, or ``os.replace``
    under the lock), with another thread alive that the kernel may hand the signal to: the KeyboardInterrupt comes
    once both are in place and the record counted (``records_written``, which the Ctrl-C line reads), never between:
    no record without its analysis file, no analysis file without its record."""
    import signal
    import threading

    from panbench.records import io as records_io

    real_link, real_replace = records_io._link, records_io._replace

    def interrupted(claim):
        def claimed(src, dst):
            done = claim(src, dst)
            if Path(dst).suffix == at:
                os.kill(os.getpid(), signal.SIGINT)  # handled at the next instruction unless deferred
            return done
        return claimed

    if links:
        monkeypatch.setattr(records_io, "_link", interrupted(real_link))
    else:
        monkeypatch.setattr(records_io, "_link", lambda src, dst: None)  # no hard links: claimed under the lock
        monkeypatch.setattr(records_io, "_replace", interrupted(real_replace))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    before, handler = records_io.records_written(), signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_record(tmp_path, _record(0), analysis=_Analysis(0))
    finally:
        signal.signal(signal.SIGINT, handler)
        stop.set()
    assert records_io.records_written() == before + 1
    assert len(list((tmp_path / "runs").iterdir())) == 2  # the record, its analysis file, no temporary file
    [record] = (tmp_path / "runs").glob("*.json")
    analysis = tmp_path / json.loads(record.read_text())["analysis_file"]
    assert analysis.read_text() == "analysis of worker 0"
