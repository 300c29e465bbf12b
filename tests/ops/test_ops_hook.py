"""MMDetection's own tools work in panbench's environment without importing panbench: the ``.pth`` import hook
(panbench/ops/hook.py) provides ``mmcv._ext`` with mmcv-lite, and costs no torch import at start-up."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from panbench.package import REPO_ROOT

pytest.importorskip("mmdet")

HOOK = "panbench-mmcv-ext.pth"

# what MMDetection's tools/test.py does before its Runner: register mmdet's modules, build the model from a config
MMDET_ONLY = f"""
import sys
assert "torch" not in sys.modules, "the start-up hook imported torch"
from mmdet.utils import register_all_modules
register_all_modules()
import mmdet.models
import torch
from mmcv.ops import nms
from mmengine.config import Config
from mmdet.registry import MODELS
cfg = Config.fromfile({str(REPO_ROOT / "configs" / "demo" / "panoptic-fpn.py")!r})
model = MODELS.build(cfg.model)
keep = nms(torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]]), torch.tensor([0.9, 0.8]), 0.5)[1]
print(type(model).__name__, keep.tolist(), sys.modules["mmcv._ext"].__name__)
"""


def test_the_mmcv_ext_hook_is_installed_into_site_packages() -> None:
    pth = Path(sysconfig.get_paths()["purelib"]) / HOOK
    assert pth.is_file(), f"{pth} missing: rerun make setup (scripts/setup.sh step 7 writes it)"
    assert pth.read_text() == (REPO_ROOT / "panbench" / "ops" / HOOK).read_text()


def test_a_python_start_loads_only_the_hook_and_what_it_needs(tmp_path) -> None:
    """Every interpreter of the environment runs the hook: it loads panbench's root, errors and the ops package,
    not the ops' kernels (a C extension) or anything else of panbench."""
    code = "import sys; print(' '.join(sorted(m for m in sys.modules if m.startswith('panbench'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["panbench", "panbench.errors", "panbench.ops",
                                  "panbench.ops.hook"]


def test_mmdet_builds_a_model_and_runs_nms_in_a_process_that_never_imports_panbench(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", MMDET_ONLY], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["PanopticFPN", "[0]", "panbench.ops.ext"]
