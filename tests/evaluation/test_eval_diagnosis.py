"""`panbench eval` of a model whose class order is not its dataset's: the record carries the diagnosis (its
``pq_if_fixed`` null: eval keeps no predictions to score again) and the terminal prints it; ``--no-diagnosis``
leaves both out.  (A model in the dataset's order gets none: tests/evaluation/test_cfg_options.py.)"""

from __future__ import annotations

from pathlib import Path

from helpers import eval_demo_record, rolled_checkpoint

from panbench.package import REPO_ROOT


def demo_checkpoint() -> Path:
    return sorted((REPO_ROOT / "checkpoints" / "demo").glob("demo-mask2former-*.pth"))[-1]


def test_a_rolled_class_order_is_diagnosed_in_the_record_and_on_the_terminal(demo_root, tmp_path, capsys):
    ckpt = str(rolled_checkpoint(demo_checkpoint(), tmp_path))
    rec = eval_demo_record(demo_root, tmp_path / "r", "--checkpoint", ckpt, "--limit", "8")
    out = capsys.readouterr().out
    [finding] = rec["diagnosis"]
    assert finding["kind"] == "category_mapping" and finding["pq_if_fixed"] is None
    assert rec["metrics"]["PQ"] < 5 and "diagnosis (category_mapping): predicted categories" in out
    # the same run again, resumed from its cache: --no-diagnosis is not a setting of the numbers
    quiet = eval_demo_record(demo_root, tmp_path / "r", "--checkpoint", ckpt, "--limit", "8", "--no-diagnosis")
    assert quiet["timings"]["resumed_images"] == 8
    assert "diagnosis" not in quiet and "diagnosis (" not in capsys.readouterr().out
