"""A user's evaluator at the edges: a module that calls ``sys.exit`` as it is imported, a ``name`` that is not a
string or is empty (a missing one is the class's), ``evaluators=`` given a class, an instance, a mapping or a None
item, a share or fields that are not JSON or not a dict (each one line), a result of many items (a short line on the
terminal, the whole in ``--json`` and the record), and the MMEngine metric numbering its images as
``PanopticQuality`` does (each image its index, across ``process()`` calls, from 0 again after a reset)."""

from __future__ import annotations

import json
import pickle
import sys
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from panbench.cli import main
from panbench.errors import InputError, PanbenchError
from panbench.evaluators import Evaluators
from panbench.evaluators.contract import HoldsPositions, load_evaluators, name_of
from panbench.package import REPO_ROOT
from panbench.pq.matching import CategoryTable

EXAMPLE = REPO_ROOT / "examples" / "evaluators" / "image_count.py"
CLASS = EXAMPLE.read_text().split("\n\n\n", 1)[1]  # the example's class, without its docstring


def _score(coco_sample: Path, *extra: str) -> list[str]:
    ann = coco_sample / "annotations"
    return ["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
            "--pred-json", str(ann / "panoptic_val2017.json"), "--pred-dir", str(ann / "panoptic_val2017"),
            "--no-analysis", *extra]


@pytest.mark.parametrize("form", ["file", "module"])
@pytest.mark.parametrize("where", ["top", "init"])
def test_sys_exit_while_the_evaluator_loads_is_one_line_naming_it(form: str, where: str, coco_sample: Path,
                                                                    tmp_path: Path, capsys, monkeypatch) -> None:
    """At the module's top (a script's code without its ``__main__`` guard) or in the class's constructor: exit
    code 2 and one line, not the evaluator's exit code and no line."""
    exits = "import sys\nsys.exit(4)\n" + CLASS if where == "top" else \
        CLASS.replace("    def reset(self)", "    def __init__(self):\n        import sys\n        sys.exit(4)\n\n"
                      "    def reset(self)")
    module = f"exits_{form}_{where}"
    (tmp_path / f"{module}.py").write_text(exits)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = f"{tmp_path / module}.py:ImageCount" if form == "file" else f"{module}:ImageCount"
    capsys.readouterr()
    assert main(_score(coco_sample, "--evaluator", spec)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    words = "called sys.exit(4) while it was imported; keep what runs as a script under `if __name__ ==" \
        if where == "top" else "ImageCount() called sys.exit(4); it must build with no arguments"
    assert len(err) == 1 and words in err[0] and (module in err[0] or where == "init"), err
    if where == "top":  # a module that did not import is not kept: a second load runs it again
        assert str(tmp_path / f"{module}.py") not in {getattr(m, "__file__", None) for m in list(sys.modules.values())}


def test_ctrl_c_while_the_evaluator_module_loads_still_stops_panbench(tmp_path: Path) -> None:
    (tmp_path / "interrupted.py").write_text("raise KeyboardInterrupt\n" + CLASS)
    with pytest.raises(KeyboardInterrupt):
        load_evaluators([f"{tmp_path / 'interrupted.py'}:ImageCount"])


class Named:
    name: Any = ["x"]

    def reset(self) -> None: ...
    def process(self, image: Any) -> int: return 1
    def add(self, share: Any) -> None: ...
    def merge(self, other: Any) -> None: ...
    def evaluate(self) -> dict: return {}


def test_a_name_that_is_not_a_string_is_refused_naming_the_class_and_the_value() -> None:
    with pytest.raises(InputError, match=r"^evaluator Named: name = \['x'\] is not a string; set `name` to a "):
        load_evaluators([Named()])
    with pytest.raises(PanbenchError, match=r"^evaluator Named: name = \['x'\] is not a string"):
        Evaluators(CategoryTable([1], ["a"], [True]), [Named()])  # a composite built with it directly
    named = Named()
    named.name = "x"
    assert [type(ev).__name__ for ev in load_evaluators([named])] == ["Named"]


class Unnamed:
    def reset(self) -> None: ...
    def process(self, image: Any) -> int: return 1
    def add(self, share: Any) -> None: ...
    def merge(self, other: Any) -> None: ...
    def evaluate(self) -> dict: return {}


@pytest.mark.parametrize("name", ["", "  ", None])
def test_an_empty_name_is_refused_and_only_a_missing_one_takes_the_class_name(name: Any) -> None:
    named = Named()
    named.name = name
    said = "is not a string" if name is None else "is empty"
    with pytest.raises(InputError) as e:
        load_evaluators([named])
    assert str(e.value) == (f"evaluator Named: name = {name!r} {said}; set `name` to a string (the key of its fields "
                            "in the record), or leave it out for the class's name")
    with pytest.raises(PanbenchError, match=f"^evaluator Named: name = {name!r} {said}"):
        Evaluators(CategoryTable([1], ["a"], [True]), [named])
    assert [name_of(ev) for ev in load_evaluators([Unnamed()])] == ["Unnamed"]


@pytest.mark.parametrize(("given", "words"), [
    (Named, "evaluators=Named: a class, not a list of evaluators; pass an instance in a list: evaluators=[Named()]"),
    (Named(), "evaluators=Named(...): one evaluator, not a list of evaluators; pass it in a list"),
    ({"a": f"{EXAMPLE}:ImageCount"}, "evaluators={'a': "),
    (3, "evaluators=3: int, not a list of evaluators; pass a list: evaluators=[MyEvaluator()]"),
    ([f"{EXAMPLE}:ImageCount", None], "evaluators[1] is None; give each evaluator as an instance, a class"),
])
def test_what_is_not_a_list_of_evaluators_is_refused_in_one_line(given: Any, words: str) -> None:
    with pytest.raises(InputError) as e:
        load_evaluators(given)
    assert str(e.value).startswith(words) and "\n" not in str(e.value), e.value


def test_a_generator_a_string_or_none_give_the_evaluators_they_name() -> None:
    spec = f"{EXAMPLE}:ImageCount"
    assert [type(e).__name__ for e in load_evaluators(s for s in [spec])] == ["ImageCount"]
    assert [type(e).__name__ for e in load_evaluators(spec)] == ["ImageCount"]
    assert load_evaluators(None) == []


class Odd(Named):
    """``process()`` returns ``share``, ``evaluate()`` ``fields``; "generator" stands for a generator (they pickle)."""

    name = "Odd"

    def __init__(self, share: Any = 1, fields: Any = None) -> None:
        self.share, self.fields = share, fields

    def process(self, image: Any) -> Any:
        return (x for x in [1]) if self.share == "generator" else self.share

    def evaluate(self) -> Any:
        return (x for x in [1]) if self.fields == "generator" else self.fields


@pytest.mark.parametrize(("odd", "words"), [
    (Odd(fields="generator"), "evaluator Odd: evaluate() returned generator, not a dict of fields; return "
                              "{name: value}"),
    (Odd(fields=[("a", 1)]), "evaluator Odd: evaluate() returned list, not a dict of fields"),
    (Odd(fields=None), "evaluator Odd: evaluate() returned NoneType, not a dict of fields"),
    (Odd(share="generator", fields={}), "evaluator Odd: process() returned a share that is not JSON"),
])
def test_what_an_evaluator_returns_that_is_not_its_share_or_fields_is_one_line_naming_it(odd: Odd, words: str) -> None:
    cats = CategoryTable([1], ["a"], [True])
    ids = np.ones((4, 4), np.uint32)
    segs = [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 16}]
    composite = Evaluators.for_run(cats, analyses=False, semantic=False, extra=load_evaluators([odd]))
    with pytest.raises(PanbenchError) as e:
        composite.score(0, ids, segs, ids, segs, "image 0")
        composite.evaluate()
    assert str(e.value).startswith(words) and "\n" not in str(e.value), e.value


@pytest.mark.parametrize("entry", ["PanopticQuality", "MMEngine metric", "EvalOptions"])
def test_every_entry_point_refuses_a_class_given_for_the_list(entry: str, coco_sample: Path, demo_root: Path,
                                                              tmp_path: Path, monkeypatch) -> None:
    from panbench.integrations.mmdet import PanbenchPanopticMetric

    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    from image_count import ImageCount

    with pytest.raises(InputError, match=r"^evaluators=ImageCount: a class, .* evaluators=\[ImageCount\(\)\]$"):
        if entry == "PanopticQuality":
            from panbench.metrics import CocoPanopticQuality

            CocoPanopticQuality(coco_sample / "annotations" / "panoptic_val2017.json", evaluators=ImageCount)
        elif entry == "MMEngine metric":
            PanbenchPanopticMetric(evaluators=ImageCount)
        else:
            from panbench.data.datasets import load_dataset
            from panbench.evaluation import run
            from panbench.evaluation.options import EvalOptions
            from panbench.models.registry import resolve

            monkeypatch.setattr(run, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
            opts = EvalOptions(device="cpu", workers=0, progress=False, results_dir=tmp_path, evaluators=ImageCount)
            run.evaluate_model(resolve("demo-mask2former", dataset="demo")[0],
                               load_dataset(demo_root, name="demo", limit=1), opts)


# ---- results of millions of items ----

def test_a_result_of_many_items_is_a_short_line_and_whole_in_json_and_the_record(coco_sample: Path, tmp_path: Path,
                                                                             capsys) -> None:
    n = 30_000
    (tmp_path / "many.py").write_text(CLASS.replace('return {"images": self.images, "gt_segments": self.gt_segments}',
                                                    f'return {{"images": self.images, "ids": list(range({n})), '
                                                    f'**{{str(k): k for k in range({n})}}}}'))
    args = _score(coco_sample, "--evaluator", f"{tmp_path / 'many.py'}:ImageCount")
    capsys.readouterr()
    assert main([*args, "--name", "many", "--results", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "ImageCount:" in x)
    assert line.strip().startswith("ImageCount: images 2, ids [0, 1, 2, 3, 4, 5, 6, 7, ... and 29992 more], 0 0, 1 1")
    assert line.endswith(f"... and {n + 2 - 20} more (whole in --json and the record)") and len(line) < 400, line
    record = json.loads(next((tmp_path / "res" / "runs").glob("*.json")).read_text())["evaluators"]["ImageCount"]
    assert len(record["ids"]) == n and len(record) == n + 2
    assert main([*args, "--json"]) == 0
    fields = json.loads(capsys.readouterr().out)["evaluators"]["ImageCount"]
    assert fields == record


def test_a_long_text_or_deep_lists_are_cut_and_small_fields_print_as_they_are() -> None:
    from panbench.reporting.text import SHOWN_LINE, evaluator_lines

    small = {"a": 1, "b": 0.123456, "c": [1, "x", None, 1.5, True], "d": {"k": [1, 2]}, "e": "text", "f": None}
    assert evaluator_lines({"E": small}) == ["E: a 1, b 0.1235, c [1, 'x', None, 1.5, True], d {'k': [1, 2]}, e text, "
                                             "f None"]
    deep, = evaluator_lines({"E": {"x": [[[[1, 2]]]], "t": "y" * 300}})
    assert deep == (f"E: x [[[[... 2 items]]]], t {'y' * 200}... and 100 more characters (whole in --json and the "
                    "record)")
    wide, = evaluator_lines({"E": {str(k): "z" * 190 for k in range(15)}})
    full = len("E: ") + sum(len(f"{k} ") + 190 for k in range(15)) + len(", ") * 14
    tail = f"... and {full - SHOWN_LINE} more characters (whole in --json and the record)"
    assert wide == wide[:SHOWN_LINE] + tail


# ---- the MMEngine metric's image indices ----

class Seen(HoldsPositions):
    """Each image's index as process() saw it and its COCO id, held at its position (merge_at moves them on)."""

    name, needs = "Seen", {"segments"}

    def reset(self) -> None:
        self.at: dict[int, list[Any]] = {}

    def process(self, image: Any) -> list[Any]:
        return [image.index, image.image_id]

    def add(self, share: list[Any]) -> None:
        self.at[share[0]] = share

    def merge(self, other: Seen) -> None:
        self.merge_at(other, 0)

    def merge_at(self, other: Seen, offset: int) -> None:
        self.at.update({p + offset: v for p, v in other.at.items()})

    def evaluate(self) -> dict:
        return {"at": [[p, *self.at[p]] for p in sorted(self.at)]}


META = {"classes": ("thing", "wall"), "thing_classes": ("thing",), "stuff_classes": ("wall",)}


def _samples(tmp_path: Path, n: int) -> tuple[dict, list[dict]]:
    """``n`` images of ids 0 .. n - 1, each a 6x8 wall with a thing in it (one PNG), predicted right, as MMDetection's
    data samples: the metric's arguments with an annotation file, and the samples."""
    torch = pytest.importorskip("torch")
    from mmdet.evaluation import INSTANCE_OFFSET

    ids = np.full((6, 8), 2, np.int64)
    ids[1:4, 1:4] = 1
    (tmp_path / "seg").mkdir()
    Image.fromarray(np.stack([ids, 0 * ids, 0 * ids], -1).astype(np.uint8)).save(tmp_path / "seg" / "img.png")
    segs = [{"id": 1, "category_id": 0, "iscrowd": 0, "area": 9}, {"id": 2, "category_id": 1, "iscrowd": 0, "area": 39}]
    (tmp_path / "gt.json").write_text(json.dumps({
        "images": [{"id": k, "width": 8, "height": 6, "file_name": "img.jpg"} for k in range(n)],
        "annotations": [{"image_id": k, "file_name": "img.png", "segments_info": segs} for k in range(n)],
        "categories": [{"id": 0, "name": "thing", "isthing": 1}, {"id": 1, "name": "wall", "isthing": 0}]}))
    pred = torch.from_numpy(np.where(ids == 1, INSTANCE_OFFSET, 1))[None]  # the thing: label 0, instance 1
    samples = [{"img_id": k, "ori_shape": (6, 8), "img_path": "images/img.jpg", "pred_panoptic_seg": {"sem_seg": pred},
                "segments_info": [{"id": 1, "category": 0, "is_thing": 1}, {"id": 2, "category": 1, "is_thing": 0}]}
               for k in range(n)]
    return {"ann_file": str(tmp_path / "gt.json"), "seg_prefix": str(tmp_path / "seg")}, samples


@pytest.mark.parametrize("ann_file", [True, False], ids=["ann_file", "dataset_meta"])
def test_the_mmengine_metric_gives_each_image_its_running_index_from_0_again_after_a_reset(
        ann_file: bool, tmp_path: Path) -> None:
    pytest.importorskip("mmdet")
    from panbench.integrations.mmdet import PanbenchPanopticMetric

    kwargs, samples = _samples(tmp_path, 3)
    metric = PanbenchPanopticMetric(**(kwargs if ann_file else {"seg_prefix": kwargs["seg_prefix"]}),
                                    evaluators=[Seen()])
    metric.dataset_meta = META
    for _ in range(2):  # two rounds: evaluate() resets
        metric.process({}, deepcopy(samples[:2]))
        metric.process({}, deepcopy(samples[2:]))
        assert metric.evaluate(size=3)["coco_panoptic/evaluators"]["Seen"]["at"] == [[k, k, k] for k in range(3)]
    metric.process({}, deepcopy(samples[:1]))
    metric.reset()
    metric.process({}, deepcopy(samples[1:2]))
    assert metric.compute_metrics(metric.results)["evaluators"]["Seen"]["at"] == [[0, 0, 1]]


def test_two_ranks_number_their_own_images_and_the_collected_parts_hold_them_in_mmengines_order(
        tmp_path: Path) -> None:
    """mmengine's collect interleaves the ranks' results (rank 0's first, rank 1's first, rank 0's second): each
    image's position is its place there, its index the count of its rank's images before it."""
    pytest.importorskip("mmdet")
    from panbench.integrations.mmdet import PanbenchPanopticMetric

    kwargs, samples = _samples(tmp_path, 3)
    ranks = [PanbenchPanopticMetric(**kwargs, evaluators=[Seen()]) for _ in range(2)]
    for metric, mine in zip(ranks, (samples[0::2], samples[1::2])):
        metric.dataset_meta = META
        metric.process({}, deepcopy(mine))
    a, b = ranks[0].results, ranks[1].results
    collected = pickle.loads(pickle.dumps([a[0], b[0], a[1]]))
    assert ranks[0].compute_metrics(collected)["evaluators"]["Seen"]["at"] == [[0, 0, 0], [1, 0, 1], [2, 1, 2]]
