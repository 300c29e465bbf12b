"""No wait on another panbench process without a limit (panbench/locks.py): a lock held elsewhere (here by a second
open file of this process, which ``flock`` treats as another holder) is waited for, said once, and past its limit
refused in one line naming the lock file; once let go, the waiting command goes on."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

import pytest

from panbench import locks
from panbench.errors import PanbenchError
from panbench.records import io as records_io
from panbench.records.rows import CSV_FIELDS


def _held(path: Path) -> object:
    f = open(path, "a")  # noqa: SIM115 - held until the test lets it go
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def test_a_lock_held_past_its_limit_is_refused_in_one_line_naming_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(records_io, "RECORDS_LOCK_S", 0.3, raising=False)  # before: none
    lock = tmp_path / "runs.csv.lock"
    held = _held(lock)
    release = threading.Timer(2.0, held.close)  # type: ignore[attr-defined]
    release.start()  # a blocking flock would wait for this, then write the row
    try:
        with pytest.raises(PanbenchError) as e:
            records_io.append_csv(tmp_path / "runs.csv", {k: "" for k in CSV_FIELDS})
    finally:
        release.cancel()
        held.close()  # type: ignore[attr-defined]
    msg = str(e.value)
    assert msg.startswith(f"{lock}: held by another panbench process (adding a row to runs.csv) for over 0.3 s")
    assert "\n" not in msg
    assert not (tmp_path / "runs.csv").exists()


def test_a_lock_let_go_within_its_limit_is_waited_for_and_said_once(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(locks, "SAY_AFTER_S", 0.1)
    lock = tmp_path / "x.lock"
    held = _held(lock)
    threading.Timer(0.5, held.close).start()  # type: ignore[attr-defined]
    with locks.exclusive(lock, 10.0, "a test"):
        pass
    err = capsys.readouterr().err
    assert err.count("panbench: waiting for another panbench process (a test; lock") == 1
