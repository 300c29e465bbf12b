"""scripts/check_same_numbers.py: two runs' predictions and records compared; a changed PNG byte, a changed
metric or a changed analysis array is a difference, the run's own fields (date, timings) are not."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

from panbench.package import REPO_ROOT

_spec = importlib.util.spec_from_file_location("check_same_numbers", REPO_ROOT / "scripts" / "check_same_numbers.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def _run(root: Path, date: str) -> tuple[Path, Path]:
    pred, res = root / "pred", root / "res"
    (pred / "m_results").mkdir(parents=True)
    (pred / "m_results" / "1.png").write_bytes(b"\x89PNG one")
    (pred / "m_results.json").write_text(json.dumps({"info": {"date": date}, "annotations": [{"image_id": 1}]}))
    (res / "runs").mkdir(parents=True)
    rec = {"model": "m", "date": date, "metrics": {"PQ": 50.0}, "timings": {"wall_s": len(date)},
           "provenance": {"git_commit": date, "config": "c"},
           "flops": {"gflops": 1.0, "seconds": len(date), "from_cache": date if len(date) > 10 else None}}
    (res / "runs" / f"{date}_m.json").write_text(json.dumps(rec))
    np.savez(res / "runs" / f"{date}_m.analysis.npz", tp=np.array([1, 2]))
    return pred, res


def test_two_runs_of_the_same_numbers_compare_equal_and_each_change_is_found(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", "2026-01-01")
    b = _run(tmp_path / "b", "2026-01-02T00")
    assert check.main([str(a[0]), str(a[1]), str(b[0]), str(b[1])]) == 0
    (b[0] / "m_results" / "1.png").write_bytes(b"\x89PNG two")
    assert check.compare_predictions(a[0], b[0])[0] == [f"{a[0]}/m_results/1.png: bytes differ from "
                                                        f"{b[0]}/m_results/1.png"]
    shutil.copy(a[0] / "m_results" / "1.png", b[0] / "m_results" / "1.png")
    rec = b[1] / "runs" / "2026-01-02T00_m.json"
    r = json.loads(rec.read_text())
    rec.write_text(json.dumps({**r, "metrics": {"PQ": 50.01}, "flops": {"gflops": 1.5, "seconds": 0}}))
    diffs = check.compare_records(a[1], b[1])[0]
    assert [d.split(" (")[0] for d in diffs] == ["m: field 'flops' differs", "m: field 'metrics' differs"]
    rec.write_text(json.dumps(r))
    np.savez(b[1] / "runs" / "2026-01-02T00_m.analysis.npz", tp=np.array([1, 3]))
    assert check.compare_records(a[1], b[1])[0] == ["m: analysis array 'tp' differs"]
    assert check.main([str(a[0]), str(a[1]), str(b[0]), str(b[1])]) == 1
