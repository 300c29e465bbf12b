"""The shared options of panbench/cli/options.py: a run's defaults are EvalOptions' and PostProcess' (the only
ones), --model repeats, --checkpoint is one file for eval and robustness."""

from __future__ import annotations

from dataclasses import fields

import pytest

from panbench.cli import build_parser
from panbench.cli.running import single_checkpoint
from panbench.errors import PanbenchError
from panbench.evaluation.options import EvalOptions

# the fields a command line sets from an option (the others: where the run writes, the command itself)
FROM_OPTIONS = [f.name for f in fields(EvalOptions) if f.name not in ("cache_root", "results_dir", "command")]


@pytest.mark.parametrize("cmd", ["eval", "robustness"])
def test_a_run_without_options_has_eval_options_defaults(cmd) -> None:
    opts = EvalOptions.from_cli(build_parser().parse_args([cmd, "--model", "demo-mask2former"]))
    default = EvalOptions()
    assert {k: getattr(opts, k) for k in FROM_OPTIONS} == {k: getattr(default, k) for k in FROM_OPTIONS}


def test_help_shows_the_dataclass_defaults(capsys) -> None:
    from panbench.models.postprocess import PostProcess

    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in (f"images per forward pass (default {EvalOptions.batch_size})",
                 f"every N images (default {EvalOptions.flush_every})", f"(default {PostProcess.keep_thr})"):
        assert text in out


def test_model_repeated_is_a_list() -> None:
    args = build_parser().parse_args(["viz", "--model", "a", "--model", "b,c", "--image", "1"])
    assert args.model == "a,b,c"


def test_eval_takes_one_checkpoint() -> None:
    assert single_checkpoint(None, ["m"]) is None
    assert single_checkpoint(["w.pth"], ["m"]) == "w.pth"
    for ckpts, specs in ((["w.pth"], ["m", "n"]), (["w.pth", "v.pth"], ["m"])):
        with pytest.raises(PanbenchError, match="--checkpoint applies to one model"):
            single_checkpoint(ckpts, specs)
