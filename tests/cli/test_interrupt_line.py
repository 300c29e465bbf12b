"""The line Ctrl-C leaves (panbench/cli/__init__.py): it names the images of the running model's own cache, never
those of a cache opened before it; it comes even where the interrupt cut torch's import short; and an interrupt in
the command line's parsing is the same one line, exit 130.  The real commands interrupted at random times are
tests/cli/test_interrupt_system.py's and test_interrupt_commands_system.py's."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from panbench import cli
from panbench.evaluation import storage


def test_ctrl_c_while_the_next_model_loads_names_the_finished_models_not_the_cache_before(tmp_path,
                                                                                         monkeypatch) -> None:
    first = tmp_path / "cache" / "demo-mask2former-demo-0123"  # the first model's cache, 3 images in it
    monkeypatch.setattr(storage, "_OPENED", [first])
    monkeypatch.setattr(storage, "cached_images", lambda: 3)
    args = argparse.Namespace(models=(["demo-mask2former"], ["demo-maskformer", "demo-panoptic-fpn"], None, 1),
                              no_resume=False)
    assert cli._resume_hint(args) == ("; demo-mask2former finished; rerun with --model demo-maskformer,"
                                      "demo-panoptic-fpn to go on")
    monkeypatch.setattr(storage, "_OPENED", [first, tmp_path / "cache" / "demo-maskformer-demo-4567"])
    assert cli._resume_hint(args) == ("; demo-mask2former finished; rerun with --model demo-maskformer,"
                                      "demo-panoptic-fpn to resume demo-maskformer from the 3 images already scored")


def test_under_torchrun_only_rank_0_says_how_to_resume(tmp_path, monkeypatch) -> None:
    """Rank 0 writes the records (and counts them): another rank's line would name a recorded model to rerun."""
    monkeypatch.setattr(storage, "_OPENED", [tmp_path / "cache" / "demo-maskformer-demo-4567"])
    monkeypatch.setattr(storage, "cached_images", lambda: 3)
    args = argparse.Namespace(models=(["demo-mask2former"], ["demo-maskformer"], None, 0), no_resume=False)
    monkeypatch.setenv("RANK", "0")
    assert cli._resume_hint(args) == ("; demo-mask2former finished; rerun with --model demo-maskformer to resume "
                                      "demo-maskformer from the 3 images already scored")
    monkeypatch.setenv("RANK", "1")
    assert cli._resume_hint(args) == ""


def test_ctrl_c_in_torchs_import_still_ends_with_the_code(monkeypatch) -> None:
    half = types.ModuleType("torch.distributed")  # what an interrupted `import torch` leaves in sys.modules

    def broken() -> bool:
        raise RuntimeError("duplicate registrations for aten.linspace.Tensor_Tensor")

    half.is_available = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.distributed", half)
    assert cli._abort_distributed(130) == 130


def test_ctrl_c_while_the_command_line_is_read_is_one_line(monkeypatch, capsys) -> None:
    def interrupted(command: str | None = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        code = cli.main(["table"])
    except KeyboardInterrupt:
        pytest.fail("the interrupt left main() as a KeyboardInterrupt (a traceback)")
    assert code == 130
    assert capsys.readouterr().err == "panbench: interrupted\n"


def test_ctrl_c_that_a_c_extensions_import_turns_into_another_error_is_one_line(monkeypatch, capsys) -> None:
    """numpy's C module interrupted half way through its import under torch's: the import is retried and fails
    with "cannot load module more than once per process", the KeyboardInterrupt lost on the way."""
    import os
    import signal

    from panbench.cli import table

    def run(args: argparse.Namespace) -> int:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as a terminal sends it
        except KeyboardInterrupt:
            pass  # what the import machinery did with it
        raise ImportError("cannot load module more than once per process")

    monkeypatch.setattr(table, "run", run)
    # main() notes interrupts only where Python's own handler is in place, as in the console script; pytest run in
    # the background of a non-interactive shell starts with SIGINT ignored
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli.main(["table"]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, before)
    assert capsys.readouterr().err.strip().splitlines()[-1] == "panbench: interrupted"


def test_ctrl_c_inside_a_callback_whose_exceptions_python_ignores_still_ends_the_command(monkeypatch, capsys) -> None:
    """The signal handled inside a weakref callback (the import machinery's module locks have one): Python prints
    "Exception ignored in" with a traceback and goes on; the command ends with the one line all the same, at once."""
    import gc
    import os
    import signal
    import time
    import weakref

    from panbench.cli import table

    reached = []

    def run(args: argparse.Namespace) -> int:
        class Thing:
            pass

        thing = Thing()
        ref = weakref.ref(thing, lambda _: os.kill(os.getpid(), signal.SIGINT))  # noqa: F841
        del thing  # the callback runs here, the Ctrl-C inside it
        gc.collect()
        deadline = time.monotonic() + 10  # work on: the interrupt must end it long before
        while time.monotonic() < deadline:
            pass
        reached.append("the work after the interrupt")
        return 0

    monkeypatch.setattr(table, "run", run)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in the console script (see above)
    hook = sys.unraisablehook
    try:
        assert cli.main(["table"]) == 130
        assert sys.unraisablehook is hook and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
    err = capsys.readouterr().err
    assert not reached and "Traceback" not in err and err.strip().splitlines()[-1] == "panbench: interrupted"


def test_an_error_without_ctrl_c_is_still_raised(monkeypatch) -> None:
    from panbench.cli import table

    def run(args: argparse.Namespace) -> int:
        raise ImportError("cannot load module more than once per process")

    monkeypatch.setattr(table, "run", run)
    with pytest.raises(ImportError):
        cli.main(["table"])


def test_ctrl_c_while_the_console_script_imports_the_command_line_is_one_line(tmp_path) -> None:
    """The console script (and ``python -m panbench``): a Ctrl-C that comes while ``panbench.cli`` is imported, before
    its own handling is in place, ends in ``panbench: interrupted``, exit 130, no traceback."""
    import subprocess
    import sys

    code = """
import builtins, os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as an interactive shell starts a command
real = builtins.__import__
def importing(name, *args, **kwargs):
    if name == "panbench.cli":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
    return real(name, *args, **kwargs)
builtins.__import__ = importing
from panbench.console import start
sys.argv = ["panbench", "ls"]
sys.exit(start())
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (130, "", "panbench: interrupted\n"), r
