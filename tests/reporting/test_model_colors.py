"""A model's colour is assigned once per results folder and kept in RESULTS/colors.json: it stays as records of
other models and datasets come and go, `plot`, `robustness` and the report read the same file, and the error
types and corruption groups have colours no model has.  From the fixture record (invented numbers,
tests/fixtures/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from panbench.cli import main
from panbench.errors import InputError
from panbench.records.io import record_from_json, write_record
from panbench.records.schema import RunRecord
from panbench.reporting.colors import (
    COLORS_FILE,
    ERROR_COLORS,
    GROUP_COLORS,
    MODEL_PALETTE,
    contrast,
    model_colors,
    read_colors,
)

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


def _rec(model: str, dataset: str = "coco") -> RunRecord:
    r = copy.deepcopy(json.loads(GOLDEN.read_text()))
    r.update(model=model, dataset=dataset)
    return record_from_json(r)


def test_a_model_keeps_its_colour_as_records_of_other_models_and_datasets_come_and_go(tmp_path) -> None:
    """As after a `score --name` on another dataset: a model whose name sorts first arrives, then one leaves and
    comes back."""
    m2f, mf, fpn = _rec("demo-mask2former"), _rec("demo-maskformer"), _rec("demo-panoptic-fpn")
    first = model_colors(tmp_path, [m2f, mf, fpn])
    assert len({first[m] for m in ("demo-mask2former", "demo-maskformer", "demo-panoptic-fpn")}) == 3
    more = model_colors(tmp_path, [m2f, mf, fpn, _rec("a-external", dataset="other")])
    assert {m: more[m] for m in first} == first and more["a-external"] not in first.values()
    assert model_colors(tmp_path, [mf, fpn]) == more  # a record removed: the others keep theirs
    assert model_colors(tmp_path, [fpn, m2f]) == more  # and it comes back in its own
    kept = json.loads((tmp_path / COLORS_FILE).read_text())["models"]
    assert kept == more


def test_a_new_model_takes_a_colour_no_model_drawn_beside_it_has(tmp_path) -> None:
    """Seventeen models, seventeen colours; an eighteenth shares one, with a model not drawn beside it."""
    names = [f"model-{k:02d}" for k in range(17)]
    colors = model_colors(tmp_path, [_rec(n) for n in names])
    assert sorted(colors[n] for n in names) == sorted(MODEL_PALETTE)
    shown = [_rec(n) for n in names if n != "model-05"] + [_rec("model-new")]  # model-05's records gone
    assert model_colors(tmp_path, shown)["model-new"] == colors["model-05"]


def test_two_commands_adding_models_at_one_instant_each_keep_the_others_colour(tmp_path, monkeypatch) -> None:
    """Another command writes colors.json between this one's first read and its write: this one gives its model a
    colour beside the other's, which keeps its own (the write reads the file again under a lock)."""
    from panbench.reporting import colors as module

    assign, raced = module.assign, {}

    def other_command_meanwhile(kept, wanted):
        if not raced:  # the first assignment, from the file as this command first read it
            raced["other"] = None
            raced.update(model_colors(tmp_path, [_rec("b-other")]))
        return assign(kept, wanted)

    monkeypatch.setattr(module, "assign", other_command_meanwhile)
    mine = model_colors(tmp_path, [_rec("a-mine")])
    kept = json.loads((tmp_path / COLORS_FILE).read_text())["models"]
    assert kept == {"b-other": raced["b-other"], "a-mine": mine["a-mine"]}
    assert mine["a-mine"] != kept["b-other"] and mine == kept


def test_a_command_waits_for_the_colours_another_is_writing(tmp_path) -> None:
    """While another command holds colors.json's lock, this one waits, then keeps what the other wrote."""
    import fcntl
    import threading

    out: dict = {}
    with open(tmp_path / (COLORS_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mine = threading.Thread(target=lambda: out.update(model_colors(tmp_path, [_rec("a-mine")])))
        mine.start()
        mine.join(0.5)
        assert mine.is_alive()  # waiting for the lock
        (tmp_path / COLORS_FILE).write_text(json.dumps({"models": {"b-other": MODEL_PALETTE[0]}}))
    mine.join(10)
    kept = json.loads((tmp_path / COLORS_FILE).read_text())["models"]
    assert kept == {"b-other": MODEL_PALETTE[0], "a-mine": out["a-mine"]} and out["a-mine"] != MODEL_PALETTE[0]


def test_without_a_results_folder_the_colours_follow_the_palette() -> None:
    colors = model_colors(None, [_rec("b"), _rec("a")])
    assert (colors["a"], colors["b"]) == MODEL_PALETTE[:2]


def test_a_damaged_colours_file_is_named_in_one_line_that_says_what_to_do_and_left_as_it_is(tmp_path, capsys,
                                                                                          figures) -> None:
    """The line `plot` prints (its figures drawn, not written: the conftest fixture ``figures``)."""
    damaged = '{"models": {"m": "not a colour"}}'
    (tmp_path / COLORS_FILE).write_text(damaged)
    with pytest.raises(InputError, match="delete it"):
        read_colors(tmp_path / COLORS_FILE)
    assert model_colors(tmp_path, [_rec("m")]) == {"m": MODEL_PALETTE[0]}  # assigned afresh
    write_record(tmp_path, _rec("m"))
    capsys.readouterr()
    assert main(["plot", "--results", str(tmp_path)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if COLORS_FILE in line]
    assert len(err) == 1 and err[0].startswith(f"panbench: skipped {tmp_path / COLORS_FILE}: ") and "delete it" in \
        err[0], err
    assert (tmp_path / COLORS_FILE).read_text() == damaged


def test_error_types_and_corruption_groups_have_colours_no_model_has() -> None:
    """And a corruption group's colour, the colour of its name, reads on white."""
    assert not (set(ERROR_COLORS.values()) | set(GROUP_COLORS.values())) & set(MODEL_PALETTE)
    assert len(set(MODEL_PALETTE)) == len(MODEL_PALETTE)
    assert all(contrast(c, "white") >= 4.5 for c in GROUP_COLORS.values())


def _kept(results: Path) -> dict[str, Any]:
    return json.loads((results / COLORS_FILE).read_text())["models"]


def test_plot_keeps_the_colours_it_drew_with(tmp_path, figures) -> None:
    for name in ("demo-maskformer", "demo-mask2former"):
        write_record(tmp_path, _rec(name))
    assert main(["plot", "--results", str(tmp_path)]) == 0
    bars = figures["pq_bars.png"].axes[0].containers  # in the table's order
    from matplotlib.colors import same_color

    kept = _kept(tmp_path)
    drawn = {c.patches[0].get_facecolor() for c in bars}
    assert len(drawn) == 2 and all(any(same_color(d, k) for k in kept.values()) for d in drawn)
