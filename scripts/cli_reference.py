"""Write the command reference of docs/cli.md from the parsers themselves: each command (and each `data`
sub-command) with its usage line, its description and a table of its options, as `--help` shows them.

    .venv/bin/python scripts/cli_reference.py          # rewrites the generated part of docs/cli.md
    .venv/bin/python scripts/cli_reference.py --check  # exit 1 when docs/cli.md is not what the parsers say

tests/cli/test_cli_reference.py runs the check, so the reference never drifts from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "cli.md"
BEGIN = ("<!-- the command reference: written by scripts/cli_reference.py from the parsers (argparse of Python "
         f"{sys.version_info[0]}.{sys.version_info[1]}); do not edit by hand -->")
END = "<!-- end of the command reference -->"
SKIP = {"-h", "--debug"}  # every command takes them (README)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option(action: argparse.Action, formatter: argparse.HelpFormatter) -> tuple[str, str] | None:
    if action.help == argparse.SUPPRESS or set(action.option_strings) & SKIP:
        return None
    if action.option_strings:
        names = ", ".join(action.option_strings)
        if action.nargs != 0:
            names += " " + formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
    else:
        names = formatter._format_args(action, formatter._get_default_metavar_for_positional(action))
    text = formatter._expand_help(action) if action.help else ""
    if action.choices is not None and "{" not in names and not isinstance(action, argparse._SubParsersAction):
        text += f" (one of: {', '.join(map(str, action.choices))})"  # a metavar hid them
    return f"`{names}`", _cell(text)


def _section(name: str, parser: argparse.ArgumentParser, level: str = "###") -> list[str]:
    formatter = parser._get_formatter()
    usage = " ".join(parser.format_usage().split())
    out = [f"{level} `{name}`", ""]
    if parser.description:
        out += [_cell(parser.description), ""]
    out += ["```", usage.removeprefix("usage: "), "```", ""]
    rows = [r for a in parser._actions if not isinstance(a, argparse._SubParsersAction)
            if (r := _option(a, formatter)) is not None]
    if rows:
        out += ["| option | what it does |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows), ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                out += _section(f"{name} {sub_name}", sub, level + "#")
    return out


def reference() -> str:
    """The generated part of docs/cli.md."""
    from panbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = [BEGIN, ""]
    lines += ["| command | what it does |", "| --- | --- |"]
    lines += [f"| [`panbench {n}`](#panbench-{n.replace(' ', '-')}) | {_cell(p.description or '')} |"
              for n, p in sub.choices.items()]
    lines.append("")
    for n, p in sub.choices.items():
        lines += _section(f"panbench {n}", p)
    lines.append(END)
    return "\n".join(lines) + "\n"


def rewrite(text: str) -> str:
    """docs/cli.md's text with its generated part replaced (appended when absent)."""
    ref = reference()
    mark = BEGIN.split(" from the parsers", 1)[0]  # the marker's start, whichever Python wrote it
    if mark in text and END in text:
        head, rest = text.split(mark, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + ref + (("\n" + tail) if tail else "")
    return text.rstrip("\n") + "\n\n" + ref


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when docs/cli.md is out of date; write nothing")
    args = ap.parse_args()
    old = DOC.read_text()
    new = rewrite(old)
    if args.check:
        if new != old:
            print(f"{DOC}: the command reference is out of date; run scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
