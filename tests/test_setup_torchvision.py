"""The torchvision a torch needs (panbench's CUDA nms and RoIAlign are torchvision's): the pairing rule the set-up
installs by and ``panbench doctor`` checks, and the doctor's config-presence check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from panbench.cli.doctor import configs_check
from panbench.ops.pairing import pairing_problem, torchvision_for
from panbench.package import REPO_ROOT


@pytest.mark.parametrize("torch_version, torchvision", [
    ("2.13.0", "0.28.0"), ("2.13.0+cu130", "0.28.0+cu130"), ("2.11.0", "0.26.0"), ("2.1.2+cu121", "0.16.2+cu121"),
    ("2.0.1", "0.15.1"), ("2.5.1+cpu", "0.20.1+cpu")])
def test_torch_2_m_p_pairs_with_torchvision_0_m_plus_15_p(torch_version, torchvision) -> None:
    assert torchvision_for(torch_version) == torchvision


def test_a_matching_pair_has_no_problem_and_a_missing_or_other_torchvision_has_one() -> None:
    assert pairing_problem("2.13.0+cu130", "0.28.0+cu130") is None
    assert pairing_problem("2.13.0", "0.28.0") is None
    assert pairing_problem("2.13.0+cu130", None) == \
        "torchvision is not installed; torch 2.13.0+cu130 needs torchvision 0.28.0+cu130"
    assert "not built for torch 2.13.0" in pairing_problem("2.13.0", "0.27.1")
    assert "is a cpu build" in pairing_problem("2.13.0+cu130", "0.28.0+cpu")
    # PyPI's torchvision (a CUDA build) beside a CPU torch from PyTorch's CPU index: its ops do not load
    assert pairing_problem("2.13.0+cpu", "0.28.0") == \
        "torchvision 0.28.0 is a CUDA build, torch 2.13.0+cpu a cpu one (needs 0.28.0+cpu)"
    assert pairing_problem("2.13.0+cu128", "0.28.0") is None  # both CUDA builds


def test_cuda_setup_prints_the_torchvision_pin_and_its_index() -> None:
    out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "cuda_setup.py"), "torchvision",
                          "2.13.0+cu128"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["torchvision==0.28.0+cu128", "https://download.pytorch.org/whl/cu128"]


def test_doctor_fails_the_configs_check_when_configs_and_demo_weights_are_missing(monkeypatch, tmp_path) -> None:
    import panbench.resources as r

    monkeypatch.setattr(r, "data_root", lambda: tmp_path)
    check = configs_check()
    assert not check.ok and check.required
    assert check.detail == f"0 zoo and 0 demo configs in {tmp_path / 'configs'}, 0 demo weight files"


def test_doctor_finds_the_clone_configs_and_demo_weights() -> None:
    check = configs_check()
    assert check.ok and check.detail.startswith("13 zoo and 3 demo configs in "), check.detail
