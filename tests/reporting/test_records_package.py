"""``panbench.records`` imports its modules on first use: a command that needs only the provenance helpers (every
command's ``command_line``) does not import the record's schema, builder or reader, and every exported name still
resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_the_provenance_helpers_import_no_other_records_module() -> None:
    code = ("import sys, panbench.records.provenance; "
            "print(sorted(m for m in sys.modules if m.startswith('panbench.records')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['panbench.records', 'panbench.records.provenance']"


def test_every_exported_name_resolves_and_an_unknown_one_is_an_attribute_error() -> None:
    import panbench.records as records

    for name in records.__all__:
        assert getattr(records, name).__module__.startswith("panbench.records.")
    namespace: dict[str, object] = {}
    exec("from panbench.records import *", namespace)  # noqa: S102 - the star import is what is tested
    assert set(records.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'not_a_record_name'"):
        records.not_a_record_name  # noqa: B018
