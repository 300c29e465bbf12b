"""The two-model viz: second-row titles clear of the first row's images, and labels on a pixel of their own
segment for non-convex shapes (hand-built C and ring). Generated images and hand-built predictions: no model
runs here (tests/reporting/test_report.py runs real models through `panbench viz`)."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.data.datasets import PanopticDataset, Sample
from panbench.data.synth import coco_like_categories, random_image, write_panoptic
from panbench.pq.matching import CategoryTable
from panbench.reporting import viz


def ring() -> np.ndarray:
    """A 60 x 60 ring (outer radius 25, inner 15): its centre of mass is in the hole."""
    yy, xx = np.mgrid[:60, :60]
    r = np.hypot(yy - 30, xx - 30)
    return (r <= 25) & (r >= 15)


def c_shape() -> np.ndarray:
    """A C opening to the right: its centre of mass lies in the opening."""
    m = np.zeros((60, 60), bool)
    m[5:55, 5:20] = True
    m[5:18, 5:55] = True
    m[42:55, 5:55] = True
    return m


@pytest.mark.parametrize("mask", [ring(), c_shape()], ids=["ring", "C"])
def test_label_point_is_on_the_segment_and_away_from_its_edge(mask) -> None:
    ys, xs = np.nonzero(mask)
    assert not mask[int(round(ys.mean())), int(round(xs.mean()))]  # the old place: off the segment
    x, y = viz.label_point(mask)
    assert mask[y, x]
    inner = mask[y - 3:y + 4, x - 3:x + 4]
    assert inner.all()  # well inside, not on the edge


def test_labels_land_on_their_segment(tmp_path) -> None:
    """A ring of one category around a disc of another: the ring's label is drawn on the ring."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = np.where(ring(), 7, 0).astype(np.uint32)
    yy, xx = np.mgrid[:60, :60]
    ids[np.hypot(yy - 30, xx - 30) < 15] = 9
    segs = [{"id": 7, "category_id": 1}, {"id": 9, "category_id": 2}]
    fig, ax = plt.subplots()
    viz._labels(ax, ids, segs, {1: "ring", 2: "disc"})
    for t in ax.texts:
        x, y = (int(v) for v in t.get_position())
        assert ids[y, x] == {"ring": 7, "disc": 9}[t.get_text()], t.get_text()
    plt.close(fig)


def _dataset(tmp_path) -> tuple[PanopticDataset, Sample]:
    from PIL import Image

    cats = coco_like_categories(4, 3)
    im = random_image(np.random.default_rng(3), 104, 130, cats)  # the size of demo image 2003
    js, png_dir = write_panoptic(tmp_path, "gt", [(5, im)], cats)
    (tmp_path / "img").mkdir()
    rgb = np.random.default_rng(0).integers(0, 255, (104, 130, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "img" / "5.jpg")
    sample = Sample(5, tmp_path / "img" / "5.jpg", png_dir / "000000000005.png", 104, 130,
                    {"image_id": 5, "segments_info": im.segments_info})
    return PanopticDataset("synth", tmp_path, CategoryTable.from_coco(cats), [sample], js), sample


@pytest.mark.parametrize(("second_has_queries", "width"), [(False, "double"), (True, "single"), (True, 5.0)],
                         ids=["mask2former+fpn-double", "two-query-models-single", "two-query-models-5in"])
def test_no_title_is_drawn_over_an_image_and_no_panel_is_empty(tmp_path, second_has_queries, width) -> None:
    """As `viz --model mask2former --model panoptic-fpn --dataset demo --image 2003` draws it (same image size,
    four query maps), and with two query models (eight maps), at each width: every panel holds an image, no title
    covers an image, the figure's title covers no panel's title, and the figure is that wide."""
    import matplotlib.pyplot as plt

    from panbench.pq.png import read_ids
    from panbench.reporting.figure_style import figure_inches, figure_width

    ds, sample = _dataset(tmp_path)
    ids = read_ids(sample.gt_png, "gt")
    maps = [(f"thing{k}", 0.9 - 0.1 * k, np.random.default_rng(k).random((104, 130))) for k in range(4)]
    preds = [viz.Prediction("demo-mask2former", ids, sample.gt_ann["segments_info"], maps),
             viz.Prediction("demo-panoptic-fpn", ids, sample.gt_ann["segments_info"], maps if second_has_queries
                            else [])]
    with figure_width(width):
        fig = viz.figure(sample, ds, preds)
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        assert len(fig.axes) == 5 + (8 if second_has_queries else 4) and all(ax.images for ax in fig.axes)
        images = [ax.get_window_extent(r) for ax in fig.axes]
        titles = [ax.title.get_window_extent(r) for ax in fig.axes]
        for t in titles:
            for im in images:
                assert not t.overlaps(im), (t, im)
        assert not any(fig._suptitle.get_window_extent(r).overlaps(t) for t in titles)
        assert fig.get_figwidth() == figure_inches(width)
        out = viz.draw_overlay(sample, ds, preds, tmp_path / "out.png")
    from PIL import Image

    assert Image.open(out).width == round(figure_inches(width) * 110)
    plt.close("all")
