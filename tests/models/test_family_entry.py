"""Adding a model family is its subpackage and one row of ``FAMILIES``: a toy family written here (a package
outside panbench whose model paints every pixel one category) runs through ``panbench eval``
with no other file changed."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.models import families
from panbench.models.families import Family

TOY = '''
"""A toy family: every pixel is the dataset's first category."""
import hashlib

import numpy as np
import torch
from PIL import Image

from panbench.models.protocol import Built, Weights, timed_calls


class Const(torch.nn.Module):
    def __init__(self, names, label2cat):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)
        self.names, self.label2cat, self.instance_source = names, label2cat, None

    @property
    def module(self):
        return self

    def pipeline(self, item):
        with Image.open(item["img_path"]) as im:
            rgb = np.asarray(im.convert("RGB"), np.float32)
        return {"pixel_values": torch.from_numpy(rgb).permute(2, 0, 1).contiguous()}

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

    def timed_fusion(self, sink, sync):
        return timed_calls(self, "fuse", sink, sync)

    def configure(self, postprocess, fusion):
        return None

    def query_masks(self, item, device, top):
        return self.forward([item], device, None)[0], []


def load_model(spec, categories, checkpoint, trust, device, cfg_options, ap, any_rank):
    text = "const " + spec.ref
    return Built(Const(list(categories.names), list(categories.ids)).to(device), Weights(None, None, None), text,
                 hashlib.sha256(text.encode()).hexdigest()[:16], named=("Const", "none"))


def check_options(spec, categories, cfg_options, postprocess):
    return None


def weights_state(spec):
    return "none"


def random_model(spec, device):
    return None
'''


@pytest.fixture
def toy_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Family:
    (tmp_path / "toyfam").mkdir()
    (tmp_path / "toyfam" / "__init__.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    fam = Family("toy", "toy", "toyfam", in_all=False)
    monkeypatch.setitem(families.FAMILIES, "toy", fam)
    return fam


def test_a_family_added_as_one_package_and_one_row_runs_through_eval(toy_family, demo_root, tmp_path) -> None:
    results = tmp_path / "results"
    rc = main(["eval", "--model", "toy:const", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(results), "--limit", "3", "--workers", "0", "--cpu-procs", "1", "--no-progress"])
    assert rc == 0
    rows = list(csv.DictReader(open(results / "runs.csv")))
    rec = json.loads((results / rows[-1]["record"]).read_text())
    assert (rec["model"], rec["framework"], rec["architecture"], rec["n_images"]) == ("toy-const", "toy", "Const", 3)
    assert rec["fusion"] is None and rec["params"] == 4 and len(rec["timings"]) > 0
    assert 0 <= rec["metrics"]["PQ"] < 100

