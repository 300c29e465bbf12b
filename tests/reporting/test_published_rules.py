"""``table --vs-published`` sets a published number beside the run's under the rules it was computed under
(docs/pq-rules.md): EoMT's checkpoints' PQ beside the run's PQ under EoMT's rules, the zoo's beside panopticapi's; a
rule the run did not compute or an unknown one gives no difference, and says so."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from panbench.cli import main
from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import make_record, write_record
from panbench.reporting.tables import comparison

RES = {**{k: 50.0 for k in METRIC_KEYS}, "pixel_acc": 1.0, "mIoU": 2.0, "mDice": 3.0, "n_images": 2,
       "n_categories": {"All": 2, "Things": 1, "Stuff": 1}, "per_class": {}, "unlisted_gt": {"pixels": 0, "images": 0}}
EOMT_PQ = {**{k: 40.0 for k in METRIC_KEYS}, "per_class": {}}


def _record(model: str, **fields):
    return make_record(RES, model=model, dataset="coco", device="cpu", date="2026-11-29T00:00:00Z",
                       provenance={}, selection={"limit": None, "subset": None, "images": 2}, **fields)


def test_a_published_number_meets_the_run_s_number_under_its_rules() -> None:
    recs = [_record("eomt", published={"PQ": 46.7}, published_rules="eomt", rules={"eomt": EOMT_PQ}),
            _record("eomt-old", published={"PQ": 46.7}, published_rules="eomt"),  # ran without EoMT's rules
            _record("zoo", published={"PQ": 52.0}, published_rules="panopticapi")]
    df = comparison(recs, vs_published=True)
    assert df.loc["eomt", "PQ_delta"] == pytest.approx(40.0 - 46.7) and df.loc["eomt", "PQ_under_rules"] == 40.0
    assert df.loc["eomt", "published_rules"] == "eomt"
    assert df.loc["eomt-old", "published_rules"] == "eomt (not computed)" and pd.isna(df.loc["eomt-old", "PQ_delta"])
    assert df.loc["zoo", "PQ_delta"] == pytest.approx(50.0 - 52.0) and df.loc["zoo", "published_rules"] == \
        "panopticapi"


def test_an_older_record_s_published_numbers_get_their_source_s_rules(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name, source in (("eomt", "tue-mps/eomt model_zoo/dinov2.md, COCO panoptic tables"),
                         ("zoo", "MMDetection model zoo")):
        rec = dict(_record(name, published={"PQ": 46.7}, published_source=source))
        rec.pop("published_rules", None)
        (tmp_path / "runs").mkdir(exist_ok=True)
        write_record(tmp_path, make_record(RES, **{k: v for k, v in rec.items() if k not in ("schema", *RES)}))
    capsys.readouterr()
    assert main(["table", "--results", str(tmp_path), "--vs-published", "--format", "csv"]) == 0
    rows = {line.split(",")[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert ",eomt (not computed)," in rows["eomt"] and ",panopticapi," in rows["zoo"]
