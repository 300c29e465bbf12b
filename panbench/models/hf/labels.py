"""How a Hugging Face model's labels (``id2label``) map to the dataset's categories: by name, with the
spelling rule written down in docs/huggingface.md."""

from __future__ import annotations

from typing import Any

from panbench.errors import PanbenchError

PLACEHOLDERS = ("n/a",)  # DETR's label name for the COCO ids no category uses: never predicted, never mapped


def _label_key(name: str) -> str:
    """Case, surrounding and repeated spaces, and ``_`` for a space do not count."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _stem(name: str) -> str:
    """:func:`_label_key` without COCO panoptic's ``-merged`` and then ``-other`` suffixes
    (``wall-other-merged``: wall)."""
    n = _label_key(name)
    for suffix in ("-merged", "-other"):
        n = n[: -len(suffix)] if n.endswith(suffix) else n
    return n


def _few(items: list[str], k: int = 5) -> str:
    return ", ".join(repr(x) for x in items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


def map_labels(id2label: dict[int, str], categories: Any, where: str) -> tuple[list[int], list[int], list[int]]:
    """The model's labels -> the dataset's categories, by name: the exact name; else the one category whose
    :func:`_label_key` form is the label's; else the one category whose :func:`_stem` is the label's.  DETR's
    ``N/A`` placeholders are skipped.  Returns (the model label ids in panbench's label order: things first,
    then stuff, each by label id; the category id of each; the skipped label ids).  Refuses labels that map
    to no category (naming them) and two labels mapping to one category."""
    exact = dict(zip(categories.names, categories.ids))
    by: dict[str, dict[str, list[int]]] = {"norm": {}, "stem": {}}
    for n, cid in zip(categories.names, categories.ids):
        by["norm"].setdefault(_label_key(n), []).append(cid)
        by["stem"].setdefault(_stem(n), []).append(cid)
    mapping: dict[int, int] = {}
    unmapped, skipped = [], []
    for hid, name in sorted((int(k), v) for k, v in id2label.items()):
        if _label_key(name) in PLACEHOLDERS:
            skipped.append(hid)
            continue
        cid = exact.get(name)
        for kind, key in (("norm", _label_key(name)), ("stem", _stem(name))):
            if cid is None and len(by[kind].get(key, [])) == 1:
                cid = by[kind][key][0]
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
