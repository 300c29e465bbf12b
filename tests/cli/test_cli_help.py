"""Every command answers --help; --version; --debug works before and after the command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from panbench import __version__
from panbench.cli import build_parser, main

COMMANDS = ["doctor", "ls", "eval", "speed", "robustness", "table", "compare", "images", "plot", "viz", "report",
            "score", "data", "data demo", "data coco", "submit", "status"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help(cmd, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main([*cmd.split(), "--help"])
    assert e.value.code == 0 and "usage: panbench" in capsys.readouterr().out


def test_every_registered_command_is_covered() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {c.split()[0] for c in COMMANDS}


def test_every_command_describes_itself() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert [name for name, p in sub.choices.items() if not p.description] == []


def test_version() -> None:
    r = subprocess.run([sys.executable, "-m", "panbench", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"panbench {__version__}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where, tmp_path) -> None:
    args = ["score", "--gt-json", str(tmp_path / "none.json"), "--gt-dir", ".", "--pred-json", "x", "--pred-dir", "."]
    argv = ["--debug", *args] if where == "before" else [*args, "--debug"]
    r = subprocess.run([sys.executable, "-m", "panbench", *argv], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" in r.stderr and "not found" in r.stderr.strip().splitlines()[-1]
    r = subprocess.run([sys.executable, "-m", "panbench", *args], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not found" in r.stderr


def test_help_never_imports_torch() -> None:
    """Nor numpy: the options read their defaults from EvalOptions and PostProcess, which import neither."""
    code = ("import sys\nfrom panbench.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mmdet', 'mmcv', 'mmengine', "
            "'numpy')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: panbench" in r.stdout, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_eval_and_robustness_share_their_run_options() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")

    def options(cmd: str) -> dict[str, tuple]:
        return {a.dest: (a.option_strings, a.help, a.default, a.type, a.choices) for a in sub.choices[cmd]._actions}

    ev, rob = options("eval"), options("robustness")
    shared = ["limit", "subset", "device", "batch_size", "amp", "cpu_procs", "warmup", "seed", "no_resume",
              "cache_every", "no_progress"]
    assert {k: ev[k] for k in shared} == {k: rob[k] for k in shared}
    assert ev["workers"][2:] == rob["workers"][2:]  # the help says what the workers do in each command


def _parsers():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        yield name, p
        for a in p._actions:
            if a.dest == "data_command" or (a.choices and isinstance(a.choices, dict)):
                yield from ((f"{name} {n}", q) for n, q in a.choices.items())


def test_every_option_of_every_command_has_help() -> None:
    missing = [f"{name} {a.option_strings[0]}" for name, p in _parsers() for a in p._actions
               if a.option_strings and a.help is None]
    assert missing == []


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_prints_no_doubled_percent(cmd, capsys) -> None:
    with pytest.raises(SystemExit):
        main([*cmd.split(), "--help"])
    assert "%%" not in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["ls", "--only-dataset", "foo"],
     "--only-dataset foo: no registered model is for it; use one of: ade20k, cityscapes, coco, demo, mapillary"),
    (["score", "--gt-json", "a", "--gt-dir", "b", "--pred-json", "c", "--pred-dir", "d", "--procs", "0"],
     "--procs: must be an integer >= 1, got 0"),
    (["score", "--gt-json", "a", "--gt-dir", "b", "--pred-json", "c", "--pred-dir", "d", "--name", ""],
     "--name: needs a name"),
    (["score", "--gt-json", "a", "--gt-dir", "b", "--pred-json", "c", "--pred-dir", "d", "--name", "   "],
     "--name: needs a name"),
])
def test_a_value_that_cannot_work_is_one_line_and_exit_2(argv, says, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def _sub(parser, name):
    return next(a for a in parser._actions if a.dest == "command").choices[name]


@pytest.mark.parametrize("cmd", sorted({c.split()[0] for c in COMMANDS}))
def test_a_command_built_alone_parses_and_helps_as_in_the_whole_parser(cmd) -> None:
    whole, alone = _sub(build_parser(), cmd), _sub(build_parser(cmd), cmd)
    assert alone.format_help() == whole.format_help()
    assert [a.option_strings for a in alone._actions] == [a.option_strings for a in whole._actions]


def test_main_builds_the_named_command_alone_and_the_whole_parser_otherwise() -> None:
    from panbench.cli import _command_of

    assert _command_of(["score", "--gt-json", "x"]) == "score"
    assert _command_of(["--debug", "score"]) == "score"
    assert [_command_of(a) for a in (["--help"], ["--version"], ["scor"], [], ["--debug"])] == [None] * 5


def test_a_command_imports_neither_the_other_commands_nor_their_options_dependencies() -> None:
    code = ("import sys; from panbench.cli import main\n"
            "try: main(['--debug', 'score', '--help'])\n"
            "except SystemExit: pass\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('panbench.', 'numpy')))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(r.stdout.split())
    assert "panbench.cli.score" in loaded
    assert "numpy" not in loaded  # score's run() loads it, with OpenBLAS on one thread (test_score_cli.py)
    others = {f"panbench.cli.{c.split()[0]}" for c in COMMANDS} - {"panbench.cli.score"}
    assert loaded & (others | {"panbench.data.catalog", "panbench.evaluation.options", "panbench.models.families",
                               "panbench.reporting.formats"}) == set()


def test_every_option_group_of_common_is_defined_once_and_built_on_first_use() -> None:
    from panbench.cli import options

    assert set(options.Common.__annotations__) == set(options._GROUPS)
    common = options.Common()
    assert vars(common) == {}
    assert common.strict is common.strict and set(vars(common)) == {"strict"}
    with pytest.raises(AttributeError):
        common.no_such_group  # noqa: B018
    with pytest.raises(ValueError, match="no command 'options'"):
        build_parser("options")


@pytest.mark.parametrize(("command", "paused"), [("score", True), ("table", False)])
def test_a_command_without_reference_cycles_runs_with_the_collector_paused(monkeypatch, command: str,
                                                                          paused: bool) -> None:
    import gc
    import importlib

    seen = []
    module = importlib.import_module(f"panbench.cli.{command}")
    monkeypatch.setattr(module, "run", lambda args: seen.append(gc.isenabled()) or 0)
    parsed = []
    build = importlib.import_module("panbench.cli").build_parser

    def spy(name):  # noqa: ANN001, ANN202
        parsed.append(gc.isenabled())
        return build(name)

    monkeypatch.setattr("panbench.cli.build_parser", spy)
    argv = {"score": ["--gt-json", "a", "--gt-dir", "b", "--pred-json", "c", "--pred-dir", "d"], "table": []}
    assert gc.isenabled()
    assert main([command, *argv[command]]) == 0
    assert parsed == [False] and seen == [not paused]
    assert gc.isenabled()  # as it was
