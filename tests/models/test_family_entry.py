"""Adding a model family is its subpackage (a subclass of ``Family`` and the handle it opens) and one entry of
``FAMILIES``: a toy family written here (a package outside panbench whose model paints every pixel one category)
runs through ``panbench eval`` with no other file changed: its prefix in ``--help``, its package versions in the
record and the resume cache's key, ``--corruption`` applied where its pipeline says (and refused for a family that
does not say)."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.models import families
from panbench.models.protocol import Family

TOY = '''
"""A toy family: every pixel is the dataset's first category."""
import hashlib

import numpy as np
import torch
from PIL import Image

from panbench.models.protocol import Abilities, Built, Family, ModelHandle, Weights, timed_calls

__version__ = "1.0"
STEPS = []  # per image the corruption reached: whether it changed the decoded image


class Const(Abilities, torch.nn.Module):
    def __init__(self, names, label2cat):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)
        self.names, self.label2cat, self.instance_source = names, label2cat, None

    @property
    def module(self):
        return self

    def pipeline(self, item):
        with Image.open(item["img_path"]) as im:
            rgb = np.asarray(im.convert("RGB"))
        return self.tensor(rgb)

    def tensor(self, rgb):
        return {"pixel_values": torch.from_numpy(np.asarray(rgb, np.float32)).permute(2, 0, 1).contiguous()}

    def pipeline_with(self, item, image_step):
        with Image.open(item["img_path"]) as im:
            rgb = np.asarray(im.convert("RGB"))
        out = image_step(rgb)
        STEPS.append(not np.array_equal(out, rgb))
        return self.tensor(out)

    def input_hw(self, item):
        return tuple(item["pixel_values"].shape[-2:])

    def batch_key(self, item):
        return tuple(item["pixel_values"].shape)

    def forward(self, batch, device, amp):
        return [self.fuse(self.conv(b["pixel_values"][None].to(device))) for b in batch]

    def fuse(self, x):
        return x.shape[-2:]

    def to_segments(self, hw):
        return np.ones(tuple(hw), np.uint32), [{"id": 1, "category_id": self.label2cat[0], "iscrowd": 0}]

    def to_instances(self, output):
        return None

    def to_semantic(self, output):
        return None

    def timed_fusion(self, seconds, sync):
        return timed_calls(self, "fuse", seconds, sync)

    def configure(self, postprocess, fusion):
        return None

    def query_masks(self, item, device, top):
        return self.forward([item], device, None)[0], []

    def compile_targets(self):
        return [("conv", self.conv)]


class ToyHandle(ModelHandle):
    def load_model(self, categories, checkpoint, trust, device, cfg_options, ap, any_rank, dataset):
        text, digest = self.config_text(cfg_options, ap)
        return Built(Const(list(categories.names), list(categories.ids)).to(device), Weights(None, None, None), text,
                     digest, named=("Const", "none"))

    def config_text(self, cfg_options, ap):
        text = "const " + self.spec.ref
        return text, hashlib.sha256(text.encode()).hexdigest()[:16]

    def check_options(self, categories, cfg_options, postprocess):
        return None

    def random_model(self, device):
        return None


class ToyFamily(Family):
    name = "toy"
    prefix = "toy"
    packages = ("torch", "toyfam")

    def open(self, spec):
        return ToyHandle(spec)

    def weights_state(self, spec):
        return "none"

    def doctor_checks(self, probes):
        return [probes.version("toyfam", required=False)]
'''


def add_toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str = TOY) -> Family:
    """The toy family's package (``code``) importable and its class's entry in ``FAMILIES``, both gone after the
    test."""
    (tmp_path / "toyfam").mkdir()
    (tmp_path / "toyfam" / "__init__.py").write_text(textwrap.dedent(code))
    spec = importlib.util.spec_from_file_location("toyfam", tmp_path / "toyfam" / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "toyfam", module)  # this test's toy, whichever an earlier test imported
    fam = module.ToyFamily()
    monkeypatch.setitem(families.FAMILIES, "toy", fam)
    return fam


@pytest.fixture
def toy_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Family:
    return add_toy(tmp_path, monkeypatch)


def toy_eval(demo_root: Path, results: Path, *extra: str) -> dict:
    """``panbench eval`` of the toy model on 3 demo images; its record."""
    rc = main(["eval", "--model", "toy:const", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(results), "--limit", "3", "--device", "cpu", "--workers", "0", "--cpu-procs", "1", "--no-progress",
               *extra])
    assert rc == 0
    rows = list(csv.DictReader(open(results / "runs.csv")))
    return json.loads((results / rows[-1]["record"]).read_text())


def test_a_family_added_as_one_package_and_one_entry_runs_through_eval(toy_family, demo_root, tmp_path) -> None:
    rec = toy_eval(demo_root, tmp_path / "results")
    assert (rec["model"], rec["framework"], rec["architecture"], rec["n_images"]) == ("toy-const", "toy", "Const", 3)
    assert rec["fusion"] is None and rec["params"] == 4 and len(rec["timings"]) > 0
    assert 0 <= rec["metrics"]["PQ"] < 100
    assert rec["provenance"]["versions"]["toyfam"] == "1.0"  # its own packages, not the MMDetection stack's
    assert "mmdet" not in rec["provenance"]["versions"]


def test_a_new_version_of_a_family_package_runs_the_images_again(toy_family, demo_root, tmp_path,
                                                                  monkeypatch) -> None:
    results = tmp_path / "results"
    toy_eval(demo_root, results)
    assert toy_eval(demo_root, results)["timings"]["resumed_images"] == 3
    monkeypatch.setattr(sys.modules["toyfam"], "__version__", "2.0")
    rec = toy_eval(demo_root, results)
    assert rec["timings"]["resumed_images"] == 0 and rec["provenance"]["versions"]["toyfam"] == "2.0"


def test_a_family_prefix_is_in_the_model_help(toy_family, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "toy:<" in " ".join(capsys.readouterr().out.split())


def test_a_corruption_reaches_the_image_where_the_family_applies_it(toy_family, demo_root, tmp_path) -> None:
    rec = toy_eval(demo_root, tmp_path / "results", "--corruption", "gaussian_noise", "--severity", "3")
    assert rec["dataset"] == "demo+gaussian_noise-3" and sys.modules["toyfam"].STEPS == [True] * 3


def test_a_family_that_does_not_say_where_a_corruption_goes_is_refused(tmp_path, monkeypatch, demo_root,
                                                                       capsys) -> None:
    add_toy(tmp_path, monkeypatch, TOY + "\ndel Const.pipeline_with\n")
    rc = main(["eval", "--model", "toy:const", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(tmp_path / "results"), "--limit", "3", "--device", "cpu", "--workers", "0", "--cpu-procs", "1",
               "--no-progress", "--corruption", "gaussian_noise", "--severity", "3"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--corruption: the toy model family does not say where a corruption is applied" in err
    assert not (tmp_path / "results" / "runs.csv").exists()  # nothing scored on clean images


def test_a_family_whose_model_lacks_the_abilities_defaults_is_refused_in_one_line(tmp_path, monkeypatch, demo_root,
                                                                                 capsys) -> None:
    """A family written before its model class derived from ``Abilities`` (no grid, score cutoff or deferred
    fusion members): refused as it loads, naming what it lacks and the class that gives their defaults."""
    old = TOY.replace("class Const(Abilities, torch.nn.Module):", "class Const(torch.nn.Module):")
    add_toy(tmp_path, monkeypatch, old)
    rc = main(["eval", "--model", "toy:const", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(tmp_path / "results"), "--limit", "3", "--device", "cpu", "--workers", "0", "--cpu-procs", "1",
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "model family toy: its model (Const) lacks deferred, finish, finish_grid, " \
           "forward_values" in err
    assert "derive its class from panbench.models.protocol.Abilities" in err


def test_the_doctor_asks_each_family_for_its_checks(toy_family, tmp_path, monkeypatch) -> None:
    import functools
    import importlib.metadata as md

    from panbench.cli.doctor import collect

    # the installed distributions' files, read once for the test's two collections (each reads them per package)
    monkeypatch.setattr(md, "packages_distributions", functools.cache(md.packages_distributions))
    lines = {c.name: c for c in collect(str(tmp_path / "nothing"), skip_amp=True)}
    assert lines["toyfam"].ok and lines["toyfam"].detail == "1.0"  # the toy family's own line
    assert "mmcv" in lines and "versions/toy" in lines
    class Quiet(type(families.FAMILIES["mmdet"])):  # mmdet's family without its doctor lines
        def doctor_checks(self, probes):
            return []

    monkeypatch.setitem(families.FAMILIES, "mmdet", Quiet())
    assert "mmcv" not in {c.name for c in collect(str(tmp_path / "nothing"), skip_amp=True)}  # mmdet's, asked
