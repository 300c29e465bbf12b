"""The ``panbench`` command line: one module per command, each with ``add_parser(sub, common)`` and ``run(args) ->
int`` (docs/cli-design.md, docs/architecture.md).  :func:`main` builds the parser of the command it runs alone, the
whole parser only for ``--help``, ``--version`` or a misspelt command.  Errors in the input are one line on stderr
with exit code 2; ``--debug`` shows the traceback."""

from __future__ import annotations

import _thread
import argparse
import errno
import gc
import importlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

from panbench.announce import enable as announce_phases
from panbench.cli.options import Common
from panbench.cli.usage import Parser
from panbench.collector import collector_paused
from panbench.errors import PanbenchError
from panbench.interrupts import INTERRUPTED
from panbench.package import __version__

# the modules of panbench.cli, one per command, in the order --help lists them
COMMANDS = ("doctor", "ls", "eval", "speed", "robustness", "submit", "status", "table", "compare", "images", "plot",
            "viz", "report", "score", "data")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone (the other commands' modules are not imported)."""
    if command is not None and command not in COMMANDS:
        raise ValueError(f"no command {command!r}; one of {', '.join(COMMANDS)}")
    parser = Parser(prog="panbench",
                    description="Benchmark panoptic segmentation models from the MMDetection zoo on COCO panoptic.")
    parser.add_argument("--version", action="version", version=f"panbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = Common()  # the parent parsers, each built when a command first asks for it
    for name in COMMANDS if command is None else (command,):
        module = importlib.import_module(f"panbench.cli.{name}")
        module.add_parser(sub, common).set_defaults(func=module.run)
    _debug_everywhere(sub)
    return parser


def _debug_everywhere(sub: argparse._SubParsersAction) -> None:
    """Accept ``--debug`` after the command too (``panbench eval ... --debug``)."""
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _debug_everywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line of ``argv`` (default: ``sys.argv``), as the ``panbench`` console script runs it
    (:func:`panbench.console.start`)."""
    _fresh_state()
    noted = _note_interrupts()
    try:
        code = _main(argv)
    except KeyboardInterrupt:  # before the command began (its parser, its imports): nothing to resume
        print(INTERRUPTED, file=sys.stderr)
        code = 130
    except Exception:
        if not _SIGINT["seen"]:
            raise
        # a Ctrl-C inside a C extension's import (numpy's, under torch's) can surface as another error
        # ("cannot load module more than once per process"): still the interrupt
        print(INTERRUPTED, file=sys.stderr)
        code = 130
    finally:
        if noted is not None:
            sys.unraisablehook = noted[1]  # first: an interrupt raised again from now on would land outside it
            signal.signal(signal.SIGINT, noted[0])
    if argv is None:
        # the console script's command is over, the interpreter exits (a fraction of a second): a Ctrl-C now
        # changes nothing, where it would kill the exit's teardown half way (Python's handler is gone by then)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if code == 130:  # interrupted: exit now with the line's code (an interrupt the import machinery noted as
            sys.stdout.flush()  # unhandled would make the interpreter's exit kill itself with SIGINT, exit -2)
            sys.stderr.flush()
            os._exit(130)
    return code


_SIGINT = {"seen": False}


def _on_sigint(signum: int, frame: Any) -> None:
    _SIGINT["seen"] = True
    raise KeyboardInterrupt


def _interrupt_soon() -> None:
    time.sleep(0.001)
    if isinstance(sys.unraisablehook, _RaisedAgain):  # main() still runs the command
        _thread.interrupt_main(signal.SIGINT)


class _RaisedAgain:
    """A KeyboardInterrupt raised where Python ignores exceptions (a weakref callback such as the import
    machinery's, a ``__del__``) raised again in the code that runs next, not printed and lost; any other
    exception left to ``hook``."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    def __call__(self, unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            # from another thread, a moment later (its start and sleep): the main thread takes it once this hook
            # has returned
            _thread.start_new_thread(_interrupt_soon, ())
        else:
            self.hook(unraisable)


def _note_interrupts() -> tuple[Any, Any] | None:
    """Python's SIGINT handler (KeyboardInterrupt) replaced by one that also notes the interrupt, and a Ctrl-C that
    Python would ignore raised again (:class:`_RaisedAgain`), in the main thread where the handler is Python's;
    returns the handler and the hook to put back (None: left as they were)."""
    _SIGINT["seen"] = False
    if threading.current_thread() is not threading.main_thread():
        return None
    old = signal.getsignal(signal.SIGINT)
    if old is not signal.default_int_handler:
        return None
    signal.signal(signal.SIGINT, _on_sigint)
    hook, sys.unraisablehook = sys.unraisablehook, _RaisedAgain(sys.unraisablehook)
    return old, hook


def _main(argv: Sequence[str] | None) -> int:
    argv, exits = list(sys.argv[1:] if argv is None else argv), argv is None  # exits: the console script's
    with collector_paused():  # the parser and the command's modules: long-lived objects, no garbage to collect
        parser = build_parser(_command_of(argv))
        args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    before = announce_phases(not getattr(args, "no_progress", False))  # the phase lines (panbench.announce)
    try:
        return _run(args, argv, exits)
    finally:
        announce_phases(before)  # as the caller had it: a command's --no-progress ends with it


def _run(args: argparse.Namespace, argv: list[str], exits: bool) -> int:
    """The parsed command run, its one-line errors and exit codes."""
    from panbench.records.provenance import command_line

    args.command_line = command_line(argv)  # what a record keeps: the command as typed, shell-quoted
    if not args.debug:  # library deprecation chatter hides panbench's own messages
        for category in (UserWarning, DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
    try:
        if getattr(args, "launcher", None) == "slurm":
            from panbench.cluster.launcher import apply_launcher

            apply_launcher(args.launcher)
        with collector_paused(getattr(args, "no_cycles", False)):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        if exits:  # the exit's last collection then skips what is left (seconds after torch and mmdet imports)
            gc.freeze()
        return code
    except BrokenPipeError:  # `panbench table | head`: the reader has gone, nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush at exit goes nowhere
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by the closed pipe
    except ModuleNotFoundError as e:  # an extra not installed (pip install "panbench[mmdet]"): one line, exit 2
        from panbench.models.families import extras
        from panbench.resources import missing_extra_message

        if not (fix := missing_extra_message(e.name, extras())):
            raise
        return _error(args, fix, 2)
    except OSError as e:
        if (message := _write_error(args, e)) is None:
            raise
        return _error(args, message, 2)
    except PanbenchError as e:
        return _error(args, str(e), e.exit_code)
    except KeyboardInterrupt:
        print(f"{INTERRUPTED}{_resume_hint(args)}", file=sys.stderr)
        if exits:  # as after a command: no last collection over torch's and mmdet's objects at exit (seconds)
            gc.freeze()
        return _abort_distributed(130)


def _fresh_state() -> None:
    """A command anew, where main() is called again in one process (tests): the cache folders it opened forgotten,
    the damaged files under results/ named again (each once per command)."""
    if "panbench.evaluation.storage" in sys.modules:
        sys.modules["panbench.evaluation.storage"]._OPENED.clear()
    if "panbench.records.io" in sys.modules:
        sys.modules["panbench.records.io"]._SKIPPED.clear()


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names where only ``--debug`` comes before it; else None (the whole parser answers)."""
    for arg in argv:
        if arg != "--debug":
            return arg if arg in COMMANDS else None
    return None


def _error(args: argparse.Namespace, message: str, code: int) -> int:
    """Bad input: one line on stderr (after the traceback with ``--debug``) and ``code``, with or without it."""
    if args.debug:
        import traceback

        traceback.print_exc()
    print(f"panbench: error: {message}", file=sys.stderr)
    return _abort_distributed(code)


_WRITE_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST,
                 errno.EISDIR}


def _write_error(args: argparse.Namespace, e: OSError) -> str | None:
    """The line of a failed write (an error only writing gives, or a missing file where the command writes) with its
    fix, naming the options that chose where the command writes; None where ``e`` is no failed write."""
    if not e.filename or not (e.errno in _WRITE_ERRORS or e.errno == errno.ENOENT and _written_by(args, e.filename)):
        return None
    options = _written_by(args, e.filename) or _written_by(args)
    where = f" or pass another {' / '.join(options)}" if options else ""
    return f"{e.filename}: {e.strerror}; make the folder writable (free space, permissions, a file in the way){where}"


def _written_by(args: argparse.Namespace, filename: str | None = None) -> list[str]:
    """The options that chose where the command writes; with ``filename``, those whose path holds it or lies under
    it: a missing file there is a failed write (a folder that cannot be made, as under /proc), not missing input."""
    f = str(filename)
    return [o for o in ("--results", "--out", "--save-predictions", "--per-image", "--root")
            if (path := getattr(args, o[2:].replace("-", "_"), None)) is not None
            and (filename is None or f.startswith(str(path)) or str(path).startswith(f))]


def _resume_hint(args: argparse.Namespace) -> str:
    """After Ctrl-C in ``eval`` (and ``robustness``): how many images the resume cache holds and how to resume from
    them.  ``args.models`` (``eval``'s, set as each model starts and ends): the models finished, those left, the count
    of records this process has written at which the first of those left is finished too, and the count of caches
    opened before its own.  The cache is the running model's, one opened after those; before it is opened (the model
    loading), only the finished models are named.  Under torchrun, rank 0's line alone (the rank that writes the
    records) says how to resume; the others' end at ``panbench: interrupted``."""
    if os.environ.get("RANK", "0") != "0":
        return ""
    cache, io = sys.modules.get("panbench.evaluation.storage"), sys.modules.get("panbench.records.io")
    done, left, due, caches_before = getattr(args, "models", ([], [], None, 0))
    # the running model's records all written (each counted as its name is claimed): it is done, its cache no
    # longer the one to resume from
    recorded = bool(left) and due is not None and io is not None and io.records_written() >= due
    if recorded:
        done, left = [*done, left[0]], left[1:]
    if done and not left:  # every model finished, its record written: nothing to resume
        return ""
    try:
        opened = not recorded and cache is not None and cache.opened() > caches_before
        n = cache.cached_images() if cache is not None and opened else None
    except Exception:  # never let the hint hide the interrupt
        return ""
    if n is None:
        return f"; {', '.join(done)} finished; rerun with --model {','.join(left)} to go on" if done and left else ""
    no_resume, scored = getattr(args, "no_resume", False), f"from the {n} image{'s' if n != 1 else ''} already scored"
    if n == 0:  # interrupted before its first image was cached: nothing to resume from
        if done and left:
            return f"; {', '.join(done)} finished; rerun with --model {','.join(left)} to run the others"
        return "; no image was scored yet: rerun the same command to start"
    if done and left:  # a multi-model run: the finished models are not run (nor recorded) again
        return (f"; {', '.join(done)} finished; rerun with --model {','.join(left)}"
                f"{' without --no-resume' if no_resume else ''} to resume {left[0]} {scored}")
    return f"; {'rerun without --no-resume' if no_resume else 'rerun the same command'} to resume {scored}"


def _abort_distributed(code: int) -> int:
    """Under torchrun, a rank that stops with an error tears its process group down and exits at once, so that the
    other ranks (on every node) fail in their next collective instead of waiting for the backend's timeout."""
    dist = sys.modules.get("torch.distributed")  # never imported here: torch's import may be what was interrupted
    try:
        if dist is None or not (dist.is_available() and dist.is_initialized()):
            return code
    except Exception:  # a torch half imported (Ctrl-C in its import) has no process group
        return code
    from panbench.evaluation.runtime import abort_distributed

    abort_distributed()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
