"""docs/cli.md's command reference is what the parsers say: every command, sub-command and option, with the help
`--help` prints (scripts/cli_reference.py writes it; this check fails when an option changes and the doc does not)."""

from __future__ import annotations

import argparse
import importlib.util

import pytest

from panbench.cli import build_parser
from panbench.package import REPO_ROOT


def _script():
    spec = importlib.util.spec_from_file_location("cli_reference", REPO_ROOT / "scripts" / "cli_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_cli_md_is_the_reference_the_parsers_make() -> None:
    """Byte for byte on the Python that wrote it (argparse's usage lines differ between Python versions)."""
    import re
    import sys

    ref = _script()
    text = ref.DOC.read_text()
    written = re.search(r"argparse of Python (\d+\.\d+)", text)
    assert written, "docs/cli.md names no Python it was written with"
    if written.group(1) != f"{sys.version_info[0]}.{sys.version_info[1]}":
        pytest.skip(f"docs/cli.md was written with Python {written.group(1)}")
    assert ref.rewrite(text) == text, "docs/cli.md is out of date: run .venv/bin/python scripts/cli_reference.py"


def test_the_reference_names_every_command_and_option() -> None:
    text = (REPO_ROOT / "docs" / "cli.md").read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert f"### `panbench {name}`" in text, name
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--debug" and action.help != argparse.SUPPRESS:
                    assert f"`{flag}" in text, (name, flag)


def test_an_option_changed_in_the_code_makes_the_reference_out_of_date(monkeypatch) -> None:
    ref = _script()
    text = ref.DOC.read_text()
    from panbench.cli import options

    real = options.Common

    def more(*a, **k):
        common = real(*a, **k)
        common.results._actions[-1].help = "a changed help"
        return common

    monkeypatch.setattr(options, "Common", more)
    import panbench.cli as cli

    monkeypatch.setattr(cli, "Common", more)
    assert ref.rewrite(text) != text
