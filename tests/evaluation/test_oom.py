"""Out of memory: a batch is split in halves, a single image falls back to the CPU; both recorded,
no image dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from panbench.data.datasets import PanopticDataset, Sample
from panbench.errors import PanbenchError
from panbench.evaluation.loop import Timings, forward_resilient
from panbench.pq.matching import CategoryTable


class FakeModel:
    """Runs out of memory on 'cuda' for batches above `limit` images, or always for image `huge`."""

    def __init__(self, limit: int, huge: int | None = None, device: str = "cuda:0") -> None:
        self.limit, self.huge, self.device, self.moves = limit, huge, device, []

    def to(self, device: str) -> FakeModel:
        self.moves.append(device)
        self.device = device
        return self

    def test_step(self, data: dict) -> list:
        ids = [d for d in data["inputs"]]
        if self.device != "cpu" and (len(ids) > self.limit or self.huge in ids):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [(i, self.device) for i in ids]


def _dataset(n: int) -> PanopticDataset:
    samples = [Sample(100 + i, Path("x.jpg"), Path("x.png"), 4, 4, {}) for i in range(n)]
    return PanopticDataset("t", Path("."), CategoryTable([1], ["a"], [True]), samples, Path("a.json"))


def _items(n: int) -> list[dict]:
    return [{"index": i, "data": {"inputs": i, "data_samples": None}} for i in range(n)]


def test_batch_is_split_until_it_fits() -> None:
    t = Timings()
    out = forward_resilient(FakeModel(limit=2), _items(8), "cuda:0", None, t, _dataset(8))
    assert [o[0] for o in out] == list(range(8)) and t.oom_splits == 3 and not t.cpu_fallback_images


def test_single_image_falls_back_to_cpu_and_is_recorded() -> None:
    t = Timings()
    model = FakeModel(limit=1, huge=2)
    out = forward_resilient(model, _items(4), "cuda:0", None, t, _dataset(4))
    assert [o[0] for o in out] == [0, 1, 2, 3]
    assert dict(out)[2] == "cpu" and t.cpu_fallback_images == [102]
    assert model.moves == ["cpu", "cuda:0"] and model.device == "cuda:0"


def test_out_of_memory_on_cpu_is_a_clear_error() -> None:
    class CpuOom(FakeModel):
        def test_step(self, data):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 GB")

    with pytest.raises(PanbenchError, match="image 100: out of memory on the CPU"):
        forward_resilient(CpuOom(limit=0, device="cpu"), _items(1), "cpu", None, Timings(), _dataset(1))


def test_other_errors_are_not_swallowed() -> None:
    class Broken(FakeModel):
        def test_step(self, data):
            raise ValueError("bug")

    with pytest.raises(ValueError):
        forward_resilient(Broken(limit=9), _items(2), "cuda:0", None, Timings(), _dataset(2))
