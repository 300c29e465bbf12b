"""The Python API says why a PQ is low: ``compute()`` of predictions in another class order has a ``diagnosis``
and warns once per call, on every call (through the user's filters); a correct prediction and random labels give
neither."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS

from panbench import DiagnosisWarning, PanopticQuality
from panbench.data.synth import random_image

THING_IDS = [c["id"] for c in CATS if c["isthing"]]
STUFF_IDS = [c["id"] for c in CATS if not c["isthing"]]
# another class order that keeps the things/stuff split: each category written as the next of its kind
ORDER = {**dict(zip(THING_IDS, THING_IDS[1:] + THING_IDS[:1], strict=True)),
         **dict(zip(STUFF_IDS, STUFF_IDS[1:] + STUFF_IDS[:1], strict=True))}


def metric(relabel, n: int = 12) -> PanopticQuality:
    rng = np.random.default_rng(0)
    m = PanopticQuality(CATS)
    for k in range(n):
        gt = random_image(rng, 64, 80, CATS)  # predicted with the ground truth's masks
        segs = [{**s, "category_id": relabel(s["category_id"]), "iscrowd": 0} for s in gt.segments_info]
        m.update(gt.ids, segs, gt.ids, gt.segments_info, image_id=k)
    return m


def test_another_class_order_has_a_diagnosis_and_compute_warns_once():
    with pytest.warns(DiagnosisWarning) as caught:
        result = metric(ORDER.__getitem__).compute()
    assert len([w for w in caught if issubclass(w.category, DiagnosisWarning)]) == 1
    [finding] = result.diagnosis
    assert finding.kind == "category_mapping" and finding.pq_if_fixed is None
    assert finding.message in str(caught[0].message)
    assert result.all.pq < 0.05


@pytest.mark.parametrize("relabel", ["right", "random"])
def test_a_correct_prediction_and_random_labels_give_no_diagnosis_and_no_warning(relabel):
    rng = np.random.default_rng(1)
    ids = THING_IDS + STUFF_IDS
    m = metric((lambda c: c) if relabel == "right" else (lambda c: int(rng.choice(ids))))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosisWarning)
        result = m.compute()
    assert result.diagnosis == ()


def test_every_compute_of_a_training_loop_warns_again():
    """Python's default filter shows a message once per place; the diagnosis is shown every round."""
    m = metric(ORDER.__getitem__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            m.compute()  # one line: the same place every round
    found = [w for w in caught if issubclass(w.category, DiagnosisWarning)]
    assert len(found) == 3 and all(w.filename == __file__ for w in found)


@pytest.mark.parametrize("how", ["ignore", "once"])
def test_the_users_warning_filters_still_rule_the_diagnosis(how):
    m = metric(ORDER.__getitem__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings(how, category=DiagnosisWarning)
        for _ in range(3):
            m.compute()
    assert len([w for w in caught if issubclass(w.category, DiagnosisWarning)]) == (0 if how == "ignore" else 1)
