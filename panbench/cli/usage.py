"""Usage errors of the ``panbench`` command line: one line on stderr, exit code 2, the command's own ``--help``
named, and the command, option or value meant where one is close to what was typed (difflib)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import Any


def _close(typed: str, names: Sequence[str]) -> str | None:
    """The name in ``names`` closest to ``typed``, when one is close enough to be what was meant."""
    found = difflib.get_close_matches(typed, list(names), n=1, cutoff=0.6)
    return found[0] if found else None


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``panbench eval: error: ...; see `panbench eval --help```), exit code
    2, no usage block; a misspelled command, option or choice answered with the one meant; sub-commands inherit it."""

    _typed: list[str] = []  # the arguments this parser was last given

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._typed = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As argparse's, but an argument no parser took is an error of the (sub-)command it was given to,
        naming the option meant: ``unknown option --batchsize; did you mean --batch-size?``."""
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            parser = self._command_parser(ns)
            parser.error(parser.unknown_option(extra) or f"unexpected argument {extra[0]!r}")
        return ns

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("the following arguments are required"):  # a misspelled one is the cause
            message = self.unknown_option(self._typed) or message
        sep = " " if message.endswith("?") else "; "
        self.exit(2, f"{self.prog}: error: {message}{sep}see `{self.prog} --help`\n")

    def unknown_option(self, args: Sequence[str]) -> str | None:
        """The first option in ``args`` that this parser does not take (nor one it takes begins with), and the
        one meant where one is close; None when there is none."""
        for arg in args:
            if arg == "--":
                break
            flag = arg.split("=", 1)[0]
            if not flag.startswith("--") or any(o.startswith(flag) for o in self._option_string_actions):
                continue
            meant = _close(flag[2:], [o[2:] for a in self._actions if a.help != argparse.SUPPRESS
                                      for o in a.option_strings if o.startswith("--")])  # the words, not the --
            return f"unknown option {flag}" + (f"; did you mean --{meant}?" if meant else "")
        return None

    def _command_parser(self, ns: argparse.Namespace) -> Parser:
        """The parser of the (sub-)command ``ns`` ran (``panbench data demo``'s for ``data demo``): a Parser too."""
        parser = self
        while True:
            sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            name = getattr(ns, sub.dest, None) if sub else None
            if sub is None or name not in sub.choices or not isinstance(sub.choices[name], Parser):
                return parser
            parser = sub.choices[name]

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A value outside an option's choices, or a command that does not exist: the one meant, if one is close."""
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(c) for c in choices]
        meant = _close(str(value), names)
        hint = f"; did you mean {meant}?" if meant else f" (choose from {', '.join(names)})"
        if isinstance(action, argparse._SubParsersAction):  # a command (or `panbench data`'s dataset)
            raise argparse.ArgumentError(None, f"unknown {str(action.metavar or 'command').lower()} {value}{hint}")
        raise argparse.ArgumentError(action, f"invalid choice {value!r}{hint}")
