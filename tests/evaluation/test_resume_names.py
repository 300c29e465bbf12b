"""The line a resume prints about the evaluators whose shares the cache lacks names them as the run asks for them
(``--rules torchmetrics``: ``rules torchmetrics``), never by the cache's internal keys (``Rules@2:torchmetrics/7``);
a user's evaluator by its own ``name@version``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import GENERATED_CATS as CATS

from panbench.evaluation.storage import share_names
from panbench.evaluators import Evaluators
from panbench.pq.matching import CategoryTable


def test_each_evaluator_is_named_as_the_run_asks_for_it_not_by_its_cache_key() -> None:
    class Mine:
        name = "ImageCount"

    members = Evaluators.for_run(CategoryTable.from_coco(CATS), ap=True, rules=("panopticapi", "torchmetrics"),
                                 extra=[Mine()]).members
    assert share_names(members) == {"PQ@1": "PQ", "Analyses@1": "the analyses", "AP@1": "AP",
                                    "SemanticConfusion@1": "mIoU",
                                    "Rules@2:torchmetrics/7": "rules panopticapi,torchmetrics",
                                    "ImageCount@1": "ImageCount@1"}  # the user's own name and version


def test_the_resume_line_names_the_rules_lacking_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    """``Run._say_resumed`` (what ``eval`` prints when the cache lacks some shares) on a run asked for
    ``--rules torchmetrics,eomt`` whose cache holds none of their shares."""
    from panbench.evaluation.run import Run

    evaluators = Evaluators.for_run(CategoryTable.from_coco(CATS), rules=("torchmetrics", "eomt"))
    run = SimpleNamespace(rank=0, spec=SimpleNamespace(name="demo-panoptic-fpn"), opts=SimpleNamespace(resume=True))
    part = SimpleNamespace(setting=None, evaluators=evaluators, done=frozenset({0, 1}))
    cache = SimpleNamespace(dir=Path("cache"))
    Run._say_resumed(run, part, cache, {"Rules@2:torchmetrics/7,eomt/9": 2}, 2)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "resuming demo-panoptic-fpn: the cache holds no share of rules torchmetrics,eomt (2 images)" in err, err
    assert "Rules@" not in err
