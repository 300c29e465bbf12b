"""One definition and one meaning per flag name of the ``panbench`` command line.

Every parser (commands and sub-commands) is built; a flag name that two commands take must be the same
argparse action (defined once, in a parent parser of ``panbench/cli/options.py``, with one help and one
default), and a flag name must not mean two things (two actions with different help under one name).
Deprecated spellings (:class:`panbench.cli.options.DeprecatedAlias`, hidden from ``--help``) are left out:
they keep an old meaning for one version.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import pytest

import panbench.cli as cli
from panbench.cli import options

# the top-level flags, repeated after each command by panbench.cli._debug_everywhere
TOP_LEVEL = {"-h", "--help", "--debug", "--version"}


def _parsers(p: argparse.ArgumentParser, name: str = "panbench"):
    yield name, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for n, q in a.choices.items():
                yield from _parsers(q, f"{name} {n}")


def _build(monkeypatch) -> tuple[argparse.ArgumentParser, options.Common]:
    """The whole parser, and the parent parsers it was built with."""
    built = []

    def keep() -> options.Common:
        built.append(options.Common())
        return built[-1]

    monkeypatch.setattr(cli, "Common", keep)
    parser = cli.build_parser()
    return parser, built[0]


def problems(parser: argparse.ArgumentParser, common: options.Common) -> list[str]:
    """Each flag name defined more than once or with two meanings, and each flag that several commands take
    but that is not in a parent parser of options.py."""
    uses: dict[str, list[tuple[str, argparse.Action]]] = defaultdict(list)
    for name, p in _parsers(parser):
        for a in p._actions:
            if isinstance(a, options.DeprecatedAlias):
                continue
            for flag in set(a.option_strings) - TOP_LEVEL:
                uses[flag].append((name, a))
    shared = {id(a) for parent in vars(common).values() for a in parent._actions}
    out = []
    for flag, where in sorted(uses.items()):
        helps = {a.help for _, a in where}
        if len(helps) > 1:
            out.append(f"{flag} has {len(helps)} meanings: " + "; ".join(f"{n}: {a.help}" for n, a in where))
        elif len({id(a) for _, a in where}) > 1:
            out.append(f"{flag} is defined {len({id(a) for _, a in where})} times ({', '.join(n for n, _ in where)})")
        elif len(where) > 1 and id(where[0][1]) not in shared:
            out.append(f"{flag} is shared by {', '.join(n for n, _ in where)} outside the parents of options.py")
    return out


def test_every_flag_name_is_defined_once_with_one_meaning(monkeypatch) -> None:
    assert problems(*_build(monkeypatch)) == []


@pytest.mark.parametrize("how", ["second definition", "second meaning", "outside options.py"])
def test_a_flag_defined_twice_is_found(monkeypatch, how) -> None:
    parser, common = _build(monkeypatch)
    sub = dict(_parsers(parser))
    if how == "second definition":  # the same words, written again in a command
        sub["panbench table"].add_argument("--strict", action="store_true", help=common.strict._actions[0].help)
    elif how == "second meaning":
        sub["panbench table"].add_argument("--seed", type=int, help="seed of the table's colours")
    else:  # one action shared by two commands, but not from a parent parser
        extra = argparse.ArgumentParser(add_help=False)
        extra.add_argument("--colour", help="the colour of the table")
        for cmd in ("panbench table", "panbench plot"):
            sub[cmd]._add_container_actions(extra)
    found = problems(parser, common)
    assert len(found) == 1 and found[0].startswith(("--strict", "--seed", "--colour")), found


def test_deprecated_aliases_point_to_a_flag_of_their_own_parser(monkeypatch) -> None:
    parser, _ = _build(monkeypatch)
    aliases = {}
    for name, p in _parsers(parser):
        for a in p._actions:
            if isinstance(a, options.DeprecatedAlias):
                assert a.target in p._actions and a.dest == a.target.dest and a.help == argparse.SUPPRESS
                aliases[f"{name} {a.option_strings[0]}"] = a.target.option_strings[0]
    assert aliases == {
        **{f"panbench {c} --dataset": "--only-dataset" for c in ("ls", "table", "compare", "images", "plot",
                                                                 "report")},
        "panbench table --boundary": "--boundary-pq", "panbench compare --seed": "--bootstrap-seed",
        "panbench images --model": "--run", "panbench score --dataset": "--dataset-name",
        "panbench score --workers": "--procs", "panbench data demo --seed": "--data-seed",
    }


def test_no_command_imports_another() -> None:
    """A command module (``add_parser`` + ``run``) imports only the CLI's shared modules, never another command:
    what two commands share lives in a module of its own (``options.py``, ``running.py``, ``records.py``, ...)."""
    import ast

    from panbench.package import REPO_ROOT

    cli = REPO_ROOT / "panbench" / "cli"
    commands = {p.stem for p in cli.glob("*.py")
                if p.stem != "__init__" and {"add_parser", "run"} <= {n.name for n in ast.parse(p.read_text()).body
                                                                     if isinstance(n, ast.FunctionDef)}}
    found = []
    for name in sorted(commands):
        for node in ast.walk(ast.parse((cli / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("panbench.cli."):
                other = node.module.split(".")[2]
                if other in commands and other != name:
                    found.append(f"cli/{name}.py imports cli/{other}.py")
    assert len(commands) > 10 and found == []
