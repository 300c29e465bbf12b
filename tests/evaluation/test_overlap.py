"""The eval loop runs a family's deferred fusion, the conversion to segments and the scoring on its post-processing
thread while the next batch's forward runs: with a slow stand-in forward the wall time is the forward's, not
forward + post-processing, and the record's timings show both."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
from helpers import pq_columns
from PIL import Image

from panbench.data.datasets import load_dataset
from panbench.evaluation.inference import Shard, run_inference
from panbench.evaluation.loading import LoadedModel
from panbench.evaluation.options import EvalOptions
from panbench.evaluators import Evaluators
from panbench.models.protocol import Abilities, PanopticModel, Weights

FORWARD_S, POST_S, IMAGES = 0.10, 0.08, 9  # per batch of one; the first batch is the warm-up


class SlowModel(Abilities):
    """A stand-in whose forward takes FORWARD_S and whose fusion takes POST_S (sleeps: the GIL is free, as in a
    CUDA forward or a C kernel); its prediction is the ground truth's first category everywhere."""

    instance_source = None

    def __init__(self, label2cat: list[int]) -> None:
        self.names, self.label2cat = ["x"], label2cat[:1]
        self.deferring, self.in_forward = False, 0
        self.threads: set[int] = set()  # torch's thread count wherever the fusion ran
        self.module = torch.nn.Identity()

    def pipeline(self, item: dict[str, Any]) -> dict[str, Any]:
        with Image.open(item["img_path"]) as im:
            return {"hw": (im.height, im.width)}

    def input_hw(self, item: Any) -> tuple[int, int]:
        return item["hw"]

    def batch_key(self, item: Any) -> tuple[int, ...]:
        return item["hw"]

    def forward(self, batch: list[Any], device: str, amp: str | None) -> list[Any]:
        self.in_forward += 1
        try:
            time.sleep(FORWARD_S)
            return [{"hw": b["hw"], "fused": False} for b in batch] if self.deferring else self._fuse(batch)
        finally:
            self.in_forward -= 1

    def finish(self, outputs: list[Any]) -> list[Any]:
        return outputs if all(o["fused"] for o in outputs) else self._fuse(outputs)

    def _fuse(self, outputs: list[Any]) -> list[Any]:
        self.threads.add(torch.get_num_threads())
        time.sleep(POST_S)
        return [{"hw": o["hw"], "fused": True} for o in outputs]

    def to_segments(self, output: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        assert output["fused"]
        return np.ones(output["hw"], np.uint32), [{"id": 1, "category_id": self.label2cat[0], "iscrowd": 0}]

    def to_instances(self, output: Any) -> None:
        return None

    def to_semantic(self, output: Any) -> None:
        return None

    @contextmanager
    def timed_fusion(self, seconds: list[float], sync: Any) -> Any:
        yield

    def configure(self, postprocess: Any, fusion: str) -> None:
        return None

    def query_masks(self, item: Any, device: str, top: int) -> Any:
        return self.forward([item], device, None)[0], []

    def compile_targets(self) -> list:
        return []

    def to(self, device: str) -> SlowModel:
        return self


class DeferringSlowModel(SlowModel):
    """The same model deferring its fusion (``deferred``): the loop runs ``finish`` on its thread."""

    @contextmanager
    def deferred(self) -> Any:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False


def _run(model: SlowModel, demo_root) -> tuple[Any, Evaluators]:
    ds = load_dataset(demo_root, name="demo", limit=IMAGES)
    fam = model
    assert isinstance(fam, PanopticModel)
    evaluators = Evaluators.for_run(ds.categories, ap=False)
    opts = EvalOptions(workers=0, warmup=1, progress=False, resume=False)
    t = run_inference(LoadedModel(fam, Weights(None, None, None), "", ""), ds, [evaluators],
                      Shard(list(range(len(ds.samples))), "cpu", opts))
    return t, evaluators


@pytest.fixture
def deferring(monkeypatch):
    """The fusion deferred on the CPU too (the eval defers it where the forward runs on a GPU)."""
    from panbench.evaluation import inference as loop

    monkeypatch.setattr(loop, "defers_fusion", lambda device: True)


def test_the_deferred_fusion_runs_while_the_next_forward_runs_so_wall_time_is_the_forwards(demo_root,
                                                                                           deferring) -> None:
    model = DeferringSlowModel([1])
    assert isinstance(model, PanopticModel)
    t, evaluators = _run(model, demo_root)
    timed = IMAGES - 1
    assert t.timed_images == timed and pq_columns(evaluators).n_kept() == IMAGES  # every image scored
    assert t.forward_s == pytest.approx(timed * FORWARD_S, rel=0.5)
    assert t.postprocess_s >= 0.9 * timed * POST_S and t.fusion_s >= 0.9 * timed * POST_S  # ran, on the thread
    # overlapped: the wall clock is the forwards' and one last fusion, not forward + post-processing
    assert t.wall_s < t.forward_s + 0.5 * t.postprocess_s, t.as_dict()


def test_the_post_processing_thread_computes_with_the_forwards_torch_thread_count(demo_root, deferring) -> None:
    """The thread count decides which elements an elementwise kernel computes in its scalar tail (whose last bit
    may differ from the vector body's): the deferred fusion runs with the count the forward has."""
    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            model = DeferringSlowModel([1])
            _run(model, demo_root)
            assert model.threads == {n}
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("model", [SlowModel, DeferringSlowModel])
def test_a_family_without_deferred_fusion_and_any_on_the_cpu_fuse_inside_the_forward(demo_root, model) -> None:
    """A family without ``deferred``/``finish``, and any family whose forward runs on the CPU (the fusion's torch
    work would take the forward's cores): the fusion runs in the forward."""
    from panbench.evaluation.inference import defers_fusion

    assert defers_fusion("cuda:0") and not defers_fusion("cpu")
    t, evaluators = _run(model([1]), demo_root)
    assert pq_columns(evaluators).n_kept() == IMAGES
    # the fusion is part of the forward here: wall time is forward + fusion, nothing to overlap
    assert t.forward_s >= 0.9 * (IMAGES - 1) * (FORWARD_S + POST_S)
    assert t.wall_s >= t.forward_s


def test_a_post_processing_thread_that_died_is_an_error_not_a_hang_of_the_batch_handed_over() -> None:
    import threading

    from panbench.evaluation.inference import _Pass, _PostProcessor
    from panbench.evaluation.timings import Timings

    post = _PostProcessor(Abilities(), None, None, Timings(), lambda: None)  # never started: as one that died
    post.q.put_nowait("a batch it never took")
    one = _Pass(None, post)  # type: ignore[arg-type]
    out: list[BaseException] = []

    def hand_over() -> None:
        try:
            one._hand_over([], [], False)
        except RuntimeError as e:
            out.append(e)

    waiter = threading.Thread(target=hand_over, daemon=True)
    waiter.start()
    waiter.join(10)
    assert out, "the batch still waits for a thread that is gone"
    assert str(out[0]) == "the post-processing thread ended before the last batch; rerun to resume"
