"""One install command per missing package, from the installed torch (panbench.ops.pairing.install_command),
the same in doctor's fix, the set-up's note and the error messages: never PyPI's torchvision (a CUDA build) beside
a CPU torch."""

from __future__ import annotations

import importlib

import pytest

from panbench.ops.pairing import install_command, installed_version
from panbench.package import REPO_ROOT


@pytest.mark.parametrize(("torch", "want"), [
    ("2.13.0+cpu", "pip install --extra-index-url https://download.pytorch.org/whl/cpu 'torchvision==0.28.0+cpu' timm"),
    ("2.13.0+cu130", "pip install --extra-index-url https://download.pytorch.org/whl/cu130 "
                     "'torchvision==0.28.0+cu130' timm"),
    ("2.14.1", "pip install 'torchvision==0.29.1' timm"),  # PyPI's torch, a CUDA build: PyPI's torchvision
])
def test_timm_comes_with_the_torchvision_built_for_the_installed_torch(torch: str, want: str) -> None:
    got = install_command("timm", "pip", torch, None)
    assert got.startswith(want) and "panbench[cuda]" not in got
    assert ("PyPI has none" in got) == torch.endswith("+cpu")  # the CPU build says why not PyPI's


def test_a_torchvision_that_fits_is_kept_and_another_package_is_plain_pip() -> None:
    assert install_command("timm", ".venv/bin/pip", "2.13.0+cpu", "0.28.0+cpu") == ".venv/bin/pip install timm"
    assert install_command("timm", "pip", "2.13.0+cpu", "0.28.0").startswith(  # PyPI's CUDA build: replaced
        "pip install --extra-index-url https://download.pytorch.org/whl/cpu 'torchvision==0.28.0+cpu'")
    assert install_command("pyarrow", "pip", "2.13.0+cpu") == "pip install pyarrow"


def test_doctor_the_setup_and_the_missing_module_message_give_the_same_command(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """timm is not in this venv (a CPU torch without torchvision): doctor's timm line, the set-up's note
    (scripts/cuda_setup.py install, as scripts/setup.sh calls it) and the message of a missing timm all carry
    the one command for this torch."""
    if installed_version("torch") is None:
        pytest.skip("no torch here")
    if install_command("timm") == "pip install timm":
        pytest.skip("timm's torchvision is installed here: nothing to advise")
    from panbench.cli.doctor import Probes, pip_command
    from panbench.models.families import FAMILIES
    from panbench.resources import missing_extra_message

    (timm,) = FAMILIES["transformers"].doctor_checks(Probes(True, False, True, pip_command()))
    if timm.ok:
        pytest.skip("timm is installed here")
    assert timm.fix.startswith(install_command("timm", pip_command()))
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    cuda_setup = importlib.import_module("cuda_setup")
    assert cuda_setup.main(["install", "timm", ".venv/bin/pip"]) == 0
    assert capsys.readouterr().out.strip() == install_command("timm", ".venv/bin/pip")
    assert "scripts/cuda_setup.py\" install timm" in (REPO_ROOT / "scripts" / "setup.sh").read_text()
    assert install_command("timm") in (missing_extra_message("timm", {"timm": "cuda"}) or "")
