"""The ``slurm`` fixture: the one-node Slurm cluster of ``scripts/slurm_local.sh``, started once per test session.
The tests that need it import it (a conftest here would shadow the ``conftest`` other folders import); they
skip with the reason where it cannot be started, and fail instead on CI (``CI=true``), which must start it."""

from __future__ import annotations

import os
import subprocess

import pytest

from panbench.package import REPO_ROOT


@pytest.fixture(scope="session")
def slurm() -> None:
    try:
        r = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "slurm_local.sh"), "start"], capture_output=True,
                           text=True, timeout=600)
    except subprocess.TimeoutExpired:
        r = subprocess.CompletedProcess([], 1, "", "scripts/slurm_local.sh start took over 10 min")
    if r.returncode != 0:
        reason = f"no Slurm cluster: {(r.stderr.strip().splitlines() or ['scripts/slurm_local.sh start failed'])[-1]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
