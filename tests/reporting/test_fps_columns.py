"""`panbench table`'s FPS columns: the latest `panbench speed` record of a row's model and dataset, the protocol
named in the column and its footnote, the published FPS only where it was measured on the same device.  The
records are invented (tests/fixtures/README.md), not measurements."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from panbench.cli import main
from panbench.records.speed import SpeedRecord, same_device, write_speed_record

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


def _speed(model: str, device: str, fps: float, date: str, published: float | None = None) -> SpeedRecord:
    return SpeedRecord(model=model, dataset="coco", date=date, device=device, amp="bf16",
                       protocol={"name": "mmdet-benchmark", "warmup": 5, "iters": 50, "batch": 1},
                       input_size="640x640", compile={"on": True, "modules": ["model"]},
                       forward={"fps": fps}, end_to_end={"fps": fps / 2}, published_fps=published,
                       published_fps_device="NVIDIA H100" if published else None)


@pytest.fixture
def results(tmp_path) -> Path:
    (tmp_path / "runs").mkdir()
    rec = json.loads(GOLDEN.read_text())
    shutil.copy(GOLDEN, tmp_path / "runs" / GOLDEN.name)
    other = {**rec, "model": "hf-eomt_s-2x-640", "metrics": {**rec["metrics"], "PQ": 9.0}}
    (tmp_path / "runs" / "eomt.json").write_text(json.dumps(other))
    assert rec["dataset"] == "coco"
    return tmp_path


def test_the_fps_column_names_its_protocol(results, capsys) -> None:
    write_speed_record(results, _speed("fixture-model", "cpu (x86_64, 2 threads)", 1.0, "2026-01-01T00:00:00+00:00"))
    write_speed_record(results, _speed("fixture-model", "cpu (x86_64, 2 threads)", 2.5, "2026-02-01T00:00:00+00:00"))
    write_speed_record(results, _speed("hf-eomt_s-2x-640", "NVIDIA H100 80GB HBM3", 300.0,
                                       "2026-01-01T00:00:00+00:00", published=330.0))
    assert main(["table", "--results", str(results), "--format", "csv"]) == 0
    out = capsys.readouterr()
    df = pd.read_csv(io.StringIO(out.out), index_col="model")
    assert df.loc["fixture-model", "FPS_fwd_b1"] == pytest.approx(2.5)  # the latest speed record
    assert df.loc["fixture-model", "FPS_setup"] == "cpu, bf16, compiled, 640x640"
    assert pd.isna(df.loc["fixture-model", "FPS_pub"])  # nothing published
    assert df.loc["hf-eomt_s-2x-640", "FPS_pub"] == pytest.approx(330.0)  # published on this device
    assert "protocol mmdet-benchmark" in out.err and "benchmark.py" in out.err and "batch 1" in out.err


def test_a_published_fps_of_another_device_is_not_shown(results, capsys) -> None:
    write_speed_record(results, _speed("hf-eomt_s-2x-640", "NVIDIA A100-SXM4-40GB", 200.0,
                                       "2026-01-01T00:00:00+00:00", published=330.0))
    assert main(["table", "--results", str(results), "--format", "md"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if "FPS_fwd_b1" in line)
    assert header.startswith("| model") and "FPS_pub" not in header and "FPS_setup" in header


def test_without_speed_records_there_is_no_fps_column(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", "md"]) == 0
    assert "FPS" not in capsys.readouterr().out


@pytest.mark.parametrize("device, published, same", [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100", True), ("NVIDIA H100 PCIe", "NVIDIA H100", True),
    ("NVIDIA H200", "NVIDIA H100", False), ("NVIDIA A100-SXM4-80GB", "NVIDIA A100", True),
    ("cpu (x86_64, 2 threads)", "NVIDIA H100", False), ("NVIDIA H100", None, False),
])
def test_same_device(device, published, same) -> None:
    assert same_device(device, published) is same
