"""The GPU and multi-GPU path, tested on the CPU: mixed precision around mmcv ops without bf16
kernels, the process-group backend and layout checks (the checkpoint download under torchrun:
test_download_torchrun.py), reduced-sync mask-wise merging, the CUDA set-up
checks, scripts/bench_gpu.sh on the demo set, and the notebook's model selection.

No GPU ran any of this (docs/gpu.md says what was and was not run on one)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from helpers import free_port

from panbench.package import REPO_ROOT

PY = sys.executable


# ---- 1. bf16: mmcv's RoIAlign has no bf16 kernel (AT_DISPATCH_FLOATING_TYPES_AND_HALF) ----

def _roi_inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    feat = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16).div(100).to(dtype)
    rois = torch.tensor([[0, 1, 1, 9, 9], [1, 0, 2, 12, 15]], dtype=dtype)  # mmdet casts RoIs to the feature dtype
    return feat, rois


def test_roi_align_refuses_bf16_without_the_fp32_wrapper() -> None:
    from panbench.ops import install

    refusal = {"mmcv": "not implemented for 'BFloat16'", "panbench": "torch.bfloat16 input on the CPU"}[install()]
    from mmcv.ops import RoIAlign

    with pytest.raises(Exception, match=refusal):
        RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(*_roi_inputs(torch.bfloat16))


def test_roi_align_runs_in_fp32_under_bf16_autocast() -> None:
    from panbench.ops import install

    install()
    from mmcv.ops import RoIAlign

    from panbench.models.amp import keep_ops_fp32

    layer = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    ref = layer(*_roi_inputs(torch.float32))
    model = torch.nn.Sequential(layer)
    assert keep_ops_fp32(model) == 1 and keep_ops_fp32(model) == 1  # wrapped once
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(*_roi_inputs(torch.bfloat16))
    assert out.dtype == torch.bfloat16  # back in the caller's precision
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.02)  # inputs were rounded to bf16
    assert torch.equal(layer(*_roi_inputs(torch.float32)), ref)  # fp32 without autocast: untouched


def test_demo_models_have_their_fp32_ops_wrapped() -> None:
    from panbench.models.amp import keep_ops_fp32
    from panbench.models.mmdet import mm
    from panbench.models.registry import resolve

    counts = {}
    for name in ("demo-panoptic-fpn", "demo-maskformer", "demo-mask2former"):
        spec = resolve(name, dataset="demo")[0]
        counts[spec.architecture] = keep_ops_fp32(mm.build_model(mm.load_config(spec.config), spec.config))
    assert counts["PanopticFPN"] >= 2 and counts["Mask2Former"] >= 1 and counts["MaskFormer"] == 0, counts


@pytest.mark.slow
def test_amp_support_says_what_runs_on_this_cpu() -> None:
    from panbench.cli.doctor import amp_support

    support = amp_support("cpu")
    assert set(support) == {"PanopticFPN", "MaskFormer", "Mask2Former"}
    for arch, res in support.items():
        assert res["fp32"] == "", (arch, res)
        assert res["bf16"] == "", (arch, res)  # RoIAlign and deformable attention run in fp32 inside autocast


# ---- 4. backend from the device; impossible layouts refused in one line ----

def test_backend_follows_the_device_not_the_machine() -> None:
    from panbench.evaluation.runtime import backend_for

    assert backend_for("cpu") == "gloo" and backend_for("cuda") == "nccl" and backend_for("cuda:1") == "nccl"


def test_cpu_ranks_use_gloo_even_where_cuda_is_available(tmp_path) -> None:
    """torchrun --device cpu on a GPU machine: gloo.  The GPU machine is simulated by making
    torch.cuda.is_available() answer True (the only fake here): NCCL would fail on CPU tensors."""
    script = tmp_path / "cpu_rank.py"
    script.write_text(
        "import torch, torch.distributed as dist\n"
        "torch.cuda.is_available = lambda: True  # FAKE: pretend a GPU is visible\n"
        "from panbench.evaluation.runtime import dist_info\n"
        "rank, world, device = dist_info('cpu')\n"
        "t = torch.ones(1); dist.all_reduce(t)\n"
        "print(dist.get_backend(), world, device, int(t.item()))\n"
        "dist.destroy_process_group()\n")
    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    # WORLD_SIZE=1 does not start a group; run the two-rank case
    port = str(free_port())
    procs = [subprocess.Popen([PY, str(script)], env={**env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                                      "LOCAL_WORLD_SIZE": "2", "MASTER_PORT": port},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert [o[0].split() for o in outs] == [["gloo", "2", "cpu", "2"]] * 2


@pytest.mark.parametrize("device,per_node,gpus,expected", [
    ("cuda", 4, 2, "--nproc-per-node 4 with --device cuda, but this node has 2 GPU(s)"),
    ("cuda:1", 2, 2, "every rank would use the same GPU"),
])
def test_impossible_layouts_are_refused_in_one_line(monkeypatch, device, per_node, gpus, expected) -> None:
    """The GPU count is faked (torch.cuda.device_count): this machine has none."""
    from panbench.errors import PanbenchError
    from panbench.evaluation.runtime import rank_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(per_node))
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(PanbenchError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        rank_device(device)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: per_node)
    if ":" not in device:
        assert rank_device(device) == "cuda:1"  # rank k on GPU k of its node


# ---- 13. precision recorded; mask-wise merging with fewer syncs gives the same result ----

def test_precision_is_recorded() -> None:
    from panbench.evaluation.timings import precision_info

    p = precision_info("cpu", None)
    assert p["autocast"] == "off" and p["matmul"] == "fp32" and p["float32_matmul_precision"] in (
        "highest", "high", "medium")
    assert precision_info("cpu", "bf16")["matmul"] == "bf16"


def _mask_wise_merge_before(mask_cls, mask_pred, num_classes, num_things, pp):
    """mask_wise_merge with a host read per query and threshold (the reference for the one-sync version)."""
    import torch.nn.functional as F

    from panbench.models.encoding import INSTANCE_OFFSET

    probs = F.softmax(mask_cls.float(), dim=-1)[:, :num_classes]
    p, labels = probs.max(-1)
    m = mask_pred.float().sigmoid()
    binary = m > pp.mask_thr
    area = binary.flatten(1).sum(1)
    quality = (m * binary).flatten(1).sum(1) / area.clamp(min=1)
    score = p.pow(pp.alpha) * quality.pow(pp.beta)
    h, w = m.shape[-2:]
    pan = torch.full((h, w), num_classes, dtype=torch.int32, device=m.device)
    taken = torch.zeros((h, w), dtype=torch.bool, device=m.device)
    instance = 1
    for q in torch.argsort(score, descending=True, stable=True).tolist():
        if score[q] < pp.conf_thr:
            break
        if area[q] == 0:
            continue
        mask = binary[q] & ~taken
        if mask.sum() < pp.keep_thr * area[q]:
            continue
        label = int(labels[q])
        if label < num_things:
            pan[mask] = label + instance * INSTANCE_OFFSET
            instance += 1
        else:
            pan[mask] = label
        taken |= mask
    return pan


@pytest.mark.parametrize("seed", range(30))
def test_mask_wise_merge_gives_the_same_panoptic_map(seed) -> None:
    from panbench.models.postprocess import PostProcess, mask_wise_merge

    g = torch.Generator().manual_seed(seed)
    q, c, h, w = 20, 6, 24, 32
    cls = torch.randn(q, c + 1, generator=g) * 3
    pred = torch.randn(q, h, w, generator=g) * 4
    pred[seed % q] = -10  # an empty mask
    pred[(seed + 1) % q] = pred[(seed + 2) % q]  # duplicates: ties in score and fully taken masks
    for pp in (PostProcess("maskwise"), PostProcess("maskwise", alpha=1, beta=1, conf_thr=0.1, keep_thr=0.3),
               PostProcess("maskwise", conf_thr=0.0, keep_thr=0.9)):
        assert torch.equal(mask_wise_merge(cls, pred, c, 3, pp), _mask_wise_merge_before(cls, pred, c, 3, pp))


# ---- 9. CUDA set-up checks (scripts/cuda_setup.py) ----

def _cuda_setup():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cuda_setup", REPO_ROOT / "scripts" / "cuda_setup.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mmcv_without_cuda_ops_is_refused_for_a_cuda_torch() -> None:
    from panbench.ops import compiled_mmcv

    cs = _cuda_setup()
    if not compiled_mmcv():  # mmcv-lite: no compiled build to ask; the verdict on one without CUDA ops
        assert "compiled without CUDA" in cs.mmcv_problem("12.1", "not available")
        return
    from mmcv.ops import get_compiling_cuda_version

    compiled = get_compiling_cuda_version()  # the real answer of this machine's (CPU) build
    if torch.version.cuda is None:
        assert compiled == "not available"
        assert "compiled without CUDA" in cs.mmcv_problem("12.1", compiled)  # this wheel under a CUDA torch
        assert cs.installed_mmcv_problem() is None  # and fine for the CPU torch installed here
    assert cs.mmcv_problem(None, "not available") is None and cs.mmcv_problem("12.1", "12.1") is None


def test_toolkit_advice() -> None:
    cs = _cuda_setup()
    err, _ = cs.toolkit_verdict("12.1", None, None)
    assert "no nvcc was found" in err and "CUDA 12.1 toolkit" in err and "CUDA_HOME" in err
    err, _ = cs.toolkit_verdict("12.1", "/usr/local/cuda/bin/nvcc", "11.8")
    assert "across major versions" in err and "cu118" in err
    err, warn = cs.toolkit_verdict("12.4", "/usr/local/cuda/bin/nvcc", "12.1")
    assert err is None and "12.1" in warn
    assert cs.toolkit_verdict("12.1", "/x/nvcc", "12.1") == (None, None)


def test_setup_sh_forces_cuda_ops_for_a_cuda_torch() -> None:
    text = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    assert "FORCE_CUDA=1" in text and "cuda_setup.py\" toolkit" in text
    assert "mmcv_ok" in (REPO_ROOT / "scripts" / "install_mmcv.sh").read_text()  # the installed wheel is checked
    assert subprocess.run(["bash", "-n", str(REPO_ROOT / "scripts" / "setup.sh")]).returncode == 0


# ---- 11. the notebook selects the three R50 architectures for MODELS="all" ----

def test_notebook_all_means_the_three_r50_architectures() -> None:
    import nbformat

    from panbench.models.registry import resolve

    nb = nbformat.read(REPO_ROOT / "notebooks" / "panbench_colab.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    evaluate = next(c for c in nb.cells if "SELECTED" in c.source)
    ns: dict = {}
    exec(params.source + '\nDATASET = "coco"\n', ns)  # noqa: S102 - the notebook's own cells
    src = evaluate.source.split("\ndef run_streaming")[0]  # the selection, not the runs
    exec(src, ns)  # noqa: S102
    specs = [resolve(m, dataset="coco")[0] for m in ns["SELECTED"]]
    assert sorted((s.architecture, s.backbone.split()[0]) for s in specs) == [
        ("Mask2Former", "R-50"), ("MaskFormer", "R-50"), ("PanopticFPN", "R-50")], specs


# ---- 12. scripts/bench_gpu.sh: a failed run is recorded as failed, the others and the summary go on ----

@pytest.mark.slow
def test_bench_gpu_script_records_a_failed_run_and_goes_on(tmp_path) -> None:
    from panbench.data.demo import make_demo

    make_demo(REPO_ROOT / "data" / "demo")
    env = {**os.environ, "PY": PY, "DEVICE": "cpu", "DATASET": "demo", "MODELS": "mask2former no-such-model",
           "BATCHES": "1", "AMPS": "fp32", "FUSIONS": "panbench", "WORKERS": "0", "OUT": str(tmp_path / "bench")}
    r = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "bench_gpu.sh"), "4"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]  # one run failed
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith(("demo-mask2former",
                                                                                         "no-such-model"))}
    assert rows["demo-mask2former"].endswith(" ok") and "FAILED: panbench: error: unknown model" in rows[
        "no-such-model"], r.stdout
    assert "1 run(s) failed" in r.stdout


@pytest.mark.slow
def test_bench_gpu_script_checks_the_data_first(tmp_path) -> None:
    env = {**os.environ, "PY": PY, "DEVICE": "cpu", "DATASET": "coco", "DATA_ROOT": str(tmp_path / "none"),
           "OUT": str(tmp_path / "bench")}
    r = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "bench_gpu.sh"), "4"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 2 and "no COCO panoptic val under" in r.stderr and "panbench data coco" in r.stderr
    assert not (tmp_path / "bench" / "status.tsv").exists()


# ---- 6, 7. the current device and its peak-memory counter (no GPU here: torch.cuda's calls are recorded) ----

def test_use_device_sets_the_current_gpu_and_resets_its_peak(monkeypatch) -> None:
    """FAKE torch.cuda functions that record their calls (this machine has no GPU): checks that
    panbench asks for cuda:1, not the default cuda:0, for set_device, the peak reset and the peak read."""
    from panbench.evaluation.runtime import peak_memory, use_device

    calls: list = []
    def set_device(d) -> None:  # torch's own argument check first: a device without an index is refused
        torch.cuda._utils._get_device_index(d)
        calls.append(("set_device", str(d)))

    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(("empty_cache",)))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: calls.append(("reset", str(d))))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: calls.append(("peak", str(d))) or 2**20)
    use_device("cuda:1")
    assert peak_memory("cuda:1")["gpu_peak_mib"] == 1.0
    assert calls == [("set_device", "cuda:1"), ("empty_cache",), ("reset", "cuda:1"), ("peak", "cuda:1")]
    calls.clear()
    use_device("cuda")  # one process, --device cuda or auto: the current device, nothing to set
    assert calls == [("empty_cache",), ("reset", "cuda")]
    calls.clear()
    use_device("cpu")
    assert calls == []


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:x", "cuda:0:1"])
def test_device_values_are_checked(bad) -> None:
    from panbench.errors import PanbenchError
    from panbench.evaluation.runtime import pick_device

    with pytest.raises(PanbenchError, match="not a device; use auto, cpu, cuda or cuda:K"):
        pick_device(bad)


def test_a_gpu_index_beyond_the_visible_ones_is_refused(monkeypatch) -> None:
    """FAKE: torch.cuda reports 2 visible GPUs (none here)."""
    from panbench.errors import PanbenchError
    from panbench.evaluation.runtime import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == "cuda:1"
    with pytest.raises(PanbenchError, match="2 visible GPU"):
        pick_device("cuda:7")


def test_auto_device_says_in_one_line_when_a_gpu_is_present_that_torch_cannot_use(monkeypatch, capsys) -> None:
    """FAKE: nvidia-smi present, and a CPU build of torch (torch.cuda.is_available() False, torch.version.cuda None):
    what this CPU machine has for real, faked so that a GPU machine runs the same test."""
    from panbench.evaluation import runtime as dev

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(dev, "gpu_present", lambda: True)
    assert dev.pick_device("auto") == "cpu"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "an NVIDIA GPU is present but torch cannot use it" in err
    assert f"torch {torch.__version__} is a CPU build" in err and "--device cpu" in err
    assert dev.pick_device("cpu") == "cpu" and capsys.readouterr().err == ""  # asked for the CPU: no note
    monkeypatch.setattr(dev, "gpu_present", lambda: False)
    assert dev.pick_device("auto") == "cpu" and capsys.readouterr().err == ""  # no GPU: nothing to say


def test_unusable_gpu_note_names_the_cuda_build() -> None:
    from panbench.evaluation.runtime import unusable_gpu_note

    assert unusable_gpu_note(False, "2.13.0", "13.0") is None
    note = unusable_gpu_note(True, "2.13.0", "13.0")
    assert "built for CUDA 13.0" in note and "nvidia-smi" in note and "\n" not in note


def test_collectives_time_out_in_minutes_and_only_downloads_wait_long() -> None:
    from datetime import timedelta

    from panbench.errors import PanbenchError
    from panbench.evaluation.runtime import dist_timeouts

    assert dist_timeouts({}) == (timedelta(minutes=10), timedelta(minutes=120))
    assert dist_timeouts({"PANBENCH_DIST_TIMEOUT_MIN": "3", "PANBENCH_DOWNLOAD_TIMEOUT_MIN": "300"}) == \
        (timedelta(minutes=3), timedelta(minutes=300))
    for bad in ("0", "ten", "-1", "1.5"):
        with pytest.raises(PanbenchError, match="PANBENCH_DIST_TIMEOUT_MIN=.*whole number"):
            dist_timeouts({"PANBENCH_DIST_TIMEOUT_MIN": bad})
