"""``--cfg-options`` checked against the config they change: each key names a setting of the config (or one
that a model class reads with a default), each value has the kind of the value it replaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError


def check_cfg_options(cfg: Any, options: dict[str, Any], path: Path | str) -> None:
    """Each ``--cfg-options`` key names a setting of the config (else the closest one is proposed) and each value
    has the kind of the value it replaces (a number for a number, a list for a list, ...); the config's None
    values take anything.  A mistyped key would otherwise add a setting that nothing reads."""
    import difflib

    for key, value in options.items():
        node: Any = cfg
        parts = key.split(".")
        for depth, part in enumerate(parts):
            here = ".".join(parts[:depth]) or "the config's top level"
            if isinstance(node, list | tuple) and part.isdigit():
                if int(part) >= len(node):
                    raise PanbenchError(f"--cfg-options {key}: {here} has {len(node)} entries (index {part} is "
                                        f"out of range) in {path}; use an index below {len(node)}")
                node = node[int(part)]
                continue
            if not hasattr(node, "keys"):
                raise PanbenchError(f"--cfg-options {key}: {here} is {type(node).__name__}, not a dict, in {path}; "
                                    "set it whole or choose a key of the config")
            if part not in node:
                read = keys_read_with_default(cfg) if depth == len(parts) - 1 else {}
                if part in read:  # a setting the code reads with a default (object_mask_thr of Mask2Former)
                    node = read[part]
                    break
                keys = sorted({str(k) for k in node.keys()} | set(read))
                near = difflib.get_close_matches(part, keys, n=1, cutoff=0.6)
                hint = (f"did you mean {'.'.join(parts[:depth] + [near[0]])}?" if near
                        else f"the keys of {here} are {', '.join(keys)[:300]}")
                raise PanbenchError(f"--cfg-options {key}: {path} has no key '{part}' under {here}; {hint}")
            node = node[part]
        _check_kind(key, node, value)


def keys_read_with_default(cfg: Any) -> dict[str, Any]:
    """The settings that the model's classes read from their configs with a default, ``cfg.get('key', default)``
    (MaskFormerFusionHead reads ``object_mask_thr``, absent from the zoo configs), with that default (None
    when it is not a literal): found in the source of every class the config's ``model`` names by ``type``."""
    import ast
    import inspect
    import re

    from mmdet.registry import MODELS

    types_: set[str] = set()

    def walk(v: Any) -> None:
        if hasattr(v, "keys"):
            if isinstance(v.get("type"), str):
                types_.add(v["type"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(cfg.get("model"))
    out: dict[str, Any] = {}
    for t in sorted(types_):
        cls = MODELS.get(t)
        try:
            module = inspect.getmodule(cls) if cls is not None else None
            src = inspect.getsource(module) if module is not None else ""
        except (OSError, TypeError):
            continue
        for name, default in re.findall(r"cfg\.get\(\s*['\"](\w+)['\"]\s*(?:,\s*([^()]*?))?\s*\)", src):
            try:
                out.setdefault(name, ast.literal_eval(default) if default else None)
            except (ValueError, SyntaxError):
                out.setdefault(name, None)
    return out


def _check_kind(key: str, old: Any, new: Any) -> None:
    """``new`` has the kind of ``old`` (None: any), else a one-line error showing the value it replaces."""
    def kind(v: Any) -> str:
        if v is None:
            return "none"
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int | float):
            return "number"
        if isinstance(v, str):
            return "string"
        if isinstance(v, list | tuple):
            return "list"
        return "dict" if hasattr(v, "keys") else type(v).__name__

    k_old, k_new = kind(old), kind(new)
    if k_old in ("none", k_new) or k_new == "none":
        return
    raise PanbenchError(f"--cfg-options {key}={new!r}: expected a {k_old} like the config's value {old!r}, got a "
                        f"{k_new}; e.g. {key}={old!r}")
