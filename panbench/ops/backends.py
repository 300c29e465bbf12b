"""The names of the two backends of mmcv's compiled functions (``PANBENCH_OPS``) and how to get mmcv's own:
what :mod:`panbench.ops` and its stand-in :mod:`panbench.ops.ext` both say, in a module that imports nothing."""

from __future__ import annotations

BACKENDS = ("mmcv", "panbench")
COMPILED_FIX = "compiled mmcv (PANBENCH_MMCV=compiled make setup, docs/setup.md)"


class Bypass:
    """While ``Bypass.on``, panbench's ``mmcv._ext`` import hook (:mod:`panbench.ops.hook`) stands aside, so that
    :func:`panbench.ops.install`'s import finds only a compiled ``mmcv._ext``."""

    on = False

    def __enter__(self) -> None:
        self.before, Bypass.on = Bypass.on, True

    def __exit__(self, *exc: object) -> None:
        Bypass.on = self.before
