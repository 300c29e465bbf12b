"""Compile to bytecode (.pyc) the modules panbench's commands import, for a Python that does not write bytecode
itself (PYTHONDONTWRITEBYTECODE set: it then compiles each module it imports again in every command).

    PYTHONPATH=<clone> .venv/bin/python scripts/compile_imports.py [--list FILE]

scripts/setup.sh runs it as its last step where PYTHONDONTWRITEBYTECODE is set (elsewhere Python writes each
module's bytecode on its first import, and nothing is done). What is compiled is what ``sys.modules`` holds
after: the whole command line's parser (``panbench --help``), the modules ``panbench score`` and ``panbench
eval`` import before their work, the Python API's metrics with their hosts (:data:`COMMAND_MODULES`), and one
build and forward pass of each demo architecture (random weights, one 64x64 image: the modules building and
running a model import). Not the whole venv: most of its files no command
imports. A module that does not import or compile is left out; the script says how many it compiled and
exits 0.

``--list FILE`` (scripts/setup.sh gives one under its cache, named by its inputs' hash): where FILE exists, the
files it lists are compiled without importing anything (the imports are most of the time: a fresh clone's set-up
from the same inputs compiles the same files), with every module of panbench itself; else the imports run and FILE
is written, each file relative to the venv or the clone where it lies in one."""

from __future__ import annotations

import compileall
import importlib
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

#: what `score` and `eval` import in their run() (panbench/cli/score.py, panbench/cli/eval.py), with mask AP's
#: hotcoco and the fusion a model's run imports; mmdet's model, dataset and metric modules (`eval --fusion mmdet`,
#: PANBENCH_FULL_IMPORTS of docs/eval.md, MMDetection's own loop); the Python API and its hosts: panbench.metrics,
#: the torchmetrics and MMEngine metrics, Lightning (docs/api.md)
COMMAND_MODULES = ("panbench.pq.score", "panbench.pq.stuff_rule", "panbench.analysis.scoring",
                   "panbench.analysis.ap_files", "torch", "panbench.data.datasets", "panbench.evaluation.options",
                   "panbench.evaluation.run", "panbench.evaluation.storage", "panbench.reporting.text", "hotcoco",
                   "panbench.models.mmdet.fast_fusion", "mmdet.models", "mmdet.datasets", "mmdet.evaluation",
                   "panbench.metrics", "panbench.integrations.torchmetrics", "panbench.integrations.mmdet", "lightning")


def import_what_commands_import() -> list[str]:
    """Import the modules the commands import; the names of those that failed to import."""
    from panbench.cli import build_parser

    build_parser()  # every command's module and options
    failed = []
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # a package the venv lacks: its modules are not compiled
            failed.append(name)
    try:
        run_demo_architectures()
    except Exception:
        failed.append("the demo models")
    return failed


def run_demo_architectures() -> None:
    """Build each demo architecture's model (random weights) and run it on one image, as ``panbench doctor``
    does (:func:`panbench.cli.doctor.amp_support` in fp32 only)."""
    import torch

    from panbench.cli.doctor import _tiny_batch
    from panbench.models.families import open_model
    from panbench.models.registry import CONFIG_DIR, all_models

    done = set()
    for spec in all_models(CONFIG_DIR):
        if spec.dataset != "demo" or spec.architecture in done:
            continue
        built = open_model(spec).random_model("cpu")
        if built is None:
            continue
        model = built.module
        with torch.inference_mode():
            model.test_step(_tiny_batch())
        done.add(spec.architecture)


def sources() -> list[str]:
    """The ``.py`` files of the imported modules."""
    files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    return sorted(f for f in files if isinstance(f, str) and f.endswith(".py") and os.path.isfile(f))


def _compile(files: list[str]) -> int:
    return sum(bool(compileall.compile_file(f, quiet=2)) for f in files)


#: where a listed file lies: the venv, the clone, or anywhere (an absolute path)
_ROOTS = {"venv": lambda: sys.prefix, "repo": lambda: str(Path(__file__).resolve().parents[1])}


def write_list(files: list[str], path: Path) -> None:
    """``files`` into ``path``, each as ``venv:REL``, ``repo:REL`` or ``abs:PATH`` (written whole or not at all)."""
    lines = []
    for f in files:
        for name, root in _ROOTS.items():
            if f.startswith(root() + os.sep):
                lines.append(f"{name}:{os.path.relpath(f, root())}")
                break
        else:
            lines.append(f"abs:{f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + f".{os.getpid()}.part")
    part.write_text("\n".join(lines) + "\n")
    part.replace(path)


def read_list(path: Path) -> list[str]:
    """The files of a list :func:`write_list` wrote, in this venv and clone, and every module of panbench itself."""
    files = set()
    for line in path.read_text().splitlines():
        name, _, rel = line.partition(":")
        f = rel if name == "abs" else os.path.join(_ROOTS[name](), rel) if name in _ROOTS else None
        if f is not None and os.path.isfile(f):
            files.add(f)
    files.update(str(f) for f in (Path(_ROOTS["repo"]()) / "panbench").rglob("*.py"))
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=Path, help="the files to compile, kept from an earlier run (see above)")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    failed: list[str] = []
    if args.list is not None and args.list.is_file():
        files, how = read_list(args.list), "; the files an earlier set-up of the same inputs listed"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            failed = import_what_commands_import()
        files, how = sources(), ""
        if args.list is not None and not failed:
            write_list(files, args.list)
    jobs = max(1, os.cpu_count() or 1)
    chunks = [files[k::jobs] for k in range(jobs)]
    with ProcessPoolExecutor(jobs) as pool:
        done = sum(pool.map(_compile, chunks))
    print(f"        bytecode of the {done} modules panbench's commands import ({time.perf_counter() - t:.1f} s{how}"
          + (f"; not imported: {', '.join(failed)}" if failed else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
