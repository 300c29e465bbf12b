"""A transformers model's labels mapped to a dataset's categories by name (docs/huggingface.md, "Label mapping"):
:func:`map_labels`, pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panbench.errors import PanbenchError

PLACEHOLDERS = ("n/a",)  # DETR's label name for the COCO ids no category uses: never predicted, never mapped


def _label_key(name: str) -> str:
    """Case, surrounding and repeated spaces, and ``_`` for a space do not count."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _stem(name: str) -> str:
    """:func:`_label_key` without ``-merged`` then ``-other`` suffixes (``wall-other-merged``: wall)."""
    return _label_key(name).removesuffix("-merged").removesuffix("-other")


def _few(items: list[str], k: int = 5) -> str:
    return ", ".join(repr(x) for x in items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


def _keys(categories: Any, aliases: Mapping[str, str]) -> dict[str, dict[str, list[int]]]:
    """Each step's key -> the categories it names: ``norm`` (:func:`_label_key`), ``stem`` (:func:`_stem`), ``synonym``
    (each of a name's comma-separated synonyms: ``painting, picture``) and ``alias`` (the dataset's own
    table of the names checkpoints give its classes)."""
    by: dict[str, dict[str, list[int]]] = {"norm": {}, "stem": {}, "synonym": {}, "alias": {}}
    cid_of = dict(zip(categories.names, categories.ids))
    for n, cid in cid_of.items():
        by["norm"].setdefault(_label_key(n), []).append(cid)
        by["stem"].setdefault(_stem(n), []).append(cid)
        for word in dict.fromkeys(_label_key(w) for w in str(n).split(",")):
            by["synonym"].setdefault(word, []).append(cid)
    for label, name in aliases.items():
        if name in cid_of:
            by["alias"].setdefault(_label_key(label), []).append(cid_of[name])
    return by


def map_labels(id2label: dict[int, str], categories: Any, where: str,
               aliases: Mapping[str, str] | None = None) -> tuple[list[int], list[int], list[int]]:
    """The model's labels -> the dataset's categories by name (docs/huggingface.md): label ids, categories, skips.
    ``aliases``: the dataset's names of its classes as checkpoints label them (label -> category name)."""
    exact = dict(zip(categories.names, categories.ids))
    by = _keys(categories, aliases or {})
    mapping: dict[int, int] = {}
    unmapped, skipped = [], []
    for hid, name in sorted((int(k), v) for k, v in id2label.items()):
        if _label_key(name) in PLACEHOLDERS:
            skipped.append(hid)
            continue
        cid = exact.get(name)
        key = _label_key(name)
        for kind, k in (("norm", key), ("stem", _stem(name)), ("synonym", key), ("alias", key)):
            if cid is None and len(by[kind].get(k, [])) == 1:
                cid = by[kind][k][0]
        if cid is None:
            unmapped.append(name)
        else:
            mapping[hid] = cid
    if unmapped:
        raise PanbenchError(f"{where}: {len(unmapped)} of the model's {len(id2label)} labels are not categories of "
                            f"the dataset: {_few(unmapped)}; evaluate on the dataset the model was trained for "
                            "(--dataset) (label mapping rule: docs/huggingface.md)")
    owner: dict[int, int] = {}
    for hid, cid in mapping.items():
        if cid in owner:
            raise PanbenchError(f"{where}: the model's labels {id2label[owner[cid]]!r} and {id2label[hid]!r} both map "
                                f"to category {cid}; the model's labels must name distinct categories")
        owner[cid] = hid
    isthing = dict(zip(categories.ids, categories.isthing))
    order = sorted(mapping, key=lambda h: (not isthing[mapping[h]], h))
    return order, [mapping[h] for h in order], skipped



