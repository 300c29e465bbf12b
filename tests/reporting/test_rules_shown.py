"""The numbers under other implementations' rules (``--rules``, docs/pq-rules.md) where a reader looks: ``table`` in
every format and the report (a column ``PQ [RULE]`` beside panbench's PQ, never ranked), ``eval --grid``'s table of
settings and the report's grids, ``eval``/``score``'s lines; a number a rule leaves undefined (NaN) as ``n/a``, never
0; no number as ``-0.00``; ``ls`` marks a published PQ computed under other rules than panopticapi's."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest

from panbench.cli import main
from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import make_record, write_record
from panbench.reporting.grids import Grid, grid_frame
from panbench.reporting.labels import decimals
from panbench.reporting.tables import cell, comparison, format_table
from panbench.reporting.text import attribution_lines, format_grid, rules_lines

RES = {**{k: 50.0 for k in METRIC_KEYS}, "pixel_acc": 1.0, "mIoU": 2.0, "mDice": 3.0, "n_images": 2,
       "n_categories": {"All": 2, "Things": 1, "Stuff": 1}, "per_class": {}, "unlisted_gt": {"pixels": 0, "images": 0}}
TORCHMETRICS = {**{k: 41.25 for k in METRIC_KEYS}, "per_class": {}}
UNDEFINED = {**{k: math.nan for k in METRIC_KEYS}, "per_class": {}}  # an all-VOID prediction under torchmetrics'


def _record(model: str, pq: float, **fields):
    return make_record({**RES, "PQ": pq}, model=model, dataset="coco", device="cpu", date="2026-11-29T00:00:00Z",
                       provenance={}, selection={"limit": None, "subset": None, "images": 2}, **fields)


def _runs() -> list:
    """``best`` with two rules (listed eomt first), ``void`` with torchmetrics' undefined, ``plain`` with none but a
    PQ under torchmetrics' rules that would rank it first were the rules ranked."""
    return [_record("void", 45.0, rules={"torchmetrics": UNDEFINED}),
            _record("best", 50.0, rules={"eomt": {**TORCHMETRICS, "PQ": 6.02, "absent_classes": 125,
                                                  "classes_averaged": 133}, "torchmetrics": TORCHMETRICS}),
            _record("plain", 40.0, rules={"panopticapi": {k: 40.0 for k in METRIC_KEYS}, "torchmetrics":
                                          {**TORCHMETRICS, "PQ": 99.0}})]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    for r in _runs():
        write_record(tmp_path, r)
    return tmp_path


def _table(results: Path, fmt: str, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[str, str]:
    assert main(["table", "--results", str(results), "--format", fmt, *more]) == 0
    got = capsys.readouterr()
    return got.out, got.err


def test_table_csv_holds_each_rule_s_metrics_beside_panbench_s_undefined_as_n_a(results, capsys) -> None:
    out, err = _table(results, "csv", capsys)
    assert ",PQ[torchmetrics],PQ[eomt]," in out.splitlines()[0]  # the rules' order, panopticapi's (PQ) left out
    assert "PQ[panopticapi]" not in out
    df = pd.read_csv(io.StringIO(out), index_col="model")
    assert list(df.index) == ["best", "void", "plain"]  # ranked on panbench's PQ, not on any rule's
    assert df.loc["best", "PQ[torchmetrics]"] == 41.25 and df.loc["best", "PQ[eomt]"] == 6.02
    assert pd.isna(df.loc["void", "PQ[torchmetrics]"]) and pd.isna(df.loc["plain", "PQ[eomt]"])
    rows = {line.split(",")[0]: line for line in out.splitlines()}
    assert ",n/a," in rows["void"] and ",n/a," not in rows["plain"]  # undefined; not computed: empty
    assert "PQ [RULE]: PQ under another implementation's rules" in err
    assert "PQ [eomt]: a mean over every class, one absent (no TP, FP or FN under the rule) counted as 0; classes " \
           "absent: 125 of 133 in best" in err
    every, _ = _table(results, "csv", capsys, "--all-columns")
    head = every.splitlines()[0].split(",")
    ruled = [c for c in head if "[" in c]
    assert ruled == [f"{k}[{rule}]" for rule in ("torchmetrics", "eomt") for k in METRIC_KEYS]


@pytest.mark.parametrize("fmt", ["md", "latex", "html"])
def test_table_shows_pq_under_each_rule_n_a_where_undefined_never_zero(results, capsys, fmt) -> None:
    out, _ = _table(results, fmt, capsys)
    table = out.replace("<wbr>", "")
    heads = {"md": ("PQ [torchmetrics]", "PQ [eomt]"), "html": ("PQ [torchmetrics]", "PQ [eomt]"),
             "latex": ("PQ\\\\{}[torchmetrics]", "PQ [eomt]")}[fmt]
    assert all(h in table for h in heads), table
    void = next(line for line in table.splitlines() if "void" in line and "n/a" in line) if fmt != "html" else \
        table[table.rindex("<span class='t'>void</span>"):table.rindex("<span class='t'>plain</span>")]
    assert "n/a" in void and "0.00" not in void.replace("50.00", "").replace("45.00", "").replace("2.00", "")
    assert "n/a: undefined under that rule" in table


def test_the_report_shows_pq_under_each_rule_with_its_note(results, monkeypatch) -> None:
    from panbench.reporting import report

    monkeypatch.setattr(report, "_plots", lambda page, groups: ("", []))  # the figures: other tests draw them
    assert main(["report", "--results", str(results)]) == 0
    page = (results / "report.html").read_text()
    compared = page[page.index("<h3>PQ / SQ / RQ</h3>"):page.index("<h3>details</h3>")]
    assert "<th>PQ [torchmetrics]</th>" in compared and "<th>PQ [eomt]</th>" in compared
    assert "<td>41.250</td>" in compared and "<td>n/a</td>" in compared
    assert "PQ [RULE]: PQ under another implementation" in compared


def _grid() -> tuple[dict, list]:
    """A grid's summary of two settings and their records: the first with torchmetrics' PQ, the second undefined."""
    recs = [_record("m", 50.0, rules={"torchmetrics": TORCHMETRICS, "eomt": {**TORCHMETRICS, "absent_classes": 0,
                                                                            "classes_averaged": 133}},
                    record="runs/a.json"),
            _record("m", 45.0, rules={"torchmetrics": UNDEFINED, "eomt": {**UNDEFINED, "absent_classes": 133,
                                                                          "classes_averaged": 133}},
                    record="runs/b.json")]
    settings = [{"label": f"object_mask_thr={v}", "values": {"object_mask_thr": v}, "default": k == 0,
                 "record": r.record, "metrics": r.metrics} for k, (v, r) in enumerate(zip((0.8, 0.9), recs))]
    doc = {"model": "m", "dataset": "coco", "grid": {"object_mask_thr": [0.8, 0.9]}, "settings": settings,
           "default": 0, "best": 0, "best_note": "chosen on these images"}
    return doc, recs


def test_eval_grid_and_the_report_s_grid_show_each_setting_s_pq_under_each_rule() -> None:
    from panbench.reporting.report import _grids

    doc, recs = _grid()
    lines = format_grid(doc, recs).splitlines()
    head = next(line for line in lines if line.startswith("setting"))
    assert head.split()[-5:] == ["PQ_st", "PQ[torchmetrics]", "PQ[eomt]", "post", "ms"]
    first, second = (next(line for line in lines if f"object_mask_thr={v}" in line) for v in (0.8, 0.9))
    assert first.split()[-5:-3] == ["41.250", "41.250"] and second.split()[-3:-1] == ["n/a", "n/a"]
    assert head.index("PQ[torchmetrics]") + len("PQ[torchmetrics]") == second.index("n/a") + len("n/a")
    assert any(line.startswith("PQ[RULE]: PQ under that rule") for line in lines)
    assert any(line.endswith("classes absent: 133 of 133 in object_mask_thr=0.9") for line in lines)
    frame = grid_frame(Grid(doc, recs))  # the report's grid table
    assert list(frame["PQ[torchmetrics]"]) == [41.25, "n/a"]
    section = _grids([Grid(doc, recs)])
    assert "<th>PQ [torchmetrics]</th>" in section and "<td>n/a</td>" in section
    assert "PQ [RULE]: PQ under another implementation" in section
    assert "classes absent: 133 of 133 in object_mask_thr=0.9</p>" in section


def test_eval_and_score_lines_print_an_undefined_rule_as_n_a_never_zero() -> None:
    lines = rules_lines({"panopticapi": {k: 10.0 for k in METRIC_KEYS}, "torchmetrics": UNDEFINED})
    row = next(line for line in lines if line.strip().startswith("torchmetrics"))
    assert row.split()[1:] == ["n/a"] * 5 and "0.00" not in row
    assert any("n/a: undefined under that rule" in line for line in lines)
    assert not any("n/a" in line for line in rules_lines({"torchmetrics": TORCHMETRICS}))


def test_no_number_prints_as_negative_zero_and_a_nonzero_keeps_its_sign() -> None:
    rows = attribution_lines({"torchmetrics": [{"quirk": "float32 divisions", "PQ": -1e-9, "PQ_th": -0.004,
                                                "PQ_st": -0.006}]})
    assert rows[1].split()[-3:] == ["+0.00", "+0.00", "-0.01"]
    assert (decimals(-0.0004, ".3f"), decimals(-0.0, "8.2f"), decimals(math.nan, "6.2f")) == \
        ("0.000", "    0.00", "   n/a")
    assert cell({"reference": False, "diff": -1e-9, "interval": (-0.3, 0.2), "mark": ""}) == "+0.00 [-0.30, +0.20]"
    rec = _record("m", 50.0, published={"PQ": 50.0000001}, published_rules="panopticapi")  # a delta of -1e-7
    df = comparison([rec], vs_published=True)
    for fmt in ("md", "latex", "html"):
        text = format_table(df, fmt)
        assert "-0.0" not in text and "$-$0.0" not in text, fmt


def test_ls_marks_a_published_pq_with_its_rules_and_says_what_an_unmarked_one_is(capsys) -> None:
    assert main(["ls", "--only-dataset", "coco"]) == 0
    out = capsys.readouterr().out.splitlines()
    row = {line.split()[0]: line for line in out if line.strip()}
    assert "  46.7 (eomt)  " in row["hf-eomt_s-2x-640"]
    assert "  52.0  " in row["mask2former_r50"] and "52.0 (" not in row["mask2former_r50"]
    note = next(line for line in out if line.startswith("pub. PQ, PQ_th, PQ_st:"))
    assert "unmarked: computed under panopticapi's rules" in note and "marked (eomt)" in note
