"""A dataset is two files: its module ``panbench/data/<name>.py`` and its row in ``panbench/data/catalog.py``.
A toy dataset written as one module plus one row reaches every command that names datasets; and no other
module of the package writes a dataset's name."""

from __future__ import annotations

import functools
import io
import json
import re
import tokenize

import pytest

from panbench.cli import main
from panbench.data import catalog
from panbench.data.catalog import DATASETS, Card, Dataset, Option
from panbench.package import REPO_ROOT

PACKAGE = REPO_ROOT / "panbench"
# coco and demo are built in, not added: coco is the default dataset and COCO's panoptic format the layout of
# every dataset; demo is the offline set of the demo models.  Their names are everywhere by right.
BUILT_IN = {"coco", "demo"}
# a name that is not the dataset panbench prepares: the file, the name, why
OTHER_MEANINGS = {("robustness/corruptions.py", "cityscapes"): "Cityscapes-C, the benchmark of the corruptions"}
# the registry of transformers checkpoints: each checkpoint's dataset, and its original's test input on each dataset
REGISTRY = "models/hf/types.py"

TOY_MODULE = '''
from pathlib import Path


def data_command(root: Path, args) -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "made").write_text(str(args.toy_size))
    return f"toy made at {root} with size {args.toy_size}"
'''


@pytest.fixture
def toy(tmp_path, monkeypatch) -> Dataset:
    """The toy dataset: its module (written under tmp_path) and its row in DATASETS, nothing else."""
    (tmp_path / "toy_dataset_module.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    row = Dataset("toy", "Toy", help="make the toy dataset", description="Make the toy dataset (a test's).",
                  command="toy_dataset_module:data_command", options=("root", "from_dir", "force"),
                  how_to_get="run `panbench data toy` (a test's dataset)", folder="data/toy-set",
                  card=Card("1", "a test's toy files", 2, 8, 4, label_order="ids 1-8", void="id 0", crowd="none",
                            evaluator="panbench's PQ", converter="none"),
                  from_files="toy files", extra=(Option("--toy-size", "the toy's size", int, 2),),
                  doctor="the toy set's")
    monkeypatch.setitem(DATASETS, "toy", row)
    return row


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse's line breaks undone


def test_a_dataset_is_one_module_and_one_row(toy, tmp_path, monkeypatch, capsys) -> None:
    assert "toy make the toy dataset" in _help(["data"], capsys)
    data_help = _help(["data", "toy"], capsys)
    assert "Make the toy dataset" in data_help and "--toy-size" in data_help and "--force" in data_help
    assert "toy: toy files" in data_help  # --from's help lists what each dataset's folder holds
    *others, _ = DATASETS  # the rows before the toy's, the last
    for cmd in (["eval"], ["speed"], ["robustness"], ["viz"]):
        assert f"{', '.join(others)} or toy (panbench data)" in _help(cmd, capsys), cmd
    assert f"{others[-1]} or toy, or the name" in _help(["ls"], capsys)  # --only-dataset
    assert f"(or {', '.join(n for n in DATASETS if n != 'coco')})" in _help([], capsys)  # eval's line in --help

    assert main(["data", "toy", "--root", str(tmp_path / "t"), "--toy-size", "5"]) == 0
    assert capsys.readouterr().out.strip() == f"toy made at {tmp_path / 't'} with size 5"
    assert (tmp_path / "t" / "made").read_text() == "5"
    monkeypatch.chdir(tmp_path)
    assert main(["data", "toy"]) == 0 and (tmp_path / "data" / "toy-set" / "made").read_text() == "2"  # its folder

    from panbench.cli.doctor import _dataset_name
    from panbench.cli.options import dataset_root

    assert _dataset_name(tmp_path / "data" / "toy") == "the toy set's"
    assert dataset_root(type("Args", (), {"data_root": None, "dataset": "toy"})()) == "data/toy-set"
    capsys.readouterr()
    assert main(["eval", "--model", "demo-mask2former", "--dataset", "toy", "--results", str(tmp_path / "r")]) == 2
    assert "run `panbench data toy`" in capsys.readouterr().err  # where to get it, from its row

    from dataclasses import replace

    from panbench.data.datasets import layout
    from panbench.pq.coco_format import read_ground_truth
    from panbench.records.scored import record_dataset

    truths = []
    for gt_json in (tmp_path / "toy" / "annotations" / "x.json", tmp_path / "a" / "toy_panoptic_val.json"):
        gt_json.parent.mkdir(parents=True, exist_ok=True)
        gt_json.write_text(json.dumps({"categories": [{"id": 1, "name": "a", "isthing": 1}], "annotations": []}))
        truths.append(read_ground_truth(gt_json))
        monkeypatch.setitem(DATASETS, "toy", replace(toy, converted=True))
        assert record_dataset(truths[-1], None, tmp_path / "r", None) == "toy"  # score --name's dataset: its row
    monkeypatch.setitem(DATASETS, "toy", replace(toy, converted=False))
    assert record_dataset(truths[-1], None, tmp_path / "r", None) == "a"
    root = tmp_path / "t"
    assert layout(root, "toy", "val2017")[0] == root / "annotations" / "panoptic_val2017.json"
    monkeypatch.setitem(DATASETS, "toy", replace(toy, converted=True))  # a converter's file names, from its row
    assert layout(root, "toy", "val2017") == (root / "annotations" / "toy_panoptic_val.json",
                                               root / "annotations" / "toy_panoptic_val", root / "val")


def test_every_row_runs_a_function_of_its_module() -> None:
    for name, ds in DATASETS.items():
        assert ds.command == f"panbench.data.{name}:data_command", name
        assert callable(ds.run_command()), name
        assert ds.name == name and ds.folder == f"data/{name}"
    *head, tail = DATASETS
    assert catalog.names() == f"{', '.join(head)} or {tail}" and tail in catalog.names()


@functools.cache  # a file's text tokenized once for the module's tests (each reads the whole package)
def _words(text: str) -> tuple[tuple[int, str], ...]:
    """The code's names and strings (docstrings too; comments not), with their line."""
    return tuple((t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline)
                 if t.type in (tokenize.NAME, tokenize.STRING))


def named_outside(sources: dict[str, str], names: list[str]) -> list[str]:
    """Each place a module writes the name of a dataset that is not its own: ``file:line: name``."""
    found = []
    for rel, text in sources.items():
        for name in names:
            if rel in ("data/catalog.py", f"data/{name}.py", REGISTRY) or (rel, name) in OTHER_MEANINGS:
                continue
            word = re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE)
            found += [f"{rel}:{line}: {name}" for line, s in _words(text) if word.search(s)]
    return found


def _package() -> dict[str, str]:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))}


def test_a_dataset_is_named_only_in_its_module_and_its_row() -> None:
    names = [n for n in DATASETS if n not in BUILT_IN]
    assert names  # the rule checks something
    assert named_outside(_package(), names) == []


@pytest.mark.parametrize("injected", ['HELP = "evaluate on Cityscapes"', "from panbench.data.ade20k import x",
                                      'def f():\n    """For ADE20K images."""'])
def test_the_rule_fails_on_a_name_written_elsewhere(injected) -> None:
    sources = _package()
    sources["cli/eval.py"] += f"\n{injected}\n"
    found = named_outside(sources, [n for n in DATASETS if n not in BUILT_IN])
    assert len(found) == 1 and found[0].startswith("cli/eval.py:"), found
    assert named_outside({"cli/eval.py": "# a comment on Cityscapes\n"}, ["cityscapes"]) == []
