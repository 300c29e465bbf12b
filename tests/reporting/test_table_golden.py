"""The text of `panbench table` is fixed: every format of each table option over records made for real
(analysis_records.py: two runs with the analyses, one with boundary PQ) beside the schema-1 fixture (published
numbers), compared with tests/fixtures/golden_tables.json character for character.  A change of how the tables
are made must leave this text as it is; a change meant to alter it rewrites the file:
``PANBENCH_GOLDEN=write pytest tests/reporting/test_table_golden.py`` (and the diff is reviewed)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from analysis_records import add_run, ground_truth

from panbench.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
GOLDEN = FIXTURES / "golden_tables.json"
OPTIONS = ("", "--all-columns", "--vs-published", "--per-class", "--ci", "--by-size", "--dagger", "--errors",
           "--boundary-pq", "--ci --errors --only-dataset synth --reference noisy")
FORMATS = ("md", "csv", "latex", "html")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("golden")
    gt_json, images = ground_truth(root / "data", n_images=10)
    add_run(root, "noisy", gt_json, images, pred_seed=1, date="2001-01-01T00:00:01+00:00")
    add_run(root, "perfect", gt_json, images, pred_seed=None, boundary=True, postprocess="maskwise",
            date="2001-01-01T00:00:02+00:00")
    shutil.copy(FIXTURES / "fixture_record.json", root / "runs" / "fixture_record.json")
    return root


def _tables(results: Path, capsys: pytest.CaptureFixture) -> dict[str, str]:
    out = {}
    for options in OPTIONS:
        for fmt in FORMATS:
            code = main(["table", "--results", str(results), "--format", fmt, *options.split()])
            got = capsys.readouterr()
            out[f"table {options} --format {fmt}".replace("  ", " ")] = \
                f"exit {code}\n{got.out}\n--- stderr\n{got.err}".replace(str(results), "RESULTS")
    return out


def test_every_format_of_every_table_option_reads_as_it_did(results, capsys) -> None:
    tables = _tables(results, capsys)
    if os.environ.get("PANBENCH_GOLDEN") == "write":
        GOLDEN.write_text(json.dumps(tables, indent=1, ensure_ascii=False) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert list(tables) == list(golden)
    for key, text in tables.items():
        assert text == golden[key], key
