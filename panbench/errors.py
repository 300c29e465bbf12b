"""The one error type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class PanbenchError(Exception):
    """Bad input or a refused operation; ``str(err)`` is the one-line message shown to the user: the file (or image)
    at fault and how to fix it."""

    exit_code = 2


class InputError(PanbenchError):
    """A file given to panbench is missing, malformed or inconsistent."""
