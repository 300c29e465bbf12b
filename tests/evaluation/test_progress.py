"""The eval progress bar: it counts every image of the run, also those scored by
forked CPU processes, and names the model and its post-processing."""

from __future__ import annotations

import multiprocessing as mp
import sys

import pytest

from panbench.cli import main
from panbench.evaluation.inference import Progress

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
