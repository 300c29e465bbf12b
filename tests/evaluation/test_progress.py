"""The eval progress bar: it counts every image of the run, also those scored by
forked CPU processes, and names the model and its post-processing."""

from __future__ import annotations

import multiprocessing as mp
import sys

import pytest

from panbench.cli import main
from panbench.evaluation.progress import Progress

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked CPU processes: Linux only")


def _add(progress: Progress, n: int) -> None:
    progress.use_slot(1)
    progress.add(n)


@linux_only
def test_forked_processes_add_to_the_parents_count() -> None:
    progress = Progress(5, "eval test", enabled=False)
    progress.fork_slots(2)
    child = mp.get_context("fork").Process(target=_add, args=(progress, 3))
    child.start()
    child.join()
    progress.add(2)
    assert child.exitcode == 0 and progress.count == 5


@linux_only
def test_bar_counts_the_images_of_every_process_and_names_the_model(demo_root, tmp_path, capfd) -> None:
    rc = main(["eval", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
               "--results", str(tmp_path), "--limit", "4", "--workers", "0", "--cpu-procs", "2"])
    assert rc == 0
    err = capfd.readouterr().err
    assert "eval demo-panoptic-fpn [default] on demo" in err  # the model and its post-processing
    assert "4/4" in err and "2/2" not in err  # all images of the run, not the parent's share


def test_a_log_gets_plain_lines_each_tenth_and_the_last_without_carriage_returns(capsys, monkeypatch) -> None:
    """stderr not a terminal (capsys: not a tty): lines at 10%, 20%, ... and the end; never a ``\\r``."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    progress = Progress(50, "eval m [default] on coco")
    for _ in range(50):
        progress.add(1)
    progress.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [ln.split(": ")[1].split(" ")[0] for ln in lines] == [f"{k}/50" for k in range(5, 55, 5)]
    assert lines[-1].startswith("eval m [default] on coco: 50/50 images (100%, ")


def test_a_terminal_gets_the_redrawn_bar(capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    progress = Progress(3, "eval m [default] on coco")
    progress.add(3)
    progress.close()
    assert "\r" in capsys.readouterr().err  # tqdm's redraws
