"""JSON documents read ahead (``panbench.pq.ahead``): ``score`` reads and scans its two JSON files on a thread while
it imports, ``read_json`` takes them instead of reading the files again, with the same document; a file that
changed since, or could not be read, is read again (and its error reported as ever); the scan lets other threads
run while it walks a document."""

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

pytestmark = pytest.mark.skipif(native.match() is None or not hasattr(native.match(), "scan"),
                                reason="panbench.pq._match is not built")


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


@pytest.fixture(autouse=True)
def nothing_read_ahead():
    ahead.forget_all()
    yield
    ahead.forget_all()


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """The files read_json opens itself."""
    seen: list[str] = []

    def counting_open(path, *args, **kwargs):
        seen.append(str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(coco_format, "open", counting_open, raising=False)
    return seen


def test_a_document_read_ahead_is_taken_once_and_is_the_document(tmp_path: Path, opened: list[str]) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(document(4)))
    ahead.start(str(path), True)
    data = read_json(path, "ground-truth JSON", scan=True)
    assert opened == [] and type(data["annotations"][0]["segments_info"]) is PackedSegments
    assert plain(data) == document(4)
    assert ahead.take(path, True) is None  # handed over once
    again = read_json(path, "ground-truth JSON", scan=True)
    assert opened == [str(path)] and plain(again) == document(4)


def test_a_document_scanned_as_the_other_side_is_scanned_again_from_its_bytes(tmp_path: Path,
                                                                              opened: list[str]) -> None:
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(document(3)))
    ahead.start(path, True)
    data = read_json(str(path), "prediction JSON", scan=False)
    assert opened == [] and plain(data) == document(3)
    ahead.start(path, True)
    assert plain(read_json(path, "prediction JSON")) == document(3) and opened == []  # json.loads of its bytes


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path: Path, opened: list[str]) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(document(2)))
    ahead.start(path, True)
    ahead._AHEAD[str(path)].thread.join()
    path.write_text(json.dumps(document(5)))
    os.utime(path, ns=(1, 1))
    assert len(read_json(path, "ground-truth JSON", scan=True)["annotations"]) == 5
    assert opened == [str(path)]


def test_a_file_that_cannot_be_read_ahead_gets_read_jsons_own_error(tmp_path: Path) -> None:
    missing, bad = tmp_path / "missing.json", tmp_path / "bad.json"
    bad.write_text('{"annotations": [}')
    for p in (missing, bad):
        ahead.start(p, True)
    with pytest.raises(InputError, match="missing.json: ground-truth JSON not found"):
        read_json(missing, "ground-truth JSON", scan=True)
    with pytest.raises(InputError, match=r"bad.json: ground-truth JSON is not valid JSON \(Expecting value"):
        read_json(bad, "ground-truth JSON", scan=True)
    assert str(missing) not in ahead._AHEAD and str(bad) not in ahead._AHEAD


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="a FIFO")
def test_a_fifo_given_as_a_json_is_refused_at_once_not_waited_for(tmp_path: Path) -> None:
    fifo = tmp_path / "gt.json"
    os.mkfifo(fifo)
    ahead.start(fifo, True)
    got: list[BaseException] = []
    t = threading.Thread(target=lambda: got.append(pytest.raises(InputError, read_json, fifo, "ground-truth JSON",
                                                                 scan=True).value))
    t.start()
    t.join(timeout=20)
    assert not t.is_alive() and "gt.json: ground-truth JSON is not a regular file (a pipe or socket)" in str(got[0])
    ahead._AHEAD.clear()
    job = ahead._Ahead(str(fifo), True)  # its thread opens the FIFO without waiting for a writer
    job.thread.join(timeout=20)
    assert not job.thread.is_alive() and job.done is None


def test_a_score_refused_before_it_reads_its_jsons_leaves_nothing_read_ahead(tmp_path: Path, capsys) -> None:
    from panbench.cli import main

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(document(2)))
    assert main(["score", "--gt-json", str(gt), "--gt-dir", str(tmp_path), "--pred-json", str(tmp_path),
                 "--pred-dir", str(tmp_path)]) == 2
    assert "--pred-json" in capsys.readouterr().err and ahead._AHEAD == {}


def test_score_reads_each_json_once_through_the_read_ahead(tmp_path: Path, opened: list[str], coco_sample,
                                                           capsys) -> None:
    from panbench.cli import main

    root = coco_sample / "annotations"
    gt, pred = root / "panoptic_val2017.json", tmp_path / "pred.json"
    pred.write_bytes(gt.read_bytes())
    assert main(["score", "--gt-json", str(gt), "--gt-dir", str(root / "panoptic_val2017"), "--pred-json", str(pred),
                 "--pred-dir", str(root / "panoptic_val2017"), "--json", "--no-analysis"]) == 0
    assert json.loads(capsys.readouterr().out)["PQ"] == 100.0
    assert opened == [] and ahead._AHEAD == {}  # both taken


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
    # holding the GIL, a scan would stop this thread for its whole length; the best of three tries allows for a
    # busy machine that does not run this thread at once
    pauses = [longest_pause_while(lambda: scan(raw, True)) for _ in range(3)]
    assert min(pauses) < alone / 3, (alone, pauses)
