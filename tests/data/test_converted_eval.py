"""`eval --dataset cityscapes|ade20k` and `score` on converted data: the tiny official-format inputs of
test_cityscapes_ade20k.py are converted, a random-init transformers model whose labels are the converted
categories is saved locally (tests/hf_tiny.py), and

- `panbench eval --model hf:DIR --dataset cityscapes|ade20k` scores it (string image ids, the converters'
  file layout, categories from the converted JSON);
- the same model run by hand and written in the COCO panoptic format gives, through `panbench score`,
  exactly the eval record's metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import hf_tiny  # noqa: E402  (tests/hf_tiny.py)
from test_cityscapes_ade20k import CITY_IDS, make_ade, make_cityscapes  # noqa: E402

from panbench.cli import main  # noqa: E402
from panbench.data.datasets import load_dataset  # noqa: E402
from panbench.pq.matching import METRIC_KEYS  # noqa: E402

CASES = {"cityscapes": ("cityscapesscripts", make_cityscapes, "cs"),
         "ade20k": ("panopticapi", make_ade, "ADEChallengeData2016")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_eval_and_score_on_converted_data(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs, make, folder = CASES[name]
    pytest.importorskip(needs)
    src, root = tmp_path / folder, tmp_path / name
    make(src)
    assert main(["data", name, "--from", str(src), "--root", str(root)]) == 0
    ds = load_dataset(root, name=name)
    d = hf_tiny.build("mask2former", ds.categories.names, tmp_path / "model")
    results = tmp_path / "results"
    assert main(["eval", "--model", f"hf:{d}", "--dataset", name, "--data-root", str(root), "--results",
                 str(results), "--workers", "0", "--cpu-procs", "1", "--no-progress",
                 "--pipeline", "transformers"]) == 0  # the reference below is transformers' own inference
    row = list(csv.DictReader(open(results / "runs.csv")))[-1]
    rec = json.loads((results / row["record"]).read_text())
    assert rec["dataset"] == name and rec["framework"] == "transformers" and rec["n_images"] == 2
    assert rec["provenance"]["dataset"]["image_ids"] == ds.image_ids
    if name == "cityscapes":
        assert ds.image_ids == CITY_IDS  # string ids end to end
    pred_json, pred_dir = hf_tiny.write_predictions(d, ds, "mask2former", {n: n for n in ds.categories.names},
                                                    tmp_path / "pred")
    capsys.readouterr()
    ann = root / "annotations"
    assert main(["score", "--gt-json", str(ann / f"{name}_panoptic_val.json"), "--gt-dir",
                 str(ann / f"{name}_panoptic_val"), "--pred-json", str(pred_json), "--pred-dir", str(pred_dir),
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["n_images"] == 2
    assert {k: scored[k] for k in METRIC_KEYS} == rec["metrics"]
