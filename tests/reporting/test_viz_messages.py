"""What `viz` says: the file it writes in the format it writes (`drawing a.pdf` with `--figure-format pdf`), and, for
an image id not in the set, how many ids there are and the first few."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.cli import main


def test_viz_says_the_pdf_it_draws(demo_root, tmp_path, monkeypatch, capsys) -> None:
    """The model stands in for itself (its prediction: the ground truth); the drawing is viz's own."""
    import panbench.evaluation.loading as loading
    import panbench.reporting.viz as viz
    from panbench.pq.png import read_ids

    def predict(lm, name, sample, top_queries=4):
        return viz.Prediction(name, read_ids(sample.gt_png, "gt"), sample.gt_ann["segments_info"])

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: object())
    monkeypatch.setattr(viz, "predict", predict)
    assert main(["viz", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root),
                 "--image", "2000", "--results", str(tmp_path), "--figure-format", "pdf"]) == 0
    out, err = capsys.readouterr()
    pdf = tmp_path / "viz" / "2000_demo-mask2former.pdf"
    assert out.strip() == str(pdf) and pdf.read_bytes().startswith(b"%PDF")
    assert f"drawing {pdf}" in err and ".png" not in err
    assert not (tmp_path / "viz" / "2000_demo-mask2former.png").exists()


def test_viz_of_an_image_id_not_in_the_set_names_how_many_there_are_and_the_first(demo_root) -> None:
    from panbench.data.datasets import load_dataset
    from panbench.errors import InputError
    from panbench.reporting.viz import find_sample

    ds = load_dataset(demo_root, name="demo")
    ids = sorted(s.image_id for s in ds.samples)
    with pytest.raises(InputError) as e:
        find_sample(ds, 1)
    first = ", ".join(map(str, ids[:5]))
    assert f"image 1 is not in the dataset; its {len(ids)} image ids are {first}, ... (its 'images'); pass one of " \
        "them to --image" in str(e.value)
    assert np.all(np.diff(ids[:5]) > 0)
