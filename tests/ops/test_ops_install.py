"""panbench.ops.install: the stand-in for mmcv._ext lets mmcv.ops import on mmcv-lite, an op it lacks stops
with one line naming the op and the fix, PANBENCH_OPS picks a backend, and the backend reaches the record,
the resume-cache key and the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from panbench.errors import PanbenchError
from panbench.ops import active, compiled_mmcv, ext
from panbench.package import REPO_ROOT


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env})


STAND_IN = """
import sys
from panbench.ops import active, install
first = install()
assert install() == first == active()  # idempotent
import mmcv.ops
from panbench.errors import PanbenchError
print(first, mmcv.ops.get_compiling_cuda_version(), type(sys.modules["mmcv._ext"]).__name__)
try:
    import torch
    mmcv.ops.box_iou_rotated(torch.zeros(2, 5), torch.zeros(2, 5))
except PanbenchError as e:
    print("ERR", e)
"""


def test_mmcv_ops_import_with_the_stand_in_and_a_missing_op_says_how_to_get_it() -> None:
    r = _run(STAND_IN, PANBENCH_OPS="panbench")
    assert r.returncode == 0, r.stderr[-2000:]
    first, err = r.stdout.splitlines()
    assert first == "panbench not available module"  # mmcv's answer for a build without CUDA: nothing here is
    assert err.startswith("ERR mmcv op box_iou_rotated is not in panbench's ops")
    assert "PANBENCH_MMCV=compiled make setup, docs/setup.md" in err


@pytest.mark.skipif(compiled_mmcv(), reason="mmcv here has compiled ops; this checks mmcv-lite")
def test_mmcv_lite_gets_panbench_ops_by_default() -> None:
    r = _run(STAND_IN)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines()[0].startswith("panbench ")


@pytest.mark.skipif(not compiled_mmcv(), reason="mmcv here has no compiled ops")
def test_compiled_mmcv_is_used_when_it_imports() -> None:
    r = _run("from panbench.ops import install; import mmcv.ops; print(install(), mmcv.ops.nms.__module__)")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[0] == "mmcv"


def test_forcing_compiled_mmcv_without_it_is_one_line_with_the_fix() -> None:
    code = ("import sys; sys.modules['mmcv._ext'] = None  # as on mmcv-lite: the import fails\n"
            "from panbench.ops import install\n"
            "from panbench.errors import PanbenchError\n"
            "try:\n    install()\nexcept PanbenchError as e:\n    print(e)\n")
    r = _run(code, PANBENCH_OPS="mmcv")
    assert r.returncode == 0, r.stderr[-2000:]
    line = r.stdout.strip()
    assert len(line.splitlines()) == 1 and "PANBENCH_OPS=mmcv but mmcv's compiled ops do not import" in line
    assert "PANBENCH_MMCV=compiled make setup" in line and "unset PANBENCH_OPS" in line


def test_an_unknown_backend_is_refused() -> None:
    r = _run("from panbench.ops import install; install()", PANBENCH_OPS="cuda")
    assert r.returncode == 1 and "PANBENCH_OPS='cuda' is not a backend" in r.stderr


def test_the_cli_stops_at_a_missing_op_with_one_line(tmp_path: Path) -> None:
    """What `panbench doctor` prints when the ops it runs are broken: one line per check, no traceback."""
    code = ("import panbench.ops.ext as e\n"
            "e.roi_align_forward = e.unavailable('roi_align_forward')\n"
            "from panbench.cli.doctor import mmcv_ops_check\n"
            "print(mmcv_ops_check('cpu').line())\n")
    r = _run(code, PANBENCH_OPS="panbench")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("\n") == 1 and r.stdout.startswith("[FAIL] mmcv ops/cpu")
    assert "mmcv op roi_align_forward is not in panbench's ops" in r.stdout and "-> fix: run make setup" in r.stdout


def test_backward_functions_outside_panbench_s_ops_are_refused_in_one_line() -> None:
    with pytest.raises(PanbenchError, match="psamask_backward: its backward is not in panbench's ops") as e:
        ext.psamask_backward()
    assert "\n" not in str(e.value)


def test_private_names_are_not_ops() -> None:
    assert not hasattr(ext, "__path__") and not hasattr(ext, "_private")
    assert callable(ext.any_other_op)


def test_the_ops_backend_is_in_the_versions_and_the_cache_key(monkeypatch) -> None:
    from panbench.evaluation.options import EvalOptions
    from panbench.evaluation.record_fields import cache_key_parts
    from panbench.evaluation.storage import cache_key
    from panbench.models.families import FAMILIES
    from panbench.records.provenance import versions

    packages = FAMILIES["mmdet"].packages
    lm = types.SimpleNamespace(cfg_hash="c", weights=types.SimpleNamespace(sha256="w"), packages=packages,
                               inference=None)

    opts = EvalOptions()
    keys = {}
    for name, module in (("panbench", ext), ("mmcv", types.ModuleType("mmcv._ext"))):
        monkeypatch.setitem(sys.modules, "mmcv._ext", module)
        assert active() == name and versions(packages)["mmcv_ops"] == name
        keys[name] = cache_key(cache_key_parts(lm, "fp", opts, "cpu"))
    assert keys["panbench"] != keys["mmcv"]


def test_the_table_shows_the_ops_backend_only_where_runs_differ() -> None:
    from panbench.records import RunRecord
    from panbench.records.io import record_from_json
    from panbench.reporting.tables import comparison

    base = json.loads((REPO_ROOT / "tests" / "fixtures" / "fixture_record.json").read_text())

    def record(model: str, ops: str | None) -> RunRecord:
        r = json.loads(json.dumps(base))
        r["model"] = model
        r.setdefault("provenance", {}).setdefault("versions", {})["mmcv_ops"] = ops
        return record_from_json(r)

    same = comparison([record("a", "panbench"), record("b", "panbench")])
    assert "ops" not in same.columns
    differ = comparison([record("a", "panbench"), record("a", "mmcv")])
    assert list(differ["ops"]) == ["panbench", "mmcv"]
