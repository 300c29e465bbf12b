"""``panbench.CocoPanopticQuality``: predictions against a COCO panoptic ground truth it reads itself, each PNG
decoded once with ``keep_ground_truth`` (kept between rounds, in one byte per pixel), and the sums of several
``torch.distributed`` ranks added by ``sync()``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS
from helpers import write_perturbed_sample

from panbench import CocoPanopticQuality, PanopticQuality, pq_compute
from panbench.data.synth import perturb, random_image, write_panoptic
from panbench.errors import InputError
from panbench.metrics import panoptic
from panbench.pq.kernels import rgb2id
from panbench.pq.png import decode_png


def predictions(pred_json: Path) -> list[tuple[int, np.ndarray, list]]:
    anns = json.loads(pred_json.read_text())["annotations"]
    return [(a["image_id"], rgb2id(decode_png(pred_json.with_suffix("") / a["file_name"], "t")), a["segments_info"])
            for a in anns]


def test_the_coco_metric_gives_pq_compute_on_coco_pngs(coco_sample: Path, tmp_path: Path) -> None:
    ann = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, 5)
    m = CocoPanopticQuality(ann / "panoptic_val2017.json")  # its PNG folder found beside it
    for image_id, ids, segs in predictions(pred_json):
        m.update(image_id, ids, segs)
    assert m.compute().to_panopticapi() == pq_compute(ann / "panoptic_val2017.json", pred_json)


def test_kept_ground_truth_is_decoded_once_and_gives_the_same_numbers(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    gts = [(k, random_image(rng, 60, 80, CATS)) for k in range(1, 6)]
    gt_json, _ = write_panoptic(tmp_path, "gt", gts, CATS)
    preds = [(k, perturb(rng, g, CATS)) for k, g in gts]
    decoded = []
    real = panoptic.read_ids
    monkeypatch.setattr(panoptic, "read_ids", lambda *a, **k: decoded.append(a[1]) or real(*a, **k))
    m = CocoPanopticQuality(gt_json, keep_ground_truth=True)
    rounds = []
    for _ in range(3):
        m.reset()
        for k, p in preds:
            m.update(k, p.ids, p.segments_info)
        rounds.append(m.compute().to_panopticapi())
    assert decoded == [f"image {k}" for k, _ in gts]  # the first round only
    assert rounds[0] == rounds[1] == rounds[2]
    ref = PanopticQuality(CATS)
    for (k, g), (_, p) in zip(gts, preds, strict=True):
        ref.update(p.ids, p.segments_info, g.ids, g.segments_info, k)
    assert rounds[0] == ref.compute().to_panopticapi()
    assert m.ground_truth.kept_bytes == sum(g.ids.size for _, g in gts)  # a byte per pixel
    unkept = CocoPanopticQuality(gt_json)
    unkept.update(1, preds[0][1].ids, preds[0][1].segments_info)
    unkept.reset()
    unkept.update(1, preds[0][1].ids, preds[0][1].segments_info)
    assert decoded[len(gts):] == ["image 1", "image 1"] and unkept.ground_truth.kept_bytes == 0


def test_an_image_the_ground_truth_does_not_have_is_refused_by_name(coco_sample: Path) -> None:
    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    m = CocoPanopticQuality(gt_json)
    ids = np.zeros((4, 4), np.int64)
    with pytest.raises(InputError) as e:
        m.update(7, ids, [])
    assert str(e.value) == (f"{gt_json}: no annotation of image 7; pass the ids of this JSON's images (or the "
                            "ground-truth JSON of the images you evaluate)")
    with pytest.raises(InputError, match="image_id '142238' is a str but the ground truth has 142238"):
        m.update("142238", ids, [])
    with pytest.raises(InputError, match="nowhere: gt_folder not found; point gt_folder at the folder of "):
        CocoPanopticQuality(gt_json, coco_sample / "nowhere")
    assert m.n_images == 0
    gt = json.loads(gt_json.read_text())["annotations"][0]
    ids = rgb2id(decode_png(coco_sample / "annotations" / "panoptic_val2017" / gt["file_name"], "t"))
    m.update(gt["image_id"], ids, gt["segments_info"])
    with pytest.raises(InputError, match=f"image {gt['image_id']}: scored already since the last reset"):
        m.update(gt["image_id"], ids, gt["segments_info"])
    assert m.n_images == 1


def _rank(rank: int, world: int, port: int, gt_json: str, preds: list, out: str) -> None:
    import torch.distributed as dist
    from helpers import close_ranks, end_rank

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        m = CocoPanopticQuality(gt_json, analyses=True)
        for k, ids, segs in preds[rank::world]:
            m.update(k, ids, segs)
        m.sync()
        m.sync()  # once per round: a second call adds nothing
        res = m.compute()
        Path(out, f"{rank}.json").write_text(json.dumps({"api": res.to_panopticapi(), "n": res.n_images,
                                                         "dagger": res.analyses["pq_dagger"]}))
    finally:
        close_ranks()
    end_rank()


@pytest.mark.slow
def test_sync_adds_the_sums_of_two_gloo_ranks_to_one_processs_numbers(tmp_path: Path) -> None:
    import socket

    import torch.multiprocessing as tmp

    rng = np.random.default_rng(3)
    gts = [(k, random_image(rng, 60, 80, CATS)) for k in range(1, 8)]
    gt_json, _ = write_panoptic(tmp_path, "gt", gts, CATS)
    preds = [(k, p.ids, p.segments_info) for k, p in ((k, perturb(rng, g, CATS)) for k, g in gts)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp.spawn(_rank, args=(2, port, str(gt_json), preds, str(tmp_path)), nprocs=2, join=True)
    one = CocoPanopticQuality(gt_json, analyses=True)
    for k, ids, segs in preds[0::2] + preds[1::2]:  # the ranks' order after sync
        one.update(k, ids, segs)
    want = one.compute()
    for rank in (0, 1):
        got = json.loads((tmp_path / f"{rank}.json").read_text())
        assert got["n"] == 7
        assert got["api"] == json.loads(json.dumps(want.to_panopticapi()))
        assert got["dagger"] == pytest.approx(want.analyses["pq_dagger"])


def test_a_ground_truth_refused_in_round_1_is_refused_in_round_2_too(tmp_path: Path) -> None:
    """A kept image is kept once its first score has checked it: duplicate segment ids are refused every round."""
    rng = np.random.default_rng(5)
    g = random_image(rng, 40, 50, CATS)
    bad = [*g.segments_info, dict(g.segments_info[0])]  # a duplicate id
    gt_json, _ = write_panoptic(tmp_path, "gt", [(1, g)], CATS)
    data = json.loads(gt_json.read_text())
    data["annotations"][0]["segments_info"] = bad
    gt_json.write_text(json.dumps(data))
    m = CocoPanopticQuality(gt_json, keep_ground_truth=True)
    for _ in range(2):
        m.reset()
        with pytest.raises(InputError, match="duplicate segment id"):
            m.update(1, g.ids, g.segments_info)
    assert m.ground_truth.kept_bytes == 0 and m.n_images == 0
