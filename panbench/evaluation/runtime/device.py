"""The device of a run: its choice, its seed, and the name a record gives it."""

from __future__ import annotations

import os
import re
import shutil
import sys

import numpy as np

from panbench.errors import PanbenchError

DEVICE_FORM = re.compile(r"auto|cpu|cuda(:\d+)?")


def pick_device(device: str) -> str:
    """``--device`` checked: ``auto`` (CUDA when visible), ``cpu``, ``cuda`` or ``cuda:k`` of a visible GPU."""
    import torch

    if not DEVICE_FORM.fullmatch(device):
        raise PanbenchError(f"--device {device}: not a device; use auto, cpu, cuda or cuda:K")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        note = unusable_gpu_note(gpu_present(), torch.__version__, torch.version.cuda)
        if note:
            print(note, file=sys.stderr, flush=True)
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PanbenchError(f"--device {device}: no CUDA GPU is visible; use --device cpu or a CUDA torch")
    if ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise PanbenchError(f"--device {device}: this machine has {torch.cuda.device_count()} visible GPU(s), "
                            "numbered from 0; pick one of them")
    return device


def gpu_present() -> bool:
    """An NVIDIA GPU on this machine, whatever torch says: ``nvidia-smi`` on PATH or ``/dev/nvidia0``."""
    return shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0")


def unusable_gpu_note(present: bool, torch_version: str, torch_cuda: str | None) -> str | None:
    """The one line ``--device auto`` prints when a GPU is present but torch cannot use it (None otherwise)."""
    if not present:
        return None
    why = (f"torch {torch_version} is a CPU build" if not torch_cuda else
           f"torch {torch_version} is built for CUDA {torch_cuda}, which the NVIDIA driver may not support "
           "(nvidia-smi shows the newest CUDA it does)")
    return (f"panbench: an NVIDIA GPU is present but torch cannot use it ({why}): running on the CPU; install the "
            "torch build for your driver (docs/gpu.md), or pass --device cpu")


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device_name(device: str, procs: int = 1) -> str:
    """The GPU's name, or the CPU with its torch threads (and forked processes)."""
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    def threads(n: int) -> str:
        return f"{n} thread{'s' if n != 1 else ''}"

    if procs > 1:
        return f"cpu ({cpu}, {procs} processes x {threads(max(1, torch.get_num_threads() // procs))})"
    return f"cpu ({cpu}, {threads(torch.get_num_threads())})"
