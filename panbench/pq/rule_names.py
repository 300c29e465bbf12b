"""The names of the PQ rules (docs/pq-rules.md; computed by :mod:`panbench.pq.rules`), read by the command line
without numpy: standard library only."""

from __future__ import annotations

from panbench.errors import InputError

#: the rules, panbench's own (panopticapi's) first
RULES = ("panopticapi", "torchmetrics", "vernier-corrected", "eomt")


def check_rules(names: list[str] | tuple[str, ...], where: str = "--rules") -> tuple[str, ...]:
    """The rules named, in :data:`RULES`' order; an unknown name refused in one line."""
    if not names:
        raise InputError(f"{where}: name one or more of {', '.join(RULES)}")
    if unknown := [n for n in names if n not in RULES]:
        raise InputError(f"{where}: no rule {unknown[0]!r}; name one or more of {', '.join(RULES)}")
    return tuple(r for r in RULES if r in names)
