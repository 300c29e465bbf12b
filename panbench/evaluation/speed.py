"""``panbench speed``: FPS by MMDetection's ``tools/analysis_tools/benchmark.py`` protocol (docs/benchmarks.md, "FPS
by a stated protocol"), timed with :class:`CudaEventTimer` on a GPU and :class:`PerfCounterTimer` on the CPU;
``--compile`` compiles the network in place (:func:`compile_model`) before the warm-up, never timed."""

from __future__ import annotations

import copy
import functools
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from panbench.announce import announce, steps
from panbench.data.datasets import PanopticDataset
from panbench.evaluation.context import cpu_clock, marker, speed_context
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.runtime import device_name
from panbench.evaluation.timings import precision_info
from panbench.models.families import open_model
from panbench.models.numerics import torch_own
from panbench.models.protocol import ModelHandle
from panbench.models.registry import ModelSpec
from panbench.records.provenance import command_line, git_commit, now_iso, versions
from panbench.records.speed import PROTOCOL, PROTOCOL_TEXT, SpeedRecord

PQ_TOLERANCE = 0.01  # PQ points (0-100) that compiled inference may differ from eager by
MAX_INPUTS = 16  # distinct prepared inputs the forward timing cycles over (kept in memory)


@dataclass
class SpeedOptions:
    """What ``panbench speed`` runs with."""

    warmup: int = 5  # benchmark.py's num_warmup
    iters: int = 50  # timed iterations (benchmark.py: max_iter 2000 minus the warm-up)
    compile: bool = False
    compile_mode: str = "default"  # torch.compile's mode
    amp: str | None = None  # bf16, fp16: autocast
    device: str = "auto"
    end_to_end: bool = True
    check_pq: bool = False
    seed: int = 0
    results_dir: Path = Path("results")
    command: str | None = None
    cfg_options: dict[str, Any] | None = None  # an hf: model's --pipeline (panbench.evaluation.options.with_pipeline)


class Timer(Protocol):
    """Runs ``fn`` once and says how many seconds it took."""

    clock: str  # what reads the time, as the record names it

    def __call__(self, fn: Callable[[], Any]) -> tuple[Any, float]: ...


class PerfCounterTimer:
    clock = "time.perf_counter"

    def __call__(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t


class CudaEventTimer:
    """CUDA events recorded around ``fn`` after ``torch.cuda.synchronize``, the end event waited for."""

    clock = "CUDA events (torch.cuda.synchronize before, the end event synchronized)"

    def __init__(self, device: str) -> None:
        self.device = device

    def __call__(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        import torch

        torch.cuda.synchronize(self.device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end) / 1000.0


def compile_model(family: Any, mode: str = "default") -> dict[str, Any]:
    """Compile the model's ``compile_targets()`` in place (``nn.Module.compile``); the record's ``compile`` block."""
    import torch

    names = []
    for name, m in family.compile_targets():
        torch_own(m)  # inductor compiles torch's own modules
        m.compile(mode=mode)
        names.append(name)
    return {"on": True, "modules": names, "backend": "inductor", "mode": mode, "torch": torch.__version__}


@dataclass
class Stage:
    """The timed iterations of one stage: seconds each, the fusion's share of each, the input sizes."""

    seconds: list[float]
    fusion: list[float]
    sizes: list[tuple[int, int]]
    first_s: float  # the first warm-up iteration (with --compile: compilation included)

    def summary(self) -> dict[str, Any]:
        total = sum(self.seconds)
        ms = [1000 * s for s in self.seconds]
        out: dict[str, Any] = {"fps": len(ms) / total if total > 0 else None, "ms_mean": statistics.fmean(ms),
               "ms_median": statistics.median(ms), "ms_min": min(ms), "first_iter_s": self.first_s}
        if any(self.fusion):
            fusion_ms = statistics.fmean(1000 * f for f in self.fusion)
            out.update({"fusion_ms_mean": fusion_ms, "network_ms_mean": out["ms_mean"] - fusion_ms})
        return out


def time_forward(family: Any, inputs: list[Any], device: str, amp: str | None, warmup: int, iters: int,
                 timer: Timer) -> Stage:
    """``warmup`` untimed then ``iters`` timed batch-1 forward passes, cycling over ``inputs`` (each pass on a
    fresh copy, made outside the timing: mmdet writes its predictions into the input's data sample)."""
    import torch

    sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
    fusion: list[float] = []
    stage = Stage([], [], [], 0.0)
    with torch.inference_mode(), family.timed_fusion(fusion, sync):
        for i in steps(f"forward passes, {warmup} warm-up then {iters} timed", range(warmup + iters)):
            x = copy.deepcopy(inputs[i % len(inputs)])
            n0 = len(fusion)
            _, dt = timer(functools.partial(family.forward, [x], device, amp))
            if i == 0:
                stage.first_s = dt
            if i >= warmup:
                stage.seconds.append(dt)
                stage.fusion.append(sum(fusion[n0:]))
                stage.sizes.append(family.input_hw(x))
    return stage


def time_end_to_end(family: Any, samples: list[Any], device: str, amp: str | None, warmup: int, iters: int,
                    timer: Timer) -> Stage:
    """The same count of iterations from the image files of ``samples`` (cycled) to segments on the host."""
    import torch

    stage = Stage([], [], [], 0.0)
    with torch.inference_mode():
        for i in steps(f"end to end, {warmup} warm-up then {iters} timed", range(warmup + iters)):
            s = samples[i % len(samples)]

            def step(s: Any = s) -> Any:
                data = family.pipeline({"img_path": str(s.image_path), "img_id": s.image_id})
                return family.to_segments(family.forward([data], device, amp)[0])

            _, dt = timer(step)
            if i == 0:
                stage.first_s = dt
            if i >= warmup:
                stage.seconds.append(dt)
    return stage


def eval_options(opts: SpeedOptions, cache_root: Path | None = None) -> EvalOptions:
    """The eval options that load the model (and, for :func:`check_pq`, run the eval loop)."""
    return EvalOptions(device=opts.device, amp=opts.amp, seed=opts.seed, workers=0, cpu_procs=1, progress=False,
                       resume=False, results_dir=opts.results_dir, ap=False, flops_images=0, warmup=0,
                       cache_root=cache_root or opts.results_dir / "cache", command=opts.command,
                       cfg_options=opts.cfg_options)


def measure(spec: ModelSpec, dataset: PanopticDataset, opts: SpeedOptions) -> SpeedRecord:
    """Load ``spec`` and measure its speed by the protocol (and :func:`check_pq`); the record, not written."""
    from panbench.evaluation.run import Run  # the record's schema: not for the speed record alone

    handle = open_model(spec)  # its config read once for the PQ check and the timed model
    if opts.check_pq:
        pq = check_pq(spec, dataset, opts, handle)
    announce(f"loading {spec.name}")
    run = Run(spec, dataset, eval_options(opts), handle)
    family, device = run.lm.family, run.device
    timer: Timer = CudaEventTimer(device) if device.startswith("cuda") else PerfCounterTimer()
    if opts.compile:
        announce(f"torch.compile ({opts.compile_mode}) of {spec.name}")
    compiled = compile_model(family, opts.compile_mode) if opts.compile else {"on": False}
    n = min(len(dataset.samples), max(1, opts.iters), MAX_INPUTS)
    inputs = [family.pipeline({"img_path": str(s.image_path), "img_id": s.image_id}) for s in dataset.samples[:n]]
    # compiled: a warm-up pass per distinct input, so that no compilation (one per input shape) is timed
    warmup = max(opts.warmup, n) if opts.compile else opts.warmup
    mark, wall0, clock0 = marker(), time.time(), cpu_clock()
    fwd = time_forward(family, inputs, device, opts.amp, warmup, opts.iters, timer)
    e2e = time_end_to_end(family, dataset.samples[:n], device, opts.amp, warmup, opts.iters, timer) \
        if opts.end_to_end else None
    beside = mark.overlapping(wall0, time.time())
    return _record(run, replace(opts, warmup=warmup), timer, compiled, n, fwd, e2e,
                   speed_context(device, 1, 1, clock0, beside, False), pq if opts.check_pq else None)


def _record(run: Any, opts: SpeedOptions, timer: Timer, compiled: dict[str, Any], n: int, fwd: Stage,
            e2e: Stage | None, context: dict[str, Any], pq: dict[str, Any] | None) -> SpeedRecord:
    spec = run.spec
    sizes = Counter(f"{h}x{w}" for h, w in fwd.sizes)
    return SpeedRecord(
        model=spec.name, framework=spec.framework, architecture=spec.architecture, dataset=run.dataset.name,
        protocol={"name": PROTOCOL, "text": PROTOCOL_TEXT, "warmup": opts.warmup, "iters": opts.iters, "batch": 1,
                  "images": n, "clock": timer.clock},
        input_size=sizes.most_common(1)[0][0] if sizes else None, input_sizes=dict(sizes),
        device=device_name(run.device), amp=opts.amp or "fp32", precision=precision_info(run.device, opts.amp),
        compile=compiled, forward=fwd.summary(), end_to_end=e2e.summary() if e2e else None,
        published_fps=spec.published_fps, published_fps_device=spec.published_fps_device,
        published_fps_source=spec.published_source if spec.published_fps is not None else None,
        date=now_iso(), pq_check=pq, speed_context=context,
        provenance={"versions": versions(run.lm.packages), "git_commit": git_commit(),
                    "command": opts.command or command_line(),
                    **({"pipeline": run.lm.inference} if run.lm.inference is not None else {})},
    )


def check_pq(spec: ModelSpec, dataset: PanopticDataset, opts: SpeedOptions,
             handle: ModelHandle | None = None) -> dict[str, Any]:
    """PQ of ``dataset`` through the eval loop with the model eager, then with it compiled
    (:func:`compile_model`); ``within``: they differ by at most :data:`PQ_TOLERANCE` PQ points."""
    from panbench.evaluation.run import Run

    with tempfile.TemporaryDirectory(prefix="panbench-pq-check-") as tmp:
        run = Run(spec, dataset, eval_options(opts, Path(tmp)), handle)
        run.infer()
        part = run.parts[0]
        eager = part.evaluators.columns().evaluate()["PQ"]
        compile_model(run.lm.family, opts.compile_mode)
        part.key += "-compiled"  # a cache of its own
        run.infer()
        compiled = part.evaluators.columns().evaluate()["PQ"]
    delta = abs(compiled - eager)
    return {"eager": eager, "compiled": compiled, "delta": delta, "tolerance": PQ_TOLERANCE,
            "within": delta <= PQ_TOLERANCE, "images": len(dataset.samples), "amp": opts.amp or "fp32"}
