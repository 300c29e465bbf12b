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


def rule_list(rules: object, where: str = "rules") -> tuple[str, ...]:
    """The Python API's ``rules=``: one name, or names in a list or tuple (none: ()), checked by :func:`check_rules`;
    anything else refused in one line."""
    if rules is None or rules == () or rules == []:
        return ()
    if isinstance(rules, str):
        return check_rules([rules], where)
    if not isinstance(rules, (list, tuple, set, frozenset)) or not all(isinstance(r, str) for r in rules):
        raise InputError(f"{where}: {rules!r} is not rule names; give one name or a list of them, e.g. "
                         f"{where}=['torchmetrics'] (of {', '.join(RULES)})")
    return check_rules(list(rules), where)
