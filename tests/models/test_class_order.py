"""Class order on load: mmdet numbers classes in the annotation file's category order; a config whose
metainfo.classes differ from it, or whose thing/stuff split disagrees, is refused (never scored wrong)."""

from __future__ import annotations

import pytest

from panbench.errors import PanbenchError
from panbench.models.mmdet import mm
from panbench.pq.matching import CategoryTable


def test_same_order_maps_by_name() -> None:
    cats = CategoryTable([1, 4, 3, 7], ["disk", "tile", "sky", "grass"], [True, True, False, False])
    assert mm.label_to_category(["disk", "tile", "sky", "grass"], cats, "cfg.py") == [1, 4, 3, 7]


def test_other_order_is_refused() -> None:
    cats = CategoryTable([1, 3, 4, 7], ["disk", "sky", "tile", "grass"], [True, False, True, False])
    with pytest.raises(PanbenchError, match="class 1 is 'tile' in the config but 'sky'"):
        mm.label_to_category(["disk", "tile", "sky", "grass"], cats, "cfg.py")


def test_unknown_class_is_refused() -> None:
    cats = CategoryTable([1], ["disk"], [True])
    with pytest.raises(PanbenchError, match="'person' is not a category"):
        mm.label_to_category(["person"], cats, "cfg.py")


def test_thing_split_is_checked() -> None:
    class Head:
        num_things_classes = 1

    class Model:
        panoptic_fusion_head = Head()

    cats = CategoryTable([1, 4, 3], ["disk", "tile", "sky"], [True, True, False])
    with pytest.raises(PanbenchError, match="class 1 'tile' is a thing category"):
        mm.check_thing_split(Model(), ["disk", "tile", "sky"], cats, "cfg.py")
    Head.num_things_classes = 2
    mm.check_thing_split(Model(), ["disk", "tile", "sky"], cats, "cfg.py")
