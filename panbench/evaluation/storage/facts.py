"""The model facts cache: what costs a model build or a forward pass to learn about a model (its parameters,
its GFLOPs on an input) and stays the same while the model, its input and the code that counts stay the same,
kept across commands in this user's cache folder (``model-facts/`` of
:func:`panbench.resources.user_cache_dir`: ``$PANBENCH_CACHE``, ``$XDG_CACHE_HOME/panbench`` or
``~/.cache/panbench``).  ``panbench ls`` reads its parameter and GFLOPs counts from it, ``eval`` its FLOPs pass.

One JSON file per key, ``<sha256 of the key's parts, 32 hex>.json``, holding the parts themselves, the facts and
when they were counted.  The parts name everything the facts depend on (the model's config or the files it is
read from, its weights where the count depends on them, the input, the device type, the versions of the packages
that build, run and count it, :data:`FACTS_FORMAT`), so that a change to any of them is a miss, never a stale
hit.  Entries are written atomically; one that does not read back (truncated, edited, another format, other
parts) is ignored and counted again.  ``PANBENCH_NO_FACTS_CACHE=1`` neither reads nor writes the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import panbench
from panbench.records.io import atomic_write_text
from panbench.records.provenance import now_iso
from panbench.resources import user_cache_dir

FACTS_FORMAT = 1  # part of every key: facts counted another way are never read
NO_FACTS_CACHE = "PANBENCH_NO_FACTS_CACHE"  # "1": count everything again, keep nothing
_WARNED: list[str] = []  # the cache folders already said to be unwritable (once per process)


def facts_dir() -> Path:
    """Where the entries are: ``model-facts/`` in this user's panbench cache."""
    return user_cache_dir() / "model-facts"


def facts_cache_on() -> bool:
    """Whether the cache is read and written (``PANBENCH_NO_FACTS_CACHE=1``: not)."""
    return os.environ.get(NO_FACTS_CACHE, "").strip() not in ("1", "true", "yes")


def _canonical(parts: dict[str, Any]) -> str:
    return json.dumps({**parts, "facts_format": FACTS_FORMAT}, sort_keys=True, default=str)


def facts_path(parts: dict[str, Any]) -> Path:
    """The entry of ``parts``."""
    return facts_dir() / f"{hashlib.sha256(_canonical(parts).encode()).hexdigest()[:32]}.json"


def read_facts(parts: dict[str, Any]) -> dict[str, Any] | None:
    """The facts stored under ``parts`` with the time they were counted (``counted``, ISO 8601); None when the
    cache is off, holds none, or its entry does not read back as an entry of these very parts."""
    if not facts_cache_on():
        return None
    try:
        entry = json.loads(facts_path(parts).read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(entry, dict) or not isinstance(entry.get("facts"), dict)
            or json.dumps(entry.get("key_parts"), sort_keys=True) != _canonical(parts)):
        return None
    return {**entry["facts"], "counted": entry.get("counted")}


def write_facts(parts: dict[str, Any], facts: dict[str, Any]) -> None:
    """Store ``facts`` under ``parts`` (atomically); a cache folder that cannot be written is said once on
    stderr, and the command goes on without it."""
    if not facts_cache_on():
        return
    path = facts_path(parts)
    entry = {"key_parts": json.loads(_canonical(parts)), "facts": facts, "counted": now_iso()}
    try:
        atomic_write_text(path, json.dumps(entry, indent=1, sort_keys=True, default=str))
    except OSError as e:
        if str(path.parent) not in _WARNED:
            _WARNED.append(str(path.parent))
            print(f"note: {path.parent}: cannot keep model facts there ({e.strerror or e}); they are counted again "
                  "next time (set PANBENCH_CACHE to a writable folder)", file=sys.stderr)


def package_versions(packages: Sequence[str]) -> dict[str, str | None]:
    """The installed versions of panbench, torch and ``packages`` as pip names them, read from their metadata
    (nothing is imported): part of every key."""
    from importlib import metadata

    out: dict[str, str | None] = {"panbench": panbench.__version__}
    for name in sorted({"torch", *packages}):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    if "mmcv" in packages and out["mmcv"] is None:  # the pure-Python wheel (panbench.ops serves its ops)
        try:
            out["mmcv-lite"] = metadata.version("mmcv-lite")
        except metadata.PackageNotFoundError:
            pass
    return out
