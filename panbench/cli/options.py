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


def model_name(text: str) -> str:
    """An argparse ``type``: a name a record is filed and shown under (not empty, not only spaces; trimmed)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"needs a name to show the system under in tables, got {text!r}")
    return text.strip()


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


def add_image_selection(p: argparse.ArgumentParser) -> None:
    """``--limit`` and ``--subset``: which images of the dataset a run takes (eval, robustness)."""
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N images")
    p.add_argument("--subset", help="file of image ids (one per line) to evaluate")


def add_run_options(p: argparse.ArgumentParser,
                    workers_help: str = "data-loading worker processes (default 2)") -> None:
    """The options of a command that runs models over images (eval, robustness): device, batch size,
    precision, data loading and inference processes, timing warm-up, seed, the per-image results cache and
    the progress bar.  ``workers_help`` says what the data-loading workers do in that command."""
    p.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda, cuda:1")
    p.add_argument("--batch-size", type=positive_int, default=1, help="images per forward pass (default 1)")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="mixed-precision inference (default: fp32)")
    p.add_argument("--workers", type=non_negative_int, default=2, help=workers_help)
    p.add_argument("--cpu-procs", type=non_negative_int, default=0,
                   help="on the CPU: inference processes forked after the model is loaded, each with cores/N "
                   "threads and its own data loading (default 0: one per core; 1: a single process)")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="batches left out of the timings (default 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of python's, numpy's and torch's random generators at the start of the run "
                   "(default 0)")
    p.add_argument("--no-resume", action="store_true", help="ignore per-image results cached by an earlier run")
    p.add_argument("--cache-every", type=positive_int, default=16,
                   help="write the per-image results cache every N images (default 16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--launcher", choices=["torchrun", "slurm"], default="torchrun",
                   help="where the ranks come from: torchrun (default; one process without it) or slurm (under srun)")


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
