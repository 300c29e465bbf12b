"""JSON documents read ahead (``panbench.pq.ahead``): ``score`` reads and scans its two JSON files on a thread while
it imports, ``read_json`` takes them instead of reading the files again, with the same document; a file that
changed since, or could not be read, is read again (and its error reported as ever); the scan lets other threads
run while it walks a document.  What a ``ReadAhead`` block read is gone once the block ends, and ``score`` reads its
ground truth once whatever it computes from it."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from panbench.errors import InputError
from panbench.pq import ahead, coco_format, native
from panbench.pq.coco_format import PackedSegments, read_json, segments_list


def document(n: int) -> dict:
    anns = [{"image_id": i, "file_name": f"{i}.png",
             "segments_info": [{"id": k + 1, "category_id": 1, "area": 10, "iscrowd": 0} for k in range(3)]}
            for i in range(n)]
    return {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(n)], "annotations": anns,
            "categories": [{"id": 1, "isthing": 1, "name": "a"}]}


def plain(data: dict) -> dict:
    for ann in data["annotations"]:
        ann["segments_info"] = segments_list(ann["segments_info"])
    return data


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """The files read_json opens itself."""
    seen: list[str] = []

    def counting_read(path):  # noqa: ANN001, ANN202
        seen.append(str(path))
        return ahead.read_held(path)

    monkeypatch.setattr(coco_format, "read_held", counting_read)
    return seen


def test_a_document_read_ahead_is_taken_once_and_is_the_document(tmp_path: Path, opened: list[str]) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(document(4)))
    with ahead.ReadAhead((str(path), True)):
        data = read_json(path, "ground-truth JSON", scan=True)
        assert opened == [] and type(data["annotations"][0]["segments_info"]) is PackedSegments
        assert plain(data) == document(4)  # each packed array read back from the file, kept open
        assert ahead.take(path, True) is None  # handed over once
        again = read_json(path, "ground-truth JSON", scan=True)
    assert opened == [str(path)] and plain(again) == document(4)


def test_what_a_read_ahead_block_did_not_take_is_gone_after_it(tmp_path: Path, opened: list[str]) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(document(2)))
    with ahead.ReadAhead((path, True)) as docs:
        docs.jobs[str(path)].thread.join()
    assert ahead.take(path, True) is None and docs.jobs == {}
    read_json(path, "ground-truth JSON", scan=True)
    assert opened == [str(path)]


def test_a_document_scanned_as_the_other_side_is_scanned_again_from_its_bytes(tmp_path: Path,
                                                                              opened: list[str]) -> None:
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(document(3)))
    with ahead.ReadAhead((path, True)):
        data = read_json(str(path), "prediction JSON", scan=False)
    assert opened == [] and plain(data) == document(3)
    with ahead.ReadAhead((path, True)):
        assert plain(read_json(path, "prediction JSON")) == document(3) and opened == []  # json.loads of its bytes


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path: Path, opened: list[str]) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(document(2)))
    with ahead.ReadAhead((path, True)) as docs:
        docs.jobs[str(path)].thread.join()
        path.write_text(json.dumps(document(5)))
        os.utime(path, ns=(1, 1))
        assert len(read_json(path, "ground-truth JSON", scan=True)["annotations"]) == 5
    assert opened == [str(path)]


def test_a_file_that_cannot_be_read_ahead_gets_read_jsons_own_error(tmp_path: Path) -> None:
    missing, bad = tmp_path / "missing.json", tmp_path / "bad.json"
    bad.write_text('{"annotations": [}')
    with ahead.ReadAhead((missing, True), (bad, True)) as docs:
        with pytest.raises(InputError, match="missing.json: ground-truth JSON not found"):
            read_json(missing, "ground-truth JSON", scan=True)
        with pytest.raises(InputError, match=r"bad.json: ground-truth JSON is not valid JSON \(Expecting value"):
            read_json(bad, "ground-truth JSON", scan=True)
        assert docs.jobs == {}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="a FIFO")
def test_a_fifo_given_as_a_json_is_refused_at_once_not_waited_for(tmp_path: Path) -> None:
    fifo = tmp_path / "gt.json"
    os.mkfifo(fifo)
    got: list[BaseException] = []
    with ahead.ReadAhead((fifo, True)):
        with pytest.raises(InputError) as refused:
            read_json(fifo, "ground-truth JSON", scan=True)
        got.append(refused.value)
    assert "gt.json: ground-truth JSON is not a regular file (a pipe or socket)" in str(got[0])
    job = ahead._Ahead(str(fifo), True)  # its thread opens the FIFO without waiting for a writer
    job.thread.join(timeout=20)
    assert not job.thread.is_alive() and job.done is None


def test_a_score_refused_before_it_reads_its_jsons_leaves_nothing_read_ahead(tmp_path: Path, capsys) -> None:
    from panbench.cli import main

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(document(2)))
    assert main(["score", "--gt-json", str(gt), "--gt-dir", str(tmp_path), "--pred-json", str(tmp_path),
                 "--pred-dir", str(tmp_path)]) == 2
    assert "--pred-json" in capsys.readouterr().err and ahead._OPEN.get() is None


@pytest.mark.parametrize("options", [["--no-analysis"], ["--boundary"]])
def test_score_reads_each_json_once_through_the_read_ahead(tmp_path: Path, opened: list[str], coco_sample,
                                                           capsys, options: list[str]) -> None:
    from panbench.cli import main

    root = coco_sample / "annotations"
    gt, pred = root / "panoptic_val2017.json", tmp_path / "pred.json"
    pred.write_bytes(gt.read_bytes())
    assert main(["score", "--gt-json", str(gt), "--gt-dir", str(root / "panoptic_val2017"), "--pred-json", str(pred),
                 "--pred-dir", str(root / "panoptic_val2017"), "--json", *options]) == 0
    assert json.loads(capsys.readouterr().out)["PQ"] == 100.0
    assert opened == [] and ahead._OPEN.get() is None  # both taken


def test_score_with_a_record_mask_ap_and_the_per_image_table_reads_its_ground_truth_once(
        tmp_path: Path, coco_sample, monkeypatch, capsys) -> None:
    """The warning, the record's dataset, categories and fingerprint, the mask AP and the per-image table's file
    names all come from the one document read (every open of the file counted: Python's and the read-ahead's; the
    segments_info arrays and the fingerprint's bytes are read back from the file it keeps open)."""
    import builtins
    import io

    from panbench.cli import main

    root = coco_sample / "annotations"
    gt, png = root / "panoptic_val2017.json", root / "panoptic_val2017"
    (pred := tmp_path / "pred.json").write_bytes(gt.read_bytes())
    seen: list[str] = []
    def counting(real):
        def opens(path, *args, **kwargs):
            if isinstance(path, str | os.PathLike) and Path(path).name == gt.name:
                seen.append(str(path))
            return real(path, *args, **kwargs)
        return opens

    for module in (builtins, io, os):
        monkeypatch.setattr(module, "open", counting(module.open))
    (tmp_path / "inst.json").write_text("[]")
    assert main(["score", "--gt-json", str(gt), "--gt-dir", str(png), "--pred-json", str(pred), "--pred-dir", str(png),
                 "--json", "--name", "Sys", "--results", str(tmp_path / "r"), "--instances",
                 str(tmp_path / "inst.json"), "--per-image", str(tmp_path / "per_image.csv")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["PQ"] == 100.0 and out["ap"]["AP"] == 0.0
    assert seen == [str(gt)]  # the read-ahead thread's


def longest_pause_while(work) -> float:
    """The longest time this thread went without running while ``work`` ran on another thread."""
    done = threading.Event()
    t = threading.Thread(target=lambda: (work(), done.set()))
    last, longest = time.perf_counter(), 0.0
    t.start()
    while not done.is_set():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    t.join()
    return longest


def test_the_scan_lets_other_threads_run_while_it_walks_a_document() -> None:
    scan = native.match().scan
    doc = document(1)
    doc["images"] = [{"id": i, "file_name": f"{i}.jpg", "height": 480, "width": 640} for i in range(300_000)]
    raw = json.dumps(doc).encode()  # a long walk, a short result: its bytes less one array
    t0 = time.perf_counter()
    scan(raw, True)
    alone = time.perf_counter() - t0
    # holding the GIL, a scan would stop this thread for its whole length; it holds it only to make its result, a
    # third of the walk here (0.36 of it measured under make test's load): half allows for that, the best of five
    # tries for a busy machine that does not run this thread at once
    pauses = [longest_pause_while(lambda: scan(raw, True)) for _ in range(5)]
    assert min(pauses) < alone / 2, (alone, pauses)
