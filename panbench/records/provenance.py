"""Where a result came from: the versions of the stack, the git commit, the time of the run.  ``command_line`` is all
that every command needs (``panbench.cli.main``): the rest imports its modules when called."""

from __future__ import annotations

import importlib
import shlex
import sys
from collections.abc import Sequence
from contextlib import suppress

from panbench import package
from panbench.ops import active
from panbench.package import REPO_ROOT


def git_commit() -> str | None:
    """The repository's HEAD commit (with ``-dirty`` when there are local changes), if any."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("-dirty" if dirty else "")) if head else None


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command a record keeps (its ``provenance.command``): ``panbench`` and its arguments (``argv``, default
    this process's), shell-quoted, so that it runs again as written."""
    return shlex.join(["panbench", *(sys.argv[1:] if argv is None else argv)])


def package_version(module: str) -> str | None:
    """The ``__version__`` of an importable module (None: not installed, or no version): the one version lookup of
    a record's provenance and of the resume cache's key."""
    with suppress(Exception):
        return str(importlib.import_module(module).__version__)
    return None


def versions(packages: Sequence[str]) -> dict[str, str | None]:
    """Versions of the stack that produced a result: panbench, Python, numpy and ``packages`` (a run's are
    those its model runs on: its family's ``Family.packages`` in :mod:`panbench.models.families` and its
    backbone's, ``Built.packages``; none for a ``score --name`` record); with torch, the CUDA it was built with;
    with mmcv, what served mmcv's compiled ops."""
    import platform

    out: dict[str, str | None] = {"panbench": package.__version__, "python": platform.python_version(),
                                  **{mod: package_version(mod) for mod in (*packages, "numpy")}}
    if "torch" in packages:
        out["cuda"] = None
        with suppress(Exception):
            import torch

            out["cuda"] = torch.version.cuda
    if "mmcv" in packages:
        out["mmcv_ops"] = active()  # "mmcv" (compiled) or "panbench" (panbench.ops); None: no mmcv op reached
    return out


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
