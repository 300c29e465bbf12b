"""A speed measured while other work kept the cores busy is marked like one measured beside another run; the
other work is counted from the machine's busy time less this process tree's."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from panbench.evaluation.context import _own_seconds, cpu_clock
from panbench.records.rows import LOAD_SLACK, loaded, speed_shared
from panbench.records.schema import RunRecord


@pytest.mark.parametrize("ctx, marked", [
    ({"cores": 2, "cores_used": 2, "other_cores": 0.3}, False),  # idle but for small jobs
    ({"cores": 2, "cores_used": 2, "other_cores": 1.2}, True),  # another job on a core panbench used
    ({"cores": 8, "cores_used": 1, "other_cores": 4.0}, False),  # a GPU run: the other work had free cores
    ({"cores": 8, "cores_used": 1, "other_cores": 7.6}, True),
    ({"cores": 2, "cores_used": 2, "other_cores": None}, False),  # off Linux: not judged
    ({"load_start": 9.0}, False),  # a record from before the counts: not judged
])
def test_other_work_beyond_the_free_cores_marks_the_speed(ctx, marked) -> None:
    assert loaded(ctx) is marked
    assert speed_shared(RunRecord.from_json({"model": "m", "dataset": "d", "metrics": {}, "speed_context": ctx})) \
        is marked


def test_the_slack_is_what_the_rule_allows() -> None:
    assert not loaded({"cores": 2, "cores_used": 2, "other_cores": LOAD_SLACK})
    assert loaded({"cores": 2, "cores_used": 2, "other_cores": LOAD_SLACK + 0.01})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_childs_cpu_counts_as_this_runs_not_as_other_work() -> None:
    spin = ("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
            "print('spun', flush=True)\ntime.sleep(30)")
    before = _own_seconds()
    child = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "spun"  # alive, not reaped
        time.sleep(0.1)
        assert _own_seconds() - before >= 0.5
    finally:
        child.kill()
        child.wait()
    a = cpu_clock()
    assert a.busy is not None and a.wall > 0


def test_a_checkpoint_is_the_zoos_only_when_its_digest_starts_with_the_registrys_prefix() -> None:
    from panbench.evaluation.record_fields import own_weights
    from panbench.models.registry import resolve

    spec = resolve("mask2former")[0]
    assert not own_weights(spec, None, None)  # the registry's own download
    assert not own_weights(spec, "m.pth", spec.sha256_prefix + "0" * 56)  # a copy of the zoo's file
    assert own_weights(spec, "my.pth", "f" * 64)
