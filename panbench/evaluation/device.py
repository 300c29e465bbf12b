"""The device of a run: its choice, its seed, and the name a record gives it."""

from __future__ import annotations

import re

import numpy as np

from panbench.errors import PanbenchError

DEVICE_FORM = re.compile(r"auto|cpu|cuda(:\d+)?")


def pick_device(device: str) -> str:
    """``--device`` checked: ``auto`` (CUDA when visible), ``cpu``, ``cuda`` or ``cuda:k`` of a visible GPU."""
    import torch

    if not DEVICE_FORM.fullmatch(device):
        raise PanbenchError(f"--device {device}: not a device; use auto, cpu, cuda or cuda:K")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PanbenchError(f"--device {device}: no CUDA GPU is visible; use --device cpu or a CUDA torch")
    if ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise PanbenchError(f"--device {device}: this machine has {torch.cuda.device_count()} visible GPU(s), "
                            "numbered from 0; pick one of them")
    return device


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
