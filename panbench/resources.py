"""Where panbench's own files are (the model configs and the demo models' weights, from the clone or a wheel's
``panbench/_data/``) and where this user's panbench cache is (:func:`user_cache_dir`)."""

from __future__ import annotations

import os
from importlib.resources import as_file, files
from pathlib import Path

from panbench.ops.pairing import NEEDS_TORCHVISION, install_command
from panbench.package import REPO_ROOT


def data_root() -> Path:
    """The folder holding ``configs/`` and ``checkpoints/``: the wheel's package data, else the clone."""
    packaged = files("panbench").joinpath("_data")
    if packaged.is_dir():
        with as_file(packaged) as path:  # an installed package is a folder: the path itself, nothing extracted
            return Path(path)
    return REPO_ROOT


def user_cache_dir() -> Path:
    """The user's panbench cache: ``$PANBENCH_CACHE``, else ``$XDG_CACHE_HOME/panbench``, else ``~/.cache/panbench``."""
    own = os.environ.get("PANBENCH_CACHE")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "panbench"


def config_dir() -> Path:
    """The model configs (``<name>.py``, ``demo/<name>.py``)."""
    return data_root() / "configs"


def checkpoint_dir(dataset: str) -> Path:
    """The committed weights of a dataset's models (``checkpoints/demo/<name>-<sha256 prefix>.pth``)."""
    return data_root() / "checkpoints" / dataset


def committed_checkpoints(name: str, dataset: str) -> list[Path]:
    """The committed weight files of model ``name``, oldest name first."""
    return sorted(checkpoint_dir(dataset).glob(f"{name}-*.pth"))


# which of pyproject.toml's extras installs a module a command imports: what "No module named X" asks for; the
# model families' packages are theirs to say (Family.extras in panbench/models/families.py)
EXTRAS = {"pandas": "report", "matplotlib": "report", "pyarrow": "report", "skimage": "robustness",
          "scipy": "robustness", "torchvision": "cuda", "submitit": "slurm"}


def missing_extra_message(module: str | None, families: dict[str, str] | None = None) -> str | None:
    """The one-line fix for a missing module that one of panbench's extras (or ``families``') installs, else None."""
    top = (module or "").partition(".")[0]
    extra = {**EXTRAS, **(families or {})}.get(top)
    if extra is None:
        return None
    if top in NEEDS_TORCHVISION:  # the build that loads beside the installed torch, not PyPI's whatever it is
        return f"this command needs {top}, which is not installed: {install_command(top)}"
    return (f"this command needs {top}, which is not installed; install panbench's {extra!r} extra: "
            f"pip install \"panbench[{extra}]\" (or in a clone: pip install -e \".[{extra}]\"; docs/setup.md)")
