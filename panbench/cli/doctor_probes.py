"""``panbench doctor``'s probe of mixed precision: each architecture's demo model (random weights) run once
per mode (:data:`panbench.models.amp.MODES`) on a device, to say which modes work there."""

from __future__ import annotations

import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any


def _tiny_batch(size: int = 64) -> dict[str, Any]:
    """One synthetic image in the form mmdet's ``test_step`` takes."""
    import torch
    from mmdet.structures import DetDataSample

    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
    meta = {"img_id": 0, "img_shape": (size, size), "ori_shape": (size, size), "scale_factor": (1.0, 1.0),
            "pad_shape": (size, size), "batch_input_shape": (size, size)}
    return {"inputs": [img], "data_samples": [DetDataSample(metainfo=meta)]}


def _modes(model: Any, device: str) -> dict[str, str]:
    """``{mode: ""}`` for each mode in which ``test_step`` runs on ``device``, else the first line of its error."""
    import torch

    from panbench.models.amp import MODES

    res: dict[str, str] = {}
    for mode in MODES:
        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        try:
            autocast = nullcontext() if mode == "fp32" else torch.autocast(device.split(":")[0], dtype=dtype)
            with torch.inference_mode(), autocast:
                model.test_step(_tiny_batch())
            res[mode] = ""
        except Exception as e:  # reported, not raised: this is a capability probe
            res[mode] = (f"{type(e).__name__}: {e}".splitlines() or [""])[0][:120]
    return res


def amp_support(device: str, config_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """For each architecture (its demo model, random weights, one 64x64 image): ``{mode: ""}``
    when ``test_step`` runs under that mode on ``device``, else the first line of its error."""
    import torch

    from panbench.models.amp import keep_ops_fp32
    from panbench.models.mmdet import mm
    from panbench.models.mmdet.family import panoptic_only
    from panbench.models.registry import CONFIG_DIR, all_models

    root = config_dir or CONFIG_DIR
    out: dict[str, dict[str, str]] = {}
    for spec in all_models(root):
        if spec.dataset != "demo" or spec.architecture in out:
            continue
        cfg = mm.load_config(spec.config)
        panoptic_only(cfg)
        torch.manual_seed(0)
        model = mm.build_model(cfg, spec.config).to(device).eval()
        keep_ops_fp32(model)
        out[spec.architecture] = _modes(model, device)
    return out


def configs_check(check: Any) -> Any:
    """The model configs and the demo weights are there (a clone's folders, or a wheel's package data): without
    them ``panbench ls`` shows only the hf: models and no zoo or demo model runs."""
    from panbench.resources import checkpoint_dir, config_dir

    root = config_dir()
    n_zoo, n_demo = len(list(root.glob("*.py"))), len(list(root.glob("demo/*.py")))
    n_weights = len(list(checkpoint_dir("demo").glob("*.pth")))
    return check("configs", n_zoo > 0 and n_demo > 0 and n_weights > 0,
                 f"{n_zoo} zoo and {n_demo} demo configs in {root}, {n_weights} demo weight files",
                 "reinstall panbench from a wheel (pip install \"panbench[mmdet]\", docs/setup.md) or from a clone "
                 "(pip install -e \".[mmdet]\"); a copied panbench/ folder has no configs")


def torchvision_check(check: Any) -> Any:
    """A CUDA torch's torchvision: installed, built for this torch, its ops load (panbench's CUDA nms and RoIAlign
    are torchvision's)."""
    import importlib.metadata as md

    import torch

    from panbench.ops.pairing import pairing_problem, torchvision_for

    try:
        have: str | None = md.version("torchvision")
    except md.PackageNotFoundError:
        have = None
    problem = pairing_problem(torch.__version__, have)
    if problem is None:
        try:
            import torchvision.ops

            torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)
        except Exception as e:  # a torchvision whose compiled ops do not load with this torch
            problem = f"torchvision {have}: its ops do not load ({type(e).__name__}: {e})".splitlines()[0][:200]
    want = torchvision_for(torch.__version__)
    index = f" --extra-index-url https://download.pytorch.org/whl/{want.partition('+')[2]}" if "+" in want else ""
    return check("torchvision", problem is None, problem or f"{have} (for torch {torch.__version__})",
                 f"pip install{index} torchvision=={want}")


def _installed(name: str) -> tuple[str, str] | None:
    """(distribution, version) of the package imported as ``name`` (mmcv: ``mmcv`` or ``mmcv-lite``), or None."""
    import importlib.metadata as md

    for dist in (name, *md.packages_distributions().get(name, [])):
        try:
            return dist, md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version (``5.15.0`` -> (5, 15, 0); ``2.13.0+cpu`` -> (2, 13, 0); ``2.1rc1`` ->
    (2, 1))."""
    found = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(n) for n in found.group().split(".")) if found else ()


def family_checks(check: Any, pip: str, own_lines: set[str]) -> list[Any]:
    """One line per model family (:data:`panbench.models.families.FAMILIES`): the installed versions of its
    packages (``Family.packages``) against the tested ones (``Family.tested``); another version, or a package
    missing, is a note with the pip command that installs the tested one (a missing package with a line of its
    own, ``own_lines``, has its fix there)."""
    from panbench.models.families import FAMILIES

    out = []
    for f in FAMILIES.values():
        tested = dict(f.tested)
        parts, pins, missing, off = [], [], [], False
        for name in f.packages:
            got, want = _installed(name), tested.get(name)
            if got is None:
                parts.append(f"{name} not installed")
                missing.append(name)
                if name not in own_lines:
                    pins.append(f"'{name}=={want}'" if want else name)
            elif want is None or got[1].split("+")[0] == want:
                parts.append(f"{name} {got[1]}")
            else:
                have, ref = _release(got[1]), _release(want)
                how = "newer than" if have > ref else "older than" if have < ref else "other than"
                parts.append(f"{name} {got[1]} ({how} the tested {want})")
                pins.append(f"'{got[0]}=={want}'")
                off = True
        runs = f"{f.prefix}: models" if f.prefix else f"{f.name} models"
        tail = (f"{runs} do not run" if missing else f"the tested versions ({runs})" if not off else
                f"{runs} were checked on the tested versions; on another, their numbers may differ")
        fix = f"{pip} install {' '.join(pins)}" if pins else f"see the {', '.join(missing)} line above"
        out.append(check(f"versions/{f.name}", not (missing or off), f"{', '.join(parts)}: {tail}", fix,
                         required=False))
    return out
