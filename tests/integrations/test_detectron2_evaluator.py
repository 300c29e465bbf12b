"""panbench.integrations.detectron2.PanbenchPanopticEvaluator against detectron2's own ``COCOPanopticEvaluator``
(detectron2 at the commit of ../shared/vendor, unpacked for the session): the same outputs give the same result
dict, number for number, through ``process``/``evaluate``, ``inference_on_dataset``, and two gloo ranks; bad input
is refused in one line and changes nothing.  Runs in the torchvision tier (``make test-vision``)."""

from __future__ import annotations

import copy
import json
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench.package import REPO_ROOT

pytest.importorskip("torchvision", reason="torchvision is not installed (make setup-vision; make test-vision)")
for _dep in ("panopticapi", "fvcore", "iopath", "tabulate", "omegaconf"):
    pytest.importorskip(_dep, reason=f"{_dep}, which detectron2's evaluation needs, is not installed (make "
                                     "setup-vision)")
pytestmark = pytest.mark.torchvision

import torch  # noqa: E402
from helpers import write_perturbed_sample  # noqa: E402

from panbench.errors import InputError  # noqa: E402

VENDOR = REPO_ROOT.parent / "shared" / "vendor" / "detectron2-02b5c4e.tar.gz"
KEYS = {"PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"}
DIVISOR = 1000


@pytest.fixture(scope="session")
def detectron2_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """detectron2's Python package unpacked into a temporary folder, on sys.path for the session."""
    if not VENDOR.is_file():
        pytest.skip(f"detectron2's source is not at {VENDOR} (../shared/vendor)")
    dst = tmp_path_factory.mktemp("detectron2")
    with tarfile.open(VENDOR) as tar:
        tar.extractall(dst, filter="data")
    src = next(dst.glob("*/detectron2")).parent
    sys.path.insert(0, str(src))
    return src


@pytest.fixture(autouse=True)
def _detectron2(detectron2_src: Path) -> None:
    pytest.importorskip("detectron2.evaluation")


def register(gt_json: Path, gt_dir: Path, label_divisor: int | None = DIVISOR, stuff_all: bool = False) -> str:
    """A dataset of MetadataCatalog as detectron2's builtin COCO panoptic registers it (contiguous ids: the index
    in the JSON's categories, things and stuff disjoint), or with ``stuff_all`` as Mask2Former's and OneFormer's
    code registers it (``stuff_dataset_id_to_contiguous_id`` holds every category); its name."""
    from detectron2.data import MetadataCatalog

    cats = json.loads(Path(gt_json).read_text())["categories"]
    name = f"panbench_test_{uuid.uuid4().hex[:8]}"
    meta: dict[str, Any] = dict(
        thing_dataset_id_to_contiguous_id={c["id"]: k for k, c in enumerate(cats) if c["isthing"]},
        stuff_dataset_id_to_contiguous_id={c["id"]: k for k, c in enumerate(cats) if stuff_all or not c["isthing"]},
        panoptic_json=str(gt_json), panoptic_root=str(gt_dir))
    if label_divisor is not None:
        meta["label_divisor"] = label_divisor
    MetadataCatalog.get(name).set(**meta)
    return name


def pairs_from_pngs(pred_json: Path, pred_dir: Path, dataset: str, form: str) -> list[tuple[dict, dict]]:
    """(input, output) pairs as a detectron2 panoptic model gives them, from COCO prediction PNGs: ``form``
    "segments": (int32 id map, segments_info with contiguous ids and isthing); "labels": (category *
    label_divisor + instance, -1 VOID; None)."""
    from panbench.pq.kernels import rgb2id
    from panbench.pq.png import decode_png

    anns = json.loads(Path(pred_json).read_text())["annotations"]
    return [pair(a["image_id"], rgb2id(decode_png(Path(pred_dir) / a["file_name"], "test")), a["segments_info"],
                 dataset, form) for a in anns]


def pair(image_id: Any, ids: np.ndarray, segments: list[dict], dataset: str, form: str,
         dtype: Any = np.int32) -> tuple[dict, dict]:
    """(input, output) of one image; with ``form`` "labels" the map in ``dtype``."""
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(dataset)
    things, stuff = meta.thing_dataset_id_to_contiguous_id, meta.stuff_dataset_id_to_contiguous_id
    inp = {"image_id": image_id, "file_name": f"/images/{image_id}.jpg"}
    if form == "segments":
        info = [{"id": s["id"], "category_id": things.get(s["category_id"], stuff.get(s["category_id"])),
                 "isthing": s["category_id"] in things} for s in segments]
        return inp, {"panoptic_seg": (torch.from_numpy(ids.astype(np.int32)), info)}
    lut = {0: -1}
    per_class: dict[int, int] = {}
    for s in segments:
        c = things.get(s["category_id"], stuff.get(s["category_id"]))
        per_class[c] = per_class.get(c, -1) + 1
        lut[s["id"]] = c * meta.label_divisor + per_class[c]
    u, inv = np.unique(ids, return_inverse=True)
    pan = np.array([lut[int(v)] for v in u], np.int64)[inv].reshape(ids.shape).astype(dtype)
    return inp, {"panoptic_seg": (torch.from_numpy(pan), None)}


def fresh(out: dict) -> dict:
    """An output of its own (COCOPanopticEvaluator changes the map and the segments it is given)."""
    pan, info = out["panoptic_seg"]
    return {"panoptic_seg": (pan.clone(), copy.deepcopy(info))}


def run(evaluator: Any, pairs: list[tuple[dict, dict]], batch: int = 2) -> Any:
    evaluator.reset()
    for i in range(0, len(pairs), batch):
        part = pairs[i:i + batch]
        evaluator.process([p[0] for p in part], [fresh(p[1]) for p in part])
    return evaluator.evaluate()


def both(dataset: str, pairs: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    from detectron2.evaluation import COCOPanopticEvaluator

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    return run(COCOPanopticEvaluator(dataset), pairs), run(PanbenchPanopticEvaluator(dataset), pairs)


def assert_same(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs) == ["panoptic_seg"]
    assert set(ours["panoptic_seg"]) == set(theirs["panoptic_seg"]) == KEYS
    for k, v in theirs["panoptic_seg"].items():
        assert ours["panoptic_seg"][k] == pytest.approx(v, abs=1e-9, rel=0), k


@pytest.mark.parametrize("form", ["segments", "labels"])
def test_the_demo_sets_perturbed_ground_truth_gives_cocopanopticevaluators_numbers(demo_root: Path, tmp_path: Path,
                                                                                   form: str) -> None:
    ann = demo_root / "annotations"
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, 0)
    dataset = register(ann / "panoptic_val2017.json", ann / "panoptic_val2017")
    theirs, ours = both(dataset, pairs_from_pngs(pred_json, pred_dir, dataset, form))
    assert 1 < theirs["panoptic_seg"]["PQ"] < 99  # the predictions differ from the ground truth
    assert_same(ours, theirs)


@pytest.mark.parametrize("form", ["segments", "labels"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cocos_own_pngs_with_perturbed_predictions_give_cocopanopticevaluators_numbers(coco_sample: Path,
                                                                                      tmp_path: Path, seed: int,
                                                                                      form: str) -> None:
    ann = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, seed)
    dataset = register(ann / "panoptic_val2017.json", ann / "panoptic_val2017")
    theirs, ours = both(dataset, pairs_from_pngs(pred_json, pred_dir, dataset, form))
    assert 1 < theirs["panoptic_seg"]["PQ"] < 99
    assert_same(ours, theirs)


@pytest.fixture
def edge_set(tmp_path: Path) -> tuple[str, list[tuple[int, np.ndarray, list[dict]]]]:
    """Two 6x8 images: ground truth with VOID pixels and a crowd region; predictions (dataset ids) with VOID
    pixels, a segment on the crowd region, one on ground-truth VOID, an unmatched (false positive) segment, a
    missed (false negative) ground-truth segment, a wrong category and a stuff category split in two."""
    from panbench.data.synth import PanopticImage, write_panoptic

    cats = [{"id": 1, "name": "person", "isthing": 1}, {"id": 3, "name": "car", "isthing": 1},
            {"id": 7, "name": "sky", "isthing": 0}, {"id": 9, "name": "road", "isthing": 0}]
    gt = np.zeros((2, 6, 8), np.uint32)
    gt[0, :2] = 10  # sky
    gt[0, 2:, :4] = 11  # person
    gt[0, 2:, 4:6] = 12  # car crowd
    gt[0, 2:, 7] = 13  # road (missed); column 6 VOID
    gt[1, :3] = 20  # road
    gt[1, 3:, :3] = 21  # person
    gt[1, 3:, 3:5] = 22  # person, predicted as car
    gt_segs = [[{"id": 10, "category_id": 7, "iscrowd": 0}, {"id": 11, "category_id": 1, "iscrowd": 0},
                {"id": 12, "category_id": 3, "iscrowd": 1}, {"id": 13, "category_id": 9, "iscrowd": 0}],
               [{"id": 20, "category_id": 9, "iscrowd": 0}, {"id": 21, "category_id": 1, "iscrowd": 0},
                {"id": 22, "category_id": 1, "iscrowd": 0}]]
    for k, segs in enumerate(gt_segs):
        for s in segs:
            s["area"] = int((gt[k] == s["id"]).sum())
    gt_json, gt_dir = write_panoptic(tmp_path, "gt", [(k + 1, PanopticImage(gt[k], gt_segs[k])) for k in range(2)],
                                     cats)
    pred = np.zeros((2, 6, 8), np.int32)
    pred[0, :2, :5] = 1  # sky, split in two
    pred[0, :2, 5:] = 2  # sky
    pred[0, 2:, :3] = 3  # person (one column short)
    pred[0, 2:, 4:6] = 4  # car on the crowd region
    pred[0, 2:, 6] = 5  # person on ground-truth VOID; column 7 and pred[0, 2:, 3] VOID
    pred[1, :3] = 6  # road
    pred[1, 3:, :3] = 7  # person
    pred[1, 3:, 3:5] = 8  # car: the wrong category
    pred[1, 3:, 5:] = 9  # car, unmatched
    pred_segs = [[{"id": 1, "category_id": 7}, {"id": 2, "category_id": 7}, {"id": 3, "category_id": 1},
                  {"id": 4, "category_id": 3}, {"id": 5, "category_id": 1}],
                 [{"id": 6, "category_id": 9}, {"id": 7, "category_id": 1}, {"id": 8, "category_id": 3},
                  {"id": 9, "category_id": 3}]]
    return register(gt_json, gt_dir), [(k + 1, pred[k], pred_segs[k]) for k in range(2)]


@pytest.mark.parametrize("form", ["segments", "labels"])
def test_void_crowd_unmatched_and_missed_segments_score_as_cocopanopticevaluator(edge_set: Any, form: str) -> None:
    dataset, preds = edge_set
    theirs, ours = both(dataset, [pair(i, ids, segs, dataset, form) for i, ids, segs in preds])
    assert 1 < theirs["panoptic_seg"]["PQ"] < 99 and theirs["panoptic_seg"]["RQ_st"] < 100
    assert_same(ours, theirs)


def same_set_registered_again(dataset: str, stuff_all: bool) -> str:
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(dataset)
    return register(Path(meta.panoptic_json), Path(meta.panoptic_root), stuff_all=stuff_all)


@pytest.mark.parametrize("stuff_all", [False, True], ids=["disjoint", "stuff-map-of-every-category"])
@pytest.mark.parametrize("dtype", [np.int64, np.int16, np.uint16, "int64-strided"], ids=str)
def test_label_maps_of_every_integer_type_give_cocopanopticevaluators_numbers(edge_set: Any, dtype: Any,
                                                                             stuff_all: bool) -> None:
    """segments_info None with the map in int64 (what an argmax gives, Panoptic-DeepLab's), int16, uint16 (no
    VOID then: -1 does not fit) and a non-contiguous int64 view; the metadata as detectron2's builtin COCO
    panoptic registers it or as Mask2Former's code does (every category in the stuff map)."""
    dataset, preds = edge_set
    dataset = same_set_registered_again(dataset, stuff_all)
    pairs = []
    for i, ids, segs in preds:
        if dtype == np.uint16:
            segs = [s for s in segs if s["id"] != 0]
            ids = np.where(ids == 0, preds[0][2][0]["id"], ids)  # every pixel a segment's
        inp, out = pair(i, ids, segs, dataset, "labels", np.int64 if dtype == "int64-strided" else dtype)
        if dtype == "int64-strided":
            pan = out["panoptic_seg"][0]
            out = {"panoptic_seg": (pan.t().contiguous().t(), None)}
            assert not out["panoptic_seg"][0].is_contiguous()
        pairs.append((inp, out))
    theirs, ours = both(dataset, pairs)
    assert 1 < theirs["panoptic_seg"]["PQ"] < 99
    assert_same(ours, theirs)


@pytest.mark.parametrize("form", ["segments", "labels"])
def test_the_stuff_map_of_every_category_on_cocos_own_pngs_gives_cocopanopticevaluators_numbers(
        coco_sample: Path, tmp_path: Path, form: str) -> None:
    ann = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, 0)
    dataset = register(ann / "panoptic_val2017.json", ann / "panoptic_val2017", stuff_all=True)
    theirs, ours = both(dataset, pairs_from_pngs(pred_json, pred_dir, dataset, form))
    assert 1 < theirs["panoptic_seg"]["PQ"] < 99
    assert_same(ours, theirs)


def test_segments_without_isthing_carry_the_datasets_own_category_ids(edge_set: Any) -> None:
    """``isthing`` absent: the category id is the dataset's (COCOPanopticEvaluator converts nothing); mixed with
    segments of contiguous ids (isthing True / False) in one image."""
    dataset, preds = edge_set
    pairs = [pair(i, ids, segs, dataset, "segments") for i, ids, segs in preds]
    info = pairs[0][1]["panoptic_seg"][1]
    for s, orig in zip(info[::2], preds[0][2][::2]):
        del s["isthing"]
        s["category_id"] = orig["category_id"]
    theirs, ours = both(dataset, pairs)
    assert_same(ours, theirs)


def test_the_outputs_are_left_as_they_were_given(edge_set: Any) -> None:
    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    dataset, preds = edge_set
    pairs = [pair(i, ids, segs, dataset, form) for i, ids, segs in preds for form in ("segments", "labels")][:2]
    kept = [fresh(o) for _, o in pairs]
    ev = PanbenchPanopticEvaluator(dataset)
    ev.reset()
    ev.process([p[0] for p in pairs[:1]], [p[1] for p in pairs[:1]])
    ev.reset()
    ev.process([pairs[1][0]], [pairs[1][1]])
    for (_, o), k in zip(pairs, kept):
        assert torch.equal(o["panoptic_seg"][0], k["panoptic_seg"][0]) and o["panoptic_seg"][1] == k["panoptic_seg"][1]


@pytest.mark.parametrize("keep", [False, True])
def test_a_round_after_reset_counts_its_own_images_and_keep_ground_truth_reads_no_png_again(edge_set: Any,
                                                                                           keep: bool) -> None:
    import shutil

    from detectron2.data import MetadataCatalog

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    dataset, preds = edge_set
    pairs = [pair(i, ids, segs, dataset, "labels") for i, ids, segs in preds]
    ev = PanbenchPanopticEvaluator(dataset, keep_ground_truth=keep)
    first = run(ev, pairs)
    if keep:
        shutil.rmtree(MetadataCatalog.get(dataset).panoptic_root)
    assert_same(run(ev, pairs), first)


class _Renamed:
    """An evaluator whose result key is renamed (DatasetEvaluators refuses two results named panoptic_seg)."""

    def __init__(self, inner: Any, key: str) -> None:
        self.inner, self.key = inner, key

    def reset(self) -> None:
        self.inner.reset()

    def process(self, inputs: Any, outputs: Any) -> None:
        self.inner.process(inputs, outputs)

    def evaluate(self) -> Any:
        return {self.key: self.inner.evaluate()["panoptic_seg"]}


class _Lookup(torch.nn.Module):
    """A panoptic model of detectron2's interface: each input's prediction looked up by its image id."""

    def __init__(self, outputs: dict[Any, dict]) -> None:
        super().__init__()
        self.outputs = outputs
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs: list[dict]) -> list[dict]:
        return [fresh(self.outputs[i["image_id"]]) for i in inputs]


@pytest.mark.parametrize(("form", "panbench_first"), [("segments", True), ("segments", False), ("labels", True)])
def test_inference_on_dataset_with_both_evaluators_gives_equal_numbers(coco_sample: Path, tmp_path: Path, form: str,
                                                                       panbench_first: bool) -> None:
    """``inference_on_dataset`` drives a model and a ``DatasetEvaluators`` of both (in either order for
    segments_info lists; panbench's first for segments_info None: COCOPanopticEvaluator adds 1 to that map in
    place)."""
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_panoptic
    from detectron2.evaluation import COCOPanopticEvaluator, DatasetEvaluators, inference_on_dataset

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    ann = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, 2)
    name = f"panbench_test_{uuid.uuid4().hex[:8]}"
    cats = json.loads((ann / "panoptic_val2017.json").read_text())["categories"]
    meta = dict(thing_dataset_id_to_contiguous_id={c["id"]: k for k, c in enumerate(cats) if c["isthing"]},
                stuff_dataset_id_to_contiguous_id={c["id"]: k for k, c in enumerate(cats) if not c["isthing"]})
    register_coco_panoptic(name, meta, str(coco_sample / "val2017"), str(ann / "panoptic_val2017"),
                           str(ann / "panoptic_val2017.json"))
    dicts = DatasetCatalog.get(name)
    outputs = {i["image_id"]: o for i, o in pairs_from_pngs(pred_json, pred_dir, name, form)}
    evaluators = [_Renamed(PanbenchPanopticEvaluator(name), "panbench"), _Renamed(COCOPanopticEvaluator(name), "d2")]
    loader = [[d] for d in dicts]
    res = inference_on_dataset(_Lookup(outputs), loader, DatasetEvaluators(evaluators[::1 if panbench_first else -1]))
    assert set(res) == {"panbench", "d2"} and 1 < res["d2"]["PQ"] < 99
    assert_same({"panoptic_seg": res["panbench"]}, {"panoptic_seg": res["d2"]})


def _rank(rank: int, port: int, gt: tuple[str, str], pairs: list, out: Path, evaluators: tuple = ()) -> None:
    import os

    import torch.distributed as dist
    from helpers import close_ranks, end_rank

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        ev = PanbenchPanopticEvaluator(register(Path(gt[0]), Path(gt[1])), evaluators=evaluators)  # its catalog
        got = run(ev, pairs, batch=1)
        (out / f"rank{rank}.json").write_text(json.dumps(got))
    finally:
        close_ranks()
    end_rank()


def test_two_gloo_ranks_give_the_numbers_of_one_process(coco_sample: Path, tmp_path: Path) -> None:
    """Two real torch.distributed ranks (gloo, spawned processes), one image each: detectron2's comm gathers their
    sums to rank 0, which returns the numbers of both images; rank 1 returns None, as COCOPanopticEvaluator."""
    from helpers import free_port, spawn_ranks

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    ann = coco_sample / "annotations"
    gt = (str(ann / "panoptic_val2017.json"), str(ann / "panoptic_val2017"))
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, 3)
    dataset = register(Path(gt[0]), Path(gt[1]))
    pairs = pairs_from_pngs(pred_json, pred_dir, dataset, "segments")
    theirs, ours = both(dataset, pairs)
    assert_same(ours, theirs)
    with pytest.raises(InputError, match="no prediction"):  # one process, one of the two images
        run(PanbenchPanopticEvaluator(dataset), pairs[:1])
    port = free_port()
    assert spawn_ranks(_rank, [(r, port, gt, pairs[r::2], tmp_path) for r in range(2)]) == [0, 0]
    assert json.loads((tmp_path / "rank1.json").read_text()) is None
    assert_same(json.loads((tmp_path / "rank0.json").read_text()), theirs)


IMAGE_COUNT = f"{REPO_ROOT / 'examples' / 'evaluators' / 'image_count.py'}:ImageCount"


def test_a_user_evaluators_fields_are_a_task_of_its_name_in_one_process_and_over_two_gloo_ranks(
        coco_sample: Path, tmp_path: Path) -> None:
    """``evaluators=[...]``: detectron2's result dict gains the evaluator's task (``print_csv_format`` prints it),
    the PQ numbers stay COCOPanopticEvaluator's; two ranks give it every image once."""
    from detectron2.evaluation.testing import print_csv_format
    from helpers import free_port, spawn_ranks

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    ann = coco_sample / "annotations"
    gt = (str(ann / "panoptic_val2017.json"), str(ann / "panoptic_val2017"))
    want = {"images": 2, "gt_segments": sum(len(a["segments_info"])
                                            for a in json.loads(Path(gt[0]).read_text())["annotations"])}
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, 3)
    dataset = register(Path(gt[0]), Path(gt[1]))
    pairs = pairs_from_pngs(pred_json, pred_dir, dataset, "segments")
    theirs = both(dataset, pairs)[0]
    got = run(PanbenchPanopticEvaluator(dataset, evaluators=[IMAGE_COUNT]), pairs, batch=1)
    assert got.pop("ImageCount") == want
    assert_same(got, theirs)
    print_csv_format({**got, "ImageCount": want})
    port = free_port()
    assert spawn_ranks(_rank, [(r, port, gt, pairs[r::2], tmp_path, (IMAGE_COUNT,)) for r in range(2)]) == [0, 0]
    assert json.loads((tmp_path / "rank1.json").read_text()) is None
    got = json.loads((tmp_path / "rank0.json").read_text())
    assert got.pop("ImageCount") == want
    assert_same(got, theirs)


def test_an_evaluator_named_as_the_pq_task_is_refused_in_one_line(edge_set: Any, tmp_path: Path) -> None:
    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    clash = tmp_path / "clash.py"
    example = Path(IMAGE_COUNT.rpartition(":")[0]).read_text()
    clash.write_text(example.replace('"ImageCount", "1"', '"panoptic_seg", "1"'))
    with pytest.raises(InputError, match="named 'panoptic_seg', the task of the PQ numbers; give it another name"):
        PanbenchPanopticEvaluator(edge_set[0], evaluators=[f"{clash}:ImageCount"])


def _bad_outputs(dataset: str, preds: list) -> dict[str, tuple[Any, str]]:
    """Refused (image 1's output, the words its message holds)."""
    i, ids, segs = preds[0]
    good = pair(i, ids, segs, dataset, "segments")[1]["panoptic_seg"]
    labels = pair(i, ids, segs, dataset, "labels")[1]["panoptic_seg"][0]
    below = labels.clone()
    below[0, 0] = -2
    return {
        "float map": ((good[0].float(), good[1]), "floating-point"),
        "not a pair": (good[0], "give the pair (id map tensor, segments_info"),
        "unknown contiguous thing id": ((good[0], [{**good[1][0], "category_id": 99, "isthing": True}, *good[1][1:]]),
                                        "not a contiguous id of the thing of dataset"),
        # COCOPanopticEvaluator converts a thing only when isthing `is True`: a numpy True goes to the stuff ids
        "isthing numpy True": ((good[0], [*good[1][:2], {**good[1][2], "isthing": np.True_}, *good[1][3:]]),
                               "has isthing=np.True_ and category_id 0, not a contiguous id of the stuff"),
        "segment without id": ((good[0], [{"category_id": 1}, *good[1][1:]]), "each segment is a dict with 'id'"),
        "label below -1": ((below, None), "holds label -2"),
        "label of no class": ((torch.full_like(labels, 50 * DIVISOR), None), "of class 50"),
        # + 1 wraps the largest uint32 to 0 (VOID): it is refused as the label it is
        "uint32 maximum": ((torch.from_numpy(np.full(labels.shape, 2**32 - 1, np.uint32)), None),
                           "holds label 4294967295"),
        "pixel id not listed": ((good[0], good[1][1:]), "image 1: panoptic_seg's map holds id 1, which no entry of "
                                "panoptic_seg's segments_info lists; list every segment of panoptic_seg's map in "
                                "panoptic_seg's segments_info (0 is VOID)"),
        "-1 beside segments_info": ((torch.where(good[0] == 0, -1, good[0]), good[1]),
                                    "image 1: panoptic_seg's map holds -1, not a segment id (0 is VOID, 1..16777215 "
                                    "the ids of panoptic_seg's segments_info); map -1 to 0 (VOID)"),
    }


@pytest.mark.parametrize("case", ["float map", "not a pair", "unknown contiguous thing id", "isthing numpy True",
                                  "segment without id",
                                  "label below -1", "label of no class", "uint32 maximum", "pixel id not listed",
                                  "-1 beside segments_info", "unknown image", "image twice",
                                  "more inputs than outputs"])
def test_bad_output_is_refused_in_one_line_and_changes_nothing(edge_set: Any, case: str) -> None:
    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    dataset, preds = edge_set
    pairs = [pair(i, ids, segs, dataset, "segments") for i, ids, segs in preds]
    want = run(PanbenchPanopticEvaluator(dataset), pairs)
    ev = PanbenchPanopticEvaluator(dataset)
    ev.reset()
    ev.process([pairs[1][0]], [fresh(pairs[1][1])])
    sums = ev._coco.sums().copy()
    bad = _bad_outputs(dataset, preds)
    if case == "unknown image":
        inp, out, words = {"image_id": 77}, fresh(pairs[0][1]), "no annotation of image 77"
    elif case == "image twice":
        inp, out, words = pairs[1][0], fresh(pairs[1][1]), "scored already"
    else:
        inp, (out, words) = pairs[0][0], ({"panoptic_seg": bad.get(case, (None,))[0]}, bad.get(case, (0, ""))[1])
    with pytest.raises(InputError) as e:
        if case == "more inputs than outputs":
            words = "2 inputs and 1 outputs"
            ev.process([pairs[0][0], inp], [fresh(pairs[0][1])])
        else:
            ev.process([inp], [out])
    assert "\n" not in str(e.value) and words in str(e.value)
    assert np.array_equal(ev._coco.sums(), sums) and ev._coco.scored == {2}
    ev.process([pairs[0][0]], [fresh(pairs[0][1])])  # the round goes on as if the bad output was never given
    assert_same(ev.evaluate() or {}, want)


def test_a_dataset_without_panoptic_metadata_or_label_divisor_is_refused_in_one_line(edge_set: Any) -> None:
    from detectron2.data import MetadataCatalog

    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    dataset, preds = edge_set
    meta = MetadataCatalog.get(dataset)
    bare = f"panbench_test_{uuid.uuid4().hex[:8]}"
    MetadataCatalog.get(bare).set(thing_dataset_id_to_contiguous_id=meta.thing_dataset_id_to_contiguous_id,
                                  stuff_dataset_id_to_contiguous_id=meta.stuff_dataset_id_to_contiguous_id)
    with pytest.raises(InputError, match=f"dataset '{bare}' has no metadata 'panoptic_json'; register it") as e:
        PanbenchPanopticEvaluator(bare)
    assert "\n" not in str(e.value)
    no_divisor = register(Path(meta.panoptic_json), Path(meta.panoptic_root), label_divisor=None)
    ev = PanbenchPanopticEvaluator(no_divisor)
    ev.reset()
    i, ids, segs = preds[0]
    out = pair(i, ids, segs, dataset, "labels")[1]
    with pytest.raises(InputError, match="has no metadata 'label_divisor'; set MetadataCatalog") as e:
        ev.process([{"image_id": i}], [out])
    assert "\n" not in str(e.value) and not ev._coco.scored and not ev._coco.sums().any()


def test_a_round_missing_an_image_or_scoring_one_in_two_ranks_is_refused_in_one_line(edge_set: Any,
                                                                                    monkeypatch) -> None:
    from panbench.integrations import detectron2 as integration
    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    dataset, preds = edge_set
    pairs = [pair(i, ids, segs, dataset, "segments") for i, ids, segs in preds]
    ev = PanbenchPanopticEvaluator(dataset)
    ev.reset()
    ev.process([pairs[0][0]], [fresh(pairs[0][1])])
    with pytest.raises(InputError, match=r"1 of the 2 images of .* have no prediction \(image 2 first\)") as e:
        ev.evaluate()
    assert "\n" not in str(e.value)
    ev.process([pairs[1][0]], [fresh(pairs[1][1])])  # the round was left as it was: it can still be completed
    want: dict = ev.evaluate() or {}
    assert set(want["panoptic_seg"]) == KEYS
    monkeypatch.setattr(integration.comm, "gather", lambda data, dst=0: [data, data])  # two ranks, same images
    with pytest.raises(InputError, match="image 1 was scored by two ranks"):
        ev.evaluate()


def test_the_benchmark_prints_a_ratio_only_when_every_number_agrees(coco_sample: Path, tmp_path: Path, capsys,
                                                                    monkeypatch) -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import bench_detectron2

    from panbench.integrations import detectron2 as integration

    records, gt_json, gt_dir, _ = bench_detectron2.coco_records(tmp_path, 4, coco_sample / "annotations")
    assert bench_detectron2.bench("coco", records, gt_json, gt_dir, batch=2)
    out = capsys.readouterr().out
    assert "every number equal" in out and "speed-up of PanbenchPanopticEvaluator" in out
    real = integration._print_panoptic_results

    def shifted(pq: dict) -> None:
        pq["All"]["pq"] += 1e-6
        real(pq)

    monkeypatch.setattr(integration, "_print_panoptic_results", shifted)
    assert not bench_detectron2.bench("coco", records, gt_json, gt_dir, batch=2)
    out = capsys.readouterr().out
    assert "NUMBERS DIFFER" in out and "speed-up" not in out


def test_the_values_present_in_a_map_are_np_uniques_whatever_its_runs() -> None:
    from panbench.integrations.detectron2 import present_values

    rng = np.random.default_rng(0)
    maps = [np.zeros(0, np.int32), np.array([7], np.int32), np.full(50, -1, np.int64),
            rng.integers(-1, 3, 1000).astype(np.int32),  # a run at every few pixels
            np.repeat(rng.integers(0, 200_000, 40), rng.integers(1, 500, 40)),  # long runs, values seen again
            rng.integers(0, 1 << 24, 5000).astype(np.uint32)]  # no two neighbours alike
    for flat in maps:
        got = present_values(flat)
        assert np.array_equal(got, np.unique(flat)) and got.dtype == flat.dtype


def test_a_refused_output_in_a_batch_keeps_the_images_scored_before_it(edge_set: Any) -> None:
    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator

    dataset, preds = edge_set
    pairs = [pair(i, ids, segs, dataset, "segments") for i, ids, segs in preds]
    want = run(PanbenchPanopticEvaluator(dataset), pairs)
    ev = PanbenchPanopticEvaluator(dataset)
    ev.reset()
    bad = {"panoptic_seg": (pairs[1][1]["panoptic_seg"][0].float(), pairs[1][1]["panoptic_seg"][1])}
    with pytest.raises(InputError, match="floating-point"):
        ev.process([pairs[0][0], pairs[1][0]], [fresh(pairs[0][1]), bad])
    assert ev._coco.scored == {1}
    ev.process([pairs[1][0]], [fresh(pairs[1][1])])
    assert_same(ev.evaluate() or {}, want)


def test_every_evaluation_with_a_diagnosis_logs_it_and_warns(edge_set: Any, monkeypatch, caplog) -> None:
    """Each evaluation of a training loop puts the diagnosis in detectron2's log and warns, not the first alone (the
    finding stands in for one the sums show: two 6x8 images are too few for the mapping rule)."""
    import logging
    import warnings

    from panbench import DiagnosisWarning, Finding
    from panbench.integrations.detectron2 import PanbenchPanopticEvaluator
    from panbench.metrics import panoptic

    monkeypatch.setattr(panoptic, "diagnose", lambda stats, cats: [Finding("category_mapping", "another order")])
    dataset, preds = edge_set
    pairs = [pair(i, ids, segs, dataset, "labels") for i, ids, segs in preds]
    ev = PanbenchPanopticEvaluator(dataset)
    with caplog.at_level(logging.WARNING, logger="panbench.integrations.detectron2"), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            assert set(run(ev, pairs)["panoptic_seg"]) == KEYS
    assert len([r for r in caplog.records if "category_mapping: another order" in r.getMessage()]) == 3
    assert len([w for w in caught if issubclass(w.category, DiagnosisWarning)]) == 3
