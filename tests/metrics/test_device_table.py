"""The intersection table counted in torch on the id maps' own device (:mod:`panbench.metrics.device_table`), what
``PanopticQuality.update`` scores tensors on a GPU with: on CPU tensors (the metric's switch ``torch_table_on_cpu``)
its table equals the C table and its numpy twin's (tests/kernel_references.py), the metric's results equal the host
path's, and every refusal of the host path comes with the same one-line message. The CUDA test runs where a GPU is
(docs/gpu.md)."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS
from helpers import image_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_references import Twin, pair_counts

from panbench import PanopticQuality
from panbench.data.synth import PanopticImage, perturb, random_image
from panbench.errors import InputError
from panbench.metrics import panoptic
from panbench.metrics.device_table import device_map, device_pair_table, on_device
from panbench.metrics.panoptic import category_table
from panbench.pq import kernels
from panbench.pq.evaluator import pair_table
from panbench.pq.png import read_ids

torch = pytest.importorskip("torch")

TABLE = category_table(CATS)
THING = next(c["id"] for c in CATS if c["isthing"])


def tensor(x: Any, device: str = "cpu") -> Any:
    """A map as a model hands it over: a tensor (int64, or the array's own dtype where torch has it)."""
    arr = np.ascontiguousarray(x)
    return torch.from_numpy(arr if arr.dtype != np.uint32 else arr.astype(np.int64)).to(device)


def metric(on_device_path: bool, cats: Any = CATS, **kw: Any) -> PanopticQuality:
    m = PanopticQuality(cats, **kw)
    m.torch_table_on_cpu = on_device_path
    return m


def outcome(m: PanopticQuality, *args: Any, **kw: Any) -> tuple[str, str] | bytes:
    """What ``m.update`` gives: the refusal (its type and its one line), else the pickled result."""
    try:
        return pickle.dumps(m.update(*args, **kw))
    except InputError as e:
        assert "\n" not in str(e)
        return type(e).__name__, str(e)


def both_tables(gt: PanopticImage, pred: PanopticImage, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """The table of the host path (C, or its numpy twin where a test swaps it in) and of the device path, on CPU
    tensors."""
    host, _, _ = pair_table(TABLE, gt.ids, gt.segments_info, pred.ids, pred.segments_info, strict=strict, areas=False)
    dev, _, _ = device_pair_table(TABLE, device_map(tensor(gt.ids), "image", "gt_ids"), gt.segments_info,
                                  device_map(tensor(pred.ids), "image", "pred_ids"), pred.segments_info,
                                  strict=strict)
    return host, dev


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_pair(), st.data())
def test_the_device_table_equals_the_c_and_numpy_tables_on_random_images(pair: Any, data: Any) -> None:
    gt, pred = pair
    keep = data.draw(st.lists(st.booleans(), min_size=len(gt.segments_info), max_size=len(gt.segments_info)))
    gt = PanopticImage(gt.ids, [s for s, k in zip(gt.segments_info, keep) if k])  # dropped ids: row n_gt + 1
    host, dev = both_tables(gt, pred, strict=False)
    assert dev.dtype == np.int64 and dev.shape == (len(gt.segments_info) + 2, len(pred.segments_info) + 1)
    assert np.array_equal(dev, host)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "_native", Twin(kernels._native, pair_counts=pair_counts))  # the numpy twin
        numpy_host, _ = both_tables(gt, pred, strict=False)
    assert np.array_equal(dev, numpy_host)


def random_pairs(n: int, seed: int, size: tuple[int, int] = (60, 80)) -> list[tuple[Any, PanopticImage, PanopticImage]]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        gt = random_image(rng, *size, CATS)
        out.append((k, gt, perturb(rng, gt, CATS)))
    return out


@pytest.mark.parametrize("kw", [{}, {"analyses": True, "strict": True}], ids=["plain", "analyses-strict"])
def test_the_device_path_gives_the_host_paths_results_and_numbers(kw: dict) -> None:
    host, dev = metric(False, **kw), metric(True, **kw)
    for image_id, gt, pred in random_pairs(12, seed=3):
        gt_segs = [{k: v for k, v in s.items() if k != "area" or image_id % 2} for s in gt.segments_info]
        a = outcome(host, pred.ids, pred.segments_info, gt.ids, gt_segs, image_id=image_id)
        b = outcome(dev, tensor(pred.ids), pred.segments_info, tensor(gt.ids), gt_segs, image_id=image_id)
        assert isinstance(a, bytes) and a == b
    assert np.array_equal(host.sums(), dev.sums())
    assert pickle.dumps(host.result()) == pickle.dumps(dev.result())


def coco_pairs(root: Path) -> list[tuple[Any, np.ndarray, list, np.ndarray, list]]:
    """Each COCO sample image's ground truth and a prediction from it (shifted, merged, relabelled)."""
    gt_json = json.loads((root / "annotations" / "panoptic_val2017.json").read_text())
    rng = np.random.default_rng(11)
    out = []
    for ann in gt_json["annotations"]:
        ids = read_ids(root / "annotations" / "panoptic_val2017" / ann["file_name"], "coco", role="ground truth")
        pred = perturb(rng, PanopticImage(ids.astype(np.int64), ann["segments_info"]), gt_json["categories"])
        out.append((ann["image_id"], ids, ann["segments_info"], pred.ids, pred.segments_info))
    return out


def test_the_device_path_gives_the_host_paths_tables_and_results_on_the_coco_sample(coco_sample: Path) -> None:
    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    table = category_table(gt_json)
    host, dev = metric(False, gt_json, analyses=True), metric(True, gt_json, analyses=True)
    for image_id, gt_ids, gt_segs, pred_ids, pred_segs in coco_pairs(coco_sample):
        want, _, _ = pair_table(table, gt_ids, gt_segs, pred_ids, pred_segs, areas=False)
        got, _, _ = device_pair_table(table, device_map(tensor(gt_ids), "i", "gt_ids"), gt_segs,
                                      device_map(tensor(pred_ids), "i", "pred_ids"), pred_segs)
        assert np.array_equal(got, want) and want.sum() == gt_ids.size
        a = outcome(host, pred_ids, pred_segs, gt_ids, gt_segs, image_id=image_id)
        b = outcome(dev, tensor(pred_ids), pred_segs, tensor(gt_ids), gt_segs, image_id=image_id)
        assert isinstance(a, bytes) and a == b
    assert pickle.dumps(host.compute()) == pickle.dumps(dev.compute())


def test_a_png_as_hxwx3_rgb_tensor_is_read_on_the_device_as_on_the_host(coco_sample: Path) -> None:
    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    image_id, gt_ids, gt_segs, _, _ = coco_pairs(coco_sample)[0]
    rgb = np.stack([gt_ids & 255, (gt_ids >> 8) & 255, gt_ids >> 16], axis=-1).astype(np.uint8)
    a = outcome(metric(False, gt_json), rgb, gt_segs, gt_ids[None], gt_segs, image_id=image_id)
    b = outcome(metric(True, gt_json), tensor(rgb), gt_segs, tensor(gt_ids[None]), gt_segs, image_id=image_id)
    assert isinstance(a, bytes) and a == b


def swapped_channels(ids: np.ndarray) -> np.ndarray:
    return (ids >> 16) + ((ids >> 8) & 255) * 256 + (ids & 255) * 65536


def refusals() -> dict[str, tuple[Any, ...]]:
    """Bad updates (pred_ids, pred_segments, gt_ids, gt_segments, strict), by name."""
    gt = random_image(np.random.default_rng(7), 40, 50, CATS)
    ids, segs = gt.ids.astype(np.int64), gt.segments_info
    at = np.zeros_like(ids, bool)
    at[3, 4] = True
    later = np.roll(at, 9)
    encoded = ids.copy()  # detectron2's category_id * 1000 + instance instead of the segments' ids
    for k, seg in enumerate(segs, 1):
        encoded[ids == seg["id"]] = seg["category_id"] * 1000 + k
    return {
        "unlisted prediction id": (np.where(at, 77, ids), segs, ids, segs, False),
        "unlisted ground-truth id, strict": (ids, segs, np.where(at, 88, ids), segs, True),
        "both unlisted, ground truth first": (np.where(later, 77, ids), segs, np.where(at, 88, ids), segs, True),
        "both unlisted, prediction first": (np.where(at, 77, ids), segs, np.where(later, 88, ids), segs, True),
        "both unlisted at one pixel": (np.where(at, 77, ids), segs, np.where(at, 88, ids), segs, True),
        "prediction's channels swapped": (swapped_channels(ids), segs, ids, segs, False),
        "prediction's ids encode categories": (encoded, segs, ids, segs, False),
        "maps of two shapes": (ids[:, :49], segs, ids, segs, False),
        "prediction id out of range": (np.where(at, 256**3 + 5, ids), segs, ids, segs, False),
        "ground-truth id out of range": (ids, segs, np.where(later, -3, ids), segs, False),
        "both out of range": (np.where(at, -1, ids), segs, np.where(later, 256**3, ids), segs, False),
        "uint32 id above 2^24": (np.where(at, 256**3 + 9, ids).astype(np.uint32), segs, ids, segs, False),
        "float map": (ids.astype(np.float32), segs, ids, segs, False),
        "bool map": (ids > 0, segs, ids, segs, False),
        "map of four dimensions": (ids[None, None], segs, ids, segs, False),
        "segment absent from the map": (ids, [*segs, {"id": 4242, "category_id": THING}], ids, segs, False),
        "ground-truth area below its pixels": (ids, segs, ids, [dict(segs[0], area=1), *segs[1:]], False),
    }


@pytest.mark.parametrize("case", list(refusals()))
def test_each_refusal_of_the_host_path_comes_with_the_same_one_line_message_on_the_device(case: str) -> None:
    pred, pred_segs, gt, gt_segs, strict = refusals()[case]
    args = (torch.from_numpy(pred), pred_segs, torch.from_numpy(gt), gt_segs)  # the host path copies them
    want = outcome(metric(False, strict=strict), *args, image_id=5)
    got = outcome(metric(True, strict=strict), *args, image_id=5)
    assert isinstance(want, tuple), want
    assert got == want


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_pair(), st.data())
def test_random_unlisted_ids_are_refused_or_scored_alike_on_both_paths(pair: Any, data: Any) -> None:
    gt, pred = pair
    gt_ids, pred_ids = gt.ids.astype(np.int64), pred.ids.astype(np.int64)
    for ids, bad in ((gt_ids, 99), (pred_ids, 77)):
        for k in data.draw(st.lists(st.integers(0, ids.size - 1), max_size=2)):
            ids.flat[k] = bad
    strict = data.draw(st.booleans())
    args = (pred.segments_info, gt_ids, gt.segments_info)
    want = outcome(metric(False, strict=strict), pred_ids, *args)
    got = outcome(metric(True, strict=strict), tensor(pred_ids), pred.segments_info, tensor(gt_ids),
                  gt.segments_info)
    assert got == want


def test_a_uint32_ground_truth_id_above_2_24_counts_as_unlisted_on_both_paths() -> None:
    gt = random_image(np.random.default_rng(7), 40, 50, CATS)
    bad = gt.ids.astype(np.uint32)
    bad[2, 3] = 256**3 + 9  # out of range for any other dtype; a uint32 map's ids are looked up as they are
    args = (torch.from_numpy(gt.ids.astype(np.int64)), gt.segments_info, torch.from_numpy(bad), gt.segments_info)
    a, b = outcome(metric(False), *args), outcome(metric(True), *args)
    assert isinstance(a, bytes) and a == b


class MapReader:
    """An evaluator of the user's that reads the id maps."""

    needs = frozenset({"id_maps", "segments"})

    def reset(self) -> None:
        self.seen: list = []

    def process(self, image: Any) -> list:
        return [type(image.gt_ids).__name__, int(image.gt_ids.sum()), int(image.pred_ids.sum())]

    def add(self, share: list) -> None:
        self.seen.append(share)

    def merge(self, other: Any) -> None:
        self.seen += other.seen

    def evaluate(self) -> dict:
        return {"seen": self.seen}


def test_tensor_maps_stay_on_their_device_unless_an_evaluator_reads_them(monkeypatch) -> None:
    imgs = random_pairs(3, seed=5)
    readers = metric(False, evaluators=[MapReader()]), metric(True, evaluators=[MapReader()])
    for m in readers:
        for image_id, gt, pred in imgs:
            m.update(tensor(pred.ids), pred.segments_info, tensor(gt.ids), gt.segments_info, image_id=image_id)
    assert readers[0].result().evaluators == readers[1].result().evaluators
    assert readers[1].result().evaluators["MapReader"]["seen"][0][0] == "ndarray"

    def copied(*args: Any) -> None:
        raise AssertionError("an id map was copied to the host")

    monkeypatch.setattr(panoptic, "id_map", copied)
    m = metric(True, rules=("panopticapi",))  # PQ and the rule read the result alone
    for image_id, gt, pred in imgs:
        m.update(tensor(pred.ids), pred.segments_info, tensor(gt.ids), gt.segments_info, image_id=image_id)
    assert m.n_images == 3


def test_only_tensors_on_a_device_other_than_the_cpu_take_the_device_path() -> None:
    ids = np.zeros((2, 3), np.int64)
    t = torch.from_numpy(ids)
    assert on_device(t.to("meta"), t.to("meta"))
    assert not on_device(t, t) and on_device(t, t, cpu=True)
    assert not on_device(ids, t.to("meta")) and not on_device(ids, ids, cpu=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (a device check: docs/gpu.md)")
def test_cuda_tensors_give_the_host_paths_results(capsys) -> None:
    imgs = random_pairs(20, seed=9, size=(480, 640))
    host, dev = metric(False), metric(False)
    moved = [(i, tensor(p.ids, "cuda"), p.segments_info, tensor(g.ids, "cuda"), g.segments_info) for i, g, p in imgs]
    metric(False).update(*moved[0][1:])  # the CUDA context and kernels loaded before the timer
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i, p, p_segs, g, g_segs in moved:
        dev.update(p, p_segs, g, g_segs, image_id=i)
    dev_s = time.perf_counter() - start
    start = time.perf_counter()
    for i, p, p_segs, g, g_segs in moved:
        host.update(p.cpu(), p_segs, g.cpu(), g_segs, image_id=i)
    host_s = time.perf_counter() - start
    assert pickle.dumps(host.result()) == pickle.dumps(dev.result())
    with capsys.disabled():
        print(f"\n{len(moved)} images 480x640: {dev_s / len(moved) * 1e3:.2f} ms per update on CUDA, "
              f"{host_s / len(moved) * 1e3:.2f} ms with the maps copied to the host")
