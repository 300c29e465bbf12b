"""An import hook (installed by ``site-packages/panbench-mmcv-ext.pth``) that makes ``mmcv._ext`` importable in any
Python panbench is in, so that MMDetection's own tools run with mmcv-lite: it runs :func:`panbench.ops.install`."""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec

from panbench.ops import Bypass

NAME = "mmcv._ext"


class _Loader:
    def create_module(self, spec):  # the module install() chose: compiled mmcv's or panbench's stand-in
        from panbench import ops

        ops.install()  # its own import of a compiled mmcv._ext goes to the ordinary finders (Bypass)
        module = sys.modules[NAME]
        self.own_spec = getattr(module, "__spec__", None)  # the import machinery overwrites it next
        return module

    def exec_module(self, module) -> None:  # already executed by its own import: its own spec back
        module.__spec__ = self.own_spec


class _Finder:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != NAME or Bypass.on or NAME in sys.modules:
            return None
        return ModuleSpec(NAME, _Loader())


def register() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) or f is _Finder for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder)


register()
