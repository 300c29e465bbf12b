"""Every path a command writes under, where nothing can be written (a folder /proc will not make, a parent missing
there, a file in the way, a read-only folder): one line naming the path and the option to change, exit 2, no
traceback, nothing run (docs/cli.md, "Where a command writes")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from panbench.cli import main

FIGURE = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


def _commands(demo_root: Path, results: Path, bad: str) -> dict[str, list[str]]:
    """Each command with one of its output paths at ``bad``; the option that chose it."""
    ann = demo_root / "annotations"
    score = ["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
             "--pred-json", str(ann / "panoptic_val2017.json"), "--pred-dir", str(ann / "panoptic_val2017")]
    demo = ["--dataset", "demo", "--data-root", str(demo_root)]
    return {
        "--root": ["data", "demo", "--root", bad],
        "--out": ["report", "--results", str(results), "--out", f"{bad}/report.html"],
        "--per-image": ["images", "--results", str(results), "--run", "fixture-model", "--per-image", f"{bad}/x.csv"],
        "--results": [*score, "--name", "x", "--results", bad],
        "score --per-image": [*score, "--per-image", f"{bad}/x.csv"],
        "eval --results": ["eval", "--model", "demo-mask2former", *demo, "--limit", "1", "--results", bad],
        "--save-predictions": ["eval", "--model", "demo-mask2former", *demo, "--limit", "1", "--results",
                               str(results), "--save-predictions", bad],
        "viz --out": ["viz", "--model", "demo-mask2former", *demo, "--image", "2000", "--out", f"{bad}/v.png"],
    }


def _results(tmp_path: Path) -> Path:
    res = tmp_path / "res"
    (res / "runs").mkdir(parents=True)
    (res / "runs" / "r.json").write_text(FIGURE.read_text())
    return res


@pytest.mark.parametrize("bad", ["/proc/panbench-nope", "/proc/panbench-nope/deeper", "/dev/null/x"])
def test_a_path_where_nothing_can_be_written_is_one_line_and_exit_2(demo_root, tmp_path, capsys, bad) -> None:
    res = _results(tmp_path)
    for option, command in _commands(demo_root, res, bad).items():
        code = main(command)
        err = [line for line in capsys.readouterr().err.splitlines() if not line.endswith("...")]
        assert code == 2 and len(err) == 1 and err[0].startswith("panbench: error: "), (option, err)
        assert "Traceback" not in err[0] and bad.split("/")[1] in err[0], (option, err)
        assert f"pass another {option.split()[-1]}" in err[0], (option, err)
    assert sorted(p.name for p in res.iterdir()) == ["runs"]  # nothing written


def test_a_read_only_folder_is_one_line_and_exit_2(demo_root, tmp_path, capsys) -> None:
    res = _results(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user writes into a read-only folder (root)")
        for option, command in _commands(demo_root, res, str(locked / "out")).items():
            code = main(command)
            err = [line for line in capsys.readouterr().err.splitlines() if not line.endswith("...")]
            assert code == 2 and len(err) == 1 and "no write permission" in err[0], (option, err)
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("bad", ["/proc/panbench-nope", "/proc/panbench-nope/deeper", "/dev/null/x"])
def test_make_demo_where_no_folder_can_be_made_raises_the_one_line_through_the_api(bad) -> None:
    from panbench.data.demo import make_demo
    from panbench.errors import InputError

    with pytest.raises(InputError, match=rf"^{bad}: cannot be written \(.+\); pass another root"):
        make_demo(Path(bad))
