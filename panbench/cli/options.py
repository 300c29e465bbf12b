"""What several commands share: the parent parsers of the common options, and value checks.

Each option shared by several commands is defined once here and reaches a command through
argparse's ``parents=``; a command module asks for the ones it takes.  The type functions turn a
bad number into argparse's one-line usage error (exit code 2) before anything runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from panbench.errors import PanbenchError


def _int_at_least(low: int) -> Callable[[str], int]:
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text}")
        return value
    return check


positive_int = _int_at_least(1)
"""An argparse ``type``: an integer >= 1 (counts and sizes)."""

non_negative_int = _int_at_least(0)
"""An argparse ``type``: an integer >= 0 (where 0 means none, or the default choice)."""


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``panbench eval: error: ...; see `panbench eval --help```),
    exit code 2, no usage block; sub-command parsers inherit it."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


@dataclass(frozen=True)
class Common:
    """Parent parsers of the shared options; pass the ones a command takes as ``parents=``."""

    results: argparse.ArgumentParser
    data_root: argparse.ArgumentParser


def common_parents() -> Common:
    """The parent parsers, built once per :func:`panbench.cli.build_parser`."""
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument("--results", default="results", help="results folder (default results/)")
    data_root = argparse.ArgumentParser(add_help=False)
    data_root.add_argument("--data-root", help="dataset root (default data/<dataset>, e.g. data/coco)")
    return Common(results=results, data_root=data_root)


def dataset_root(args: argparse.Namespace) -> str:
    """``--data-root``, or ``data/<dataset>`` (``data/coco`` for a command without ``--dataset``)."""
    return args.data_root or f"data/{getattr(args, 'dataset', None) or 'coco'}"


def check_writable(folder: str | Path, option: str) -> None:
    """Refuse, before anything is computed or written, a folder that cannot be made or written: the nearest
    part of ``folder`` that exists must be a folder this process may write to.  (Errors found only when
    writing, such as a full disk, are one line too: :func:`panbench.cli.main`.)"""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise PanbenchError(f"{folder}: cannot be written ({probe} is a file, not a folder); pass another {option} "
                            "(nothing was run)")
    if not os.access(probe if str(probe) else ".", os.W_OK | os.X_OK):
        raise PanbenchError(f"{folder}: cannot be written (no write permission on {probe}); fix its permissions "
                            f"or pass another {option} (nothing was run)")
