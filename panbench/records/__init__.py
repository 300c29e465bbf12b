"""The result record of one run, declared once: its schema (:mod:`.schema`), how it is built, written and read
(:mod:`.io`, the one place that migrates older records), its ``runs.csv`` row and speed (:mod:`.rows`) and the
provenance helpers (:mod:`.provenance`); its layer is docs/architecture.md's.  The names below are imported on first
use: a command that needs only :mod:`.provenance` (every command's ``command_line``) does not import the rest."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from panbench.records.io import external_fields, load_record, load_records, make_record, record_run, write_record
    from panbench.records.schema import RunRecord

__all__ = ["RunRecord", "external_fields", "load_record", "load_records", "make_record", "record_run", "write_record"]
_WHERE = {name: "schema" if name == "RunRecord" else "io" for name in __all__}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"panbench.records.{_WHERE[name]}"), name)
