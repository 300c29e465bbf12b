"""Out of memory: a batch is split in halves, a single image falls back to the CPU; both recorded,
no image dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from panbench.data.datasets import PanopticDataset, Sample
from panbench.errors import PanbenchError
from panbench.evaluation.runtime import forward_resilient
from panbench.evaluation.timings import Timings
from panbench.pq.matching import CategoryTable


class FakeModel:
    """Runs out of memory on 'cuda' for batches above `limit` images, or always for image `huge`."""

    def __init__(self, limit: int, huge: int | None = None, device: str = "cuda:0") -> None:
        self.limit, self.huge, self.device, self.moves = limit, huge, device, []

    def to(self, device: str) -> FakeModel:
        self.moves.append(device)
        self.device = device
        return self

    def forward(self, batch: list, device: str, amp: str | None) -> list:
        ids = [d["inputs"] for d in batch]
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
        def forward(self, batch, device, amp):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 GB")

    with pytest.raises(PanbenchError, match="image 100: out of memory on the CPU"):
        forward_resilient(CpuOom(limit=0, device="cpu"), _items(1), "cpu", None, Timings(), _dataset(1))


def test_other_errors_are_not_swallowed() -> None:
    class Broken(FakeModel):
        def forward(self, batch, device, amp):
            raise ValueError("bug")

    with pytest.raises(ValueError):
        forward_resilient(Broken(limit=9), _items(2), "cuda:0", None, Timings(), _dataset(2))


def test_cpu_fallback_runs_in_fp32_whatever_the_amp() -> None:
    """The fallback runs without autocast: CPU kernels such as mmcv's nms_cpu take float32 only."""

    class RecordsAutocast(FakeModel):
        seen: list = []

        def forward(self, batch, device, amp):
            if self.device == "cpu":
                self.seen.append(torch.is_autocast_enabled("cpu"))
            return super().forward(batch, device, amp)

    t = Timings()
    model = RecordsAutocast(limit=0)
    out = forward_resilient(model, _items(1), "cuda:0", "bf16", t, _dataset(1))
    assert dict(out)[0] == "cpu" and t.cpu_fallback_images == [100]
    assert model.seen == [False]


@pytest.mark.parametrize("msg", [
    "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
    "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
    "cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",
    "CUDA out of memory. Tried to allocate 20.00 MiB",
    "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1000 bytes",
])
def test_is_oom_knows_cublas_and_cudnn_allocation_failures(msg) -> None:
    from panbench.evaluation.runtime import is_oom

    assert is_oom(RuntimeError(msg))
    assert not is_oom(RuntimeError("CUDNN_STATUS_BAD_PARAM")) and not is_oom(ValueError(msg))


# ---- real memory pressure on the CPU: the retry must find the failed attempt's memory freed ----

PRESSURE = r'''
import resource, sys
from pathlib import Path
import torch
from panbench.data.datasets import PanopticDataset, Sample
from panbench.errors import PanbenchError
from panbench.pq.matching import CategoryTable
from panbench.evaluation.runtime import forward_resilient
from panbench.evaluation.timings import Timings

MIB = 2**20
UNIT = 200 * MIB  # bytes of activations per image, allocated twice per forward pass


class Activations:
    """A FAKE model (test only) whose forward really allocates: UNIT bytes per image held in a
    local variable (an activation), then as much again (the output).  A batch of 2 needs 4 UNITs,
    one image 2 UNITs; the address-space limit below allows about 3."""

    def forward(self, batch, device, amp):
        n = len(batch)
        act = torch.ones(n * UNIT, dtype=torch.uint8)  # touched: real pages
        out = torch.ones(n * UNIT, dtype=torch.uint8)
        return [int(act[0]) + int(out[0])] * n


def vm_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024


torch.ones(1)  # start torch's allocator and threads before measuring
limit = vm_bytes() + 3 * UNIT
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
samples = [Sample(100 + i, Path("x.jpg"), Path("x.png"), 4, 4, {}) for i in range(2)]
ds = PanopticDataset("t", Path("."), CategoryTable([1], ["a"], [True]), samples, Path("a.json"))
items = [{"index": i, "data": {"inputs": i, "data_samples": None}} for i in range(2)]
t = Timings()
try:
    out = forward_resilient(Activations(), items, "cpu", None, t, ds)
except PanbenchError as e:
    print("FAILED", e)
    sys.exit(3)
print("OK", out, t.oom_splits)
'''


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the address-space size")
def test_retry_after_a_real_allocation_failure_finds_the_memory_freed(tmp_path) -> None:
    import subprocess
    import sys

    script = tmp_path / "pressure.py"
    script.write_text(PRESSURE)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    # the batch of 2 failed for real (one split), and each half ran once the first attempt's memory was freed
    assert r.returncode == 0 and "OK [2, 2] 1" in r.stdout, r.stdout + r.stderr[-2000:]


def test_forked_cpu_processes_keep_every_process_oom_split_count(monkeypatch) -> None:
    """Each forked process's OOM splits reach the run's total (one merge rule for processes and ranks)."""
    from panbench.evaluation import inference as cpu_procs
    from panbench.evaluation.inference import Shard
    from panbench.evaluation.options import EvalOptions
    from panbench.evaluators import Evaluators

    def fake_inference(lm, dataset, evaluators, shard, progress=None) -> Timings:  # one split, one timed image each
        n = len(shard.indices)
        return Timings(forward_s=0.5 * n, wall_s=1.0, timed_images=n, oom_splits=n)

    monkeypatch.setattr(cpu_procs, "run_inference", fake_inference)  # the forked children inherit it
    ds = _dataset(6)
    shard = Shard(indices=list(range(6)), device="cpu", opts=EvalOptions(progress=False))
    t = cpu_procs.run_inference_cpu(None, ds, [Evaluators.for_run(ds.categories)], shard, procs=3)
    assert (t.timed_images, t.oom_splits, t.forward_s, t.wall_s) == (6, 6, 3.0, 1.0)


def test_merging_timings_sums_stages_and_takes_the_longest_wall_time() -> None:
    a = Timings(data_s=1.0, wall_s=5.0, timed_images=2, oom_splits=1, cpu_fallback_images=[7])
    a.merge(Timings(data_s=2.0, wall_s=3.0, timed_images=3, oom_splits=2, cpu_fallback_images=[4]))
    assert (a.data_s, a.wall_s, a.timed_images, a.oom_splits, a.cpu_fallback_images) == (3.0, 5.0, 5, 3, [4, 7])
