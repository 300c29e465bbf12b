"""``panbench doctor``: what is installed, whether it works, and how to fix what does not."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import platform
import re
import sys
import warnings
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench import resources
from panbench.announce import announce
from panbench.cli.options import Common, dataset_root
from panbench.data.catalog import DATASETS, Dataset
from panbench.errors import PanbenchError
from panbench.models.amp import MODES, keep_ops_fp32
from panbench.models.families import FAMILIES, open_model
from panbench.models.mmdet import mm
from panbench.models.registry import CONFIG_DIR, all_models
from panbench.ops import install, kernels_path
from panbench.ops.pairing import install_command, installed_version, pairing_problem
from panbench.package import REPO_ROOT, __version__
from panbench.pq.extensions import BUILD_FIX, EXTENSIONS


def in_setup_venv() -> bool:
    """Whether this Python is the checkout's ``.venv`` made by ``make setup`` (else: pip into an environment)."""
    return Path(sys.prefix).resolve() == (REPO_ROOT / ".venv").resolve()


def pip_command() -> str:
    """How to run pip for this Python, as a user would type it."""
    return ".venv/bin/pip" if in_setup_venv() else f"{sys.executable} -m pip"


def install_fix() -> str:
    """The fix of a broken stack: ``make setup`` in the checkout's venv, else pip with the ``mmdet`` extra (it keeps
    the installed torch; docs/setup.md)."""
    if in_setup_venv():
        return "run `make setup` from the repository root"
    if (REPO_ROOT / "pyproject.toml").is_file():  # a checkout installed into this Python
        return f"{pip_command()} install -e '{REPO_ROOT}[mmdet]'"
    return f"{pip_command()} install 'panbench[mmdet]'"


FIX_TORCH = ("install torch for this machine first (https://pytorch.org/get-started/locally; on a GPU machine the "
             "build for its driver, docs/gpu.md), then rerun")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "note")
        return f"[{mark}] {self.name:12} {self.detail}" + (f"  -> fix: {self.fix}" if not self.ok and self.fix else "")


def _version(module: str, required: bool = True, fix: str | None = None) -> Check:
    try:
        mod = importlib.import_module(module)
        return Check(module, True, str(getattr(mod, "__version__", "installed")), required=required)
    except Exception as e:  # any import failure is reported, not raised
        return Check(module, False, f"does not import ({type(e).__name__}: {e})".splitlines()[0],
                     fix or install_fix(), required)


def extensions_check() -> Check:
    """Whether panbench's C extensions import (every install builds them; a clone needs `make setup`)."""
    missing = []
    for module in EXTENSIONS:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        return Check("c-extensions", False, f"not built: {', '.join(missing)}", BUILD_FIX)
    return Check("c-extensions", True, f"{len(EXTENSIONS)} built (PQ, the analyses, the fusions, mmcv's CPU ops)")


def scoring_path_check() -> Check:
    """Whether ``score`` takes its batch path: libdeflate's entry points for the C's inflate."""
    from panbench.pq import native

    if native.libdeflate_entry_points() is not None:
        return Check("pq-fast-path", True, "C extension + libdeflate (panbench.pq._native, deflate)", required=False)
    return Check("pq-fast-path", False, "deflate (libdeflate) missing: score takes its per-image path (same numbers, "
                 "slower)", f"`{pip_command()} install deflate`", required=False)


SETUPTOOLS_PIN = "setuptools>=77.0.3,<81"  # what scripts/setup.sh installs and keeps (.venv/pip.conf)


def fix_setuptools() -> str:
    return f"{pip_command()} install '{SETUPTOOLS_PIN}'"


def pkg_resources_check() -> Check:
    """mmengine 0.10.7 imports ``pkg_resources`` to load any config; setuptools 82 does not ship it. A package that
    needs ``setuptools>=77`` (torch 2.13 does) makes pip upgrade to the newest, and every ``panbench eval`` fails."""
    try:
        import setuptools

        version = setuptools.__version__
    except Exception as e:  # setuptools missing or broken
        version = f"does not import ({type(e).__name__})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # setuptools 80/81 warn that pkg_resources is deprecated
            import pkg_resources  # noqa: F401
    except Exception as e:
        return Check("pkg_resources", False, f"does not import ({type(e).__name__}: {e}); setuptools {version}: "
                     "mmengine cannot load any config".splitlines()[0], fix_setuptools())
    if _release(version) >= (81,):
        return Check("pkg_resources", False, f"imports, but setuptools {version} is past the pinned range "
                     "(82 removes pkg_resources)", fix_setuptools(), required=False)
    return Check("pkg_resources", True, f"imports (setuptools {version})")


def mmcv_ops_check(device: str) -> Check:
    """Run nms, RoIAlign and MultiScaleDeformableAttention through mmcv.ops on ``device``, with the backend
    :func:`panbench.ops.install` picks (compiled mmcv, or panbench's ops on mmcv-lite)."""
    name = f"mmcv ops/{device}"
    backend = None
    try:
        import torch

        announce("importing mmcv.ops")
        backend = install()
        with mm.inference_imports():  # mmcv.ops imports mmengine.model, which imports training-only modules
            from mmcv.ops import MultiScaleDeformableAttention, RoIAlign, nms

        announce(f"running nms, RoIAlign and MultiScaleDeformableAttention on {device}")
        boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32, device=device)
        scores = torch.tensor([0.9, 0.8, 0.7], device=device)
        _, keep = nms(boxes, scores, iou_threshold=0.5)
        assert keep.tolist() == [0, 2], keep
        feat = torch.arange(64, dtype=torch.float32, device=device).view(1, 1, 8, 8)
        rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float32, device=device)
        out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feat, rois)
        assert out.shape == (1, 1, 2, 2)
        attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=4, num_levels=1, num_points=2,
                                             batch_first=True).to(device)
        q = torch.rand(1, 16, 32, device=device)
        res = attn(q, value=q, reference_points=torch.rand(1, 16, 1, 2, device=device),
                   spatial_shapes=torch.tensor([[4, 4]], device=device),
                   level_start_index=torch.tensor([0], device=device))
        assert res.shape == (1, 16, 32)
        detail = "compiled mmcv" if backend == "mmcv" else f"panbench's ops: {kernels_path(device.split(':')[0])}"
        return Check(name, True, f"nms, RoIAlign, MultiScaleDeformableAttention run ({detail})")
    except Exception as e:
        msg = f"{type(e).__name__}: {e}".splitlines()[0][:160]
        return Check(name, False, msg, "rebuild compiled mmcv against this torch (PANBENCH_MMCV=compiled make setup, "
                     "docs/setup.md), or set PANBENCH_OPS=panbench" if backend == "mmcv" else "run make setup "
                     "(mmcv-lite and panbench's ops); `panbench doctor --debug` shows the traceback")


def amp_checks(device: str) -> list[Check]:
    """Which of fp32/bf16/fp16 each architecture runs on ``device`` (its demo model, one image)."""
    try:
        support = amp_support(device)
    except Exception as e:  # the probe itself broke: say so, do not stop the doctor
        msg = f"{type(e).__name__}: {e}".splitlines()[0][:160]
        return [Check(f"amp/{device}", False, f"could not probe: {msg}", "run `panbench doctor --debug`", False)]
    out = []
    for arch, res in support.items():
        runs = [m for m in MODES if not res[m]]
        fails = [f"{m} fails ({res[m]})" for m in MODES if res[m]]
        detail = f"{arch}: {', '.join(runs) or 'nothing'} run" + ("; " + "; ".join(fails) if fails else "")
        out.append(Check(f"amp/{device}", not fails, detail,
                         f"use --amp {' or --amp '.join(m for m in runs if m != 'fp32')} or none" if len(runs) > 1
                         else "run without --amp", required=False))
    return out


@dataclass(frozen=True)
class Probes:
    """What a family's ``panbench doctor`` lines (``Family.doctor``) are made with: torch's and the GPU's state, and
    the doctor's probes, each giving :class:`Check` lines."""
    torch_ok: bool
    cuda: bool  # CUDA usable
    skip_amp: bool  # --skip-amp: no AMP probes
    pip: str  # how to run pip for this Python

    version = staticmethod(_version)  # (module, required=True, fix=None): its version, or why it does not import
    mmcv_ops = staticmethod(mmcv_ops_check)
    amp = staticmethod(amp_checks)
    pkg_resources = staticmethod(pkg_resources_check)


def collect(data_root: str = "data/coco", skip_amp: bool = False) -> list[Check]:
    """Every check, in the order they are printed."""
    announce("importing numpy and torch")
    checks = [Check("python", (3, 11) <= sys.version_info[:2] <= (3, 13), platform.python_version(),
                    "use Python 3.11, 3.12 or 3.13 (the versions panbench is set up and tested with)",
                    required=sys.version_info >= (3, 11)),
              _version("numpy"), torch_check := _version("torch", fix=FIX_TORCH if not in_setup_venv() else None)]
    cuda = _gpu_checks(torch_check, checks) if torch_check.ok else False

    probes = Probes(torch_check.ok, cuda, skip_amp, pip_command())
    for f in FAMILIES.values():  # each family's own lines (Family.doctor)
        announce(f"checking the {f.name} family's packages")
        checks += f.doctor_checks(probes)
    announce("comparing the installed versions with the tested ones")
    checks += family_checks(pip_command(), {c.name for c in checks})
    panopticapi = f"{pip_command()} install --no-deps panopticapi-lite==0.2.0 (only the parity tests need it)"
    built = extensions_check()
    return [*checks, _version("panopticapi", required=False, fix=panopticapi), built,
            *([scoring_path_check()] if built.ok else []), *data_checks(Path(data_root)), checkpoints_check(),
            configs_check()]


def _gpu_checks(torch_check: Check, checks: list[Check]) -> bool:
    """Append the GPU check to ``checks`` and the CUDA version to ``torch_check``; whether CUDA is usable."""
    import torch

    cuda = torch.cuda.is_available()
    torch_check.detail += f" (CUDA {torch.version.cuda})" if torch.version.cuda else " (CPU build)"
    if torch.version.cuda or importlib.util.find_spec("torchvision"):  # panbench's CUDA nms/RoIAlign use it
        checks.append(torchvision_check())
    if cuda:
        checks.append(Check("gpu", True, ", ".join(torch.cuda.get_device_name(i)
                                                   for i in range(torch.cuda.device_count()))))
        return True
    from panbench.evaluation.runtime import gpu_present, unusable_gpu_note

    if note := unusable_gpu_note(gpu_present(), torch.__version__, torch.version.cuda):
        checks.append(Check("gpu", False, note.removeprefix("panbench: ").split(": running on")[0],
                            "install the torch build for the driver (docs/gpu.md)", False))
    else:
        checks.append(Check("gpu", False, "none: inference runs on the CPU (slow for COCO)",
                            "use a machine with an NVIDIA GPU and a CUDA torch for full COCO runs", False))
    return False


def checkpoints_check() -> Check:
    """How many zoo checkpoints torch hub's ``checkpoints`` folder (mmengine's and panbench's download cache) holds:
    none is fine, they download on first use."""
    try:
        import torch.hub

        cache = Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # pragma: no cover - torch missing
        cache = Path.home() / ".cache" / "torch" / "hub" / "checkpoints"
    n = len(list(cache.glob("*.pth"))) if cache.is_dir() else 0
    return Check("checkpoints", n > 0, f"{n} cached in {cache}", "downloaded on first `panbench eval` of a zoo model",
                 False)


def data_checks(root: Path) -> list[Check]:
    """The dataset at ``root`` (``--data-root``, default data/coco), then one line for each other dataset prepared
    under its default folder (its annotation file there)."""
    from panbench.data.datasets import layout

    lines = [data_check(root)]
    for d in DATASETS.values():
        where = Path(d.folder)
        if where.resolve() != root.resolve() and layout(where, d.name, "val2017")[0].is_file():
            lines.append(data_check(where, d.name, f"data/{d.name}"))
    return lines


def data_check(root: Path, name: str | None = None, label: str = "data") -> Check:
    """The dataset ``name`` at ``root`` (None: the one its files or folder name, :func:`_prepared_as`): its annotation
    file read and checked as ``eval`` does, its images, and its counts against its card (:func:`card_check`)."""
    from panbench.data.datasets import layout, load_dataset

    name = name or _prepared_as(root)
    ann, _, images = layout(root, name or "coco", "val2017")
    row = DATASETS.get(name or "")
    if row is not None and row.converted:
        what = f"{row.doctor or row.display} panoptic val"
    else:
        what = f"{_dataset_name(root)} panoptic val (COCO layout)"
    if not (ann.is_file() and images.is_dir()):
        if row is not None and row.converted:
            return Check(label, False, f"no {what} at {root} ({ann.name} and {images.name}/)",
                         row.how_to_get.format(root=root), False)
        fix = (f"run `panbench data coco --root {root}` (or --from DIR with the official zips), or run the demo "
               "set: `panbench eval --model all --dataset demo`")
        return Check(label, False, f"no COCO-layout panoptic val at {root}", fix, False)
    announce(f"reading {ann}")
    try:
        ds = load_dataset(root, name=name or "coco")
    except PanbenchError as e:
        return Check(label, False, f"{what} at {root} is not usable: {e}", "fix or replace the annotation file", False)
    n = len(ds.samples)
    if row is None:  # a dataset of one's own: no card to hold it to
        return Check(label, True, f"{what} at {root} ({n} image{'s' if n != 1 else ''})")
    return card_check(label, f"{what} at {root}", row, root, (n, len(ds.categories.ids), sum(ds.categories.isthing)))


def card_check(label: str, what: str, row: Dataset, root: Path, counts: tuple[int, int, int]) -> Check:
    """A prepared dataset's (images, categories, things) against its row's card: other category or thing counts (or
    more images) fail; fewer images, a subset, is a note naming N of M."""
    (n, classes, things), card = counts, row.card
    got, stamp = f"{classes} categories, {things} things", f"its card v{card.version}"
    if (classes, things) != (card.classes, card.things) or (card.images is not None and n > card.images):
        again = f"panbench data {row.name}" + (f" --root {root}" if root != Path(row.folder) else "")
        fix = (f"prepare it again with `{again}{' --from DIR' if row.from_files else ''} --force`"
               if "force" in row.options else f"remove {root} and prepare it again with `{again}`")
        want = f"{card.images or 'any number of'} images, {card.classes} categories, {card.things} things"
        return Check(label, False, f"{what}: {n} images, {got}, but {stamp} says {want}", fix)
    if card.images is not None and n < card.images:
        return Check(label, False, f"{what}: a subset, {n} of {card.images} images ({got}, as {stamp})",
                     required=False)
    return Check(label, True, f"{what} ({n} image{'s' if n != 1 else ''}, {got}: as {stamp})")


def _prepared_as(root: Path) -> str | None:
    """The dataset at ``root``: a converted one whose annotation file is there, else the row its folder names (coco,
    demo, ...), else None (a dataset of one's own, in the COCO layout)."""
    from panbench.data.datasets import layout

    for d in DATASETS.values():
        if d.converted and layout(root, d.name, "val2017")[0].is_file():
            return d.name
    folders = {p.name for p in (root, root.parent)}
    return next((d.name for d in DATASETS.values() if d.name in folders), None)


def _dataset_name(root: Path) -> str:
    """The doctor's words of the :data:`panbench.data.catalog.DATASETS` row that ``root``'s folder names."""
    folders = {p.name for p in (root, root.parent)}
    return next((d.doctor or d.display for d in DATASETS.values() if d.name in folders), "a")


def _tiny_batch(size: int = 64) -> dict[str, Any]:
    """One synthetic image in the form mmdet's ``test_step`` takes."""
    import torch
    from mmdet.structures import DetDataSample

    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
    meta = {"img_id": 0, "img_shape": (size, size), "ori_shape": (size, size), "scale_factor": (1.0, 1.0),
            "pad_shape": (size, size), "batch_input_shape": (size, size)}
    return {"inputs": [img], "data_samples": [DetDataSample(metainfo=meta)]}


def _modes(model: Any, device: str, name: str = "the model") -> dict[str, str]:
    """:func:`amp_support`'s answer for one model (``name``: the model's, in the line announcing each mode)."""
    import torch

    res: dict[str, str] = {}
    for mode in MODES:
        announce(f"running {name} in {mode} on {device}")
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
    root = config_dir or CONFIG_DIR
    announce("importing mmdet's models")
    mm.init_mmdet()  # what the first build would do: announced apart

    out: dict[str, dict[str, str]] = {}
    for spec in all_models(root):
        if spec.dataset != "demo" or spec.architecture in out:
            continue
        announce(f"building the {spec.architecture} demo model (random weights) on {device}")
        built = open_model(spec).random_model(device)  # through its family, as `panbench ls --params` builds it
        if built is None:
            continue
        keep_ops_fp32(built.module)
        out[spec.architecture] = _modes(built.module, device, spec.architecture)
    return out


def configs_check() -> Check:
    """The model configs and the demo weights are there (a clone's folders, or a wheel's package data): without
    them ``panbench ls`` shows only the hf: models and no zoo or demo model runs."""
    root = resources.config_dir()
    n_zoo, n_demo = len(list(root.glob("*.py"))), len(list(root.glob("demo/*.py")))
    n_weights = len(list(resources.checkpoint_dir("demo").glob("*.pth")))
    return Check("configs", n_zoo > 0 and n_demo > 0 and n_weights > 0,
                 f"{n_zoo} zoo and {n_demo} demo configs in {root}, {n_weights} demo weight files",
                 "reinstall panbench from a wheel (pip install \"panbench[mmdet]\", docs/setup.md) or from a clone "
                 "(pip install -e \".[mmdet]\"); a copied panbench/ folder has no configs")


def torchvision_check() -> Check:
    """A CUDA torch's torchvision (panbench's CUDA nms and RoIAlign): installed, built for this torch, ops load."""
    import torch

    have = installed_version("torchvision")
    if (problem := pairing_problem(torch.__version__, have)) is None:
        try:
            import torchvision.ops

            torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)
        except Exception as e:  # a torchvision whose compiled ops do not load with this torch
            problem = f"torchvision {have}: its ops do not load ({type(e).__name__}: {e})".splitlines()[0][:200]
    return Check("torchvision", problem is None, problem or f"{have} (for torch {torch.__version__})",
                 install_command("torchvision", pip_command(), torch.__version__, have))


def _installed(name: str) -> tuple[str, str] | None:
    """(distribution, version) of the package imported as ``name`` (mmcv: ``mmcv`` or ``mmcv-lite``), or None."""
    import importlib.metadata as md

    with suppress(md.PackageNotFoundError):
        return name, md.version(name)
    for dist in md.packages_distributions().get(name, []):  # a scan of every installed package: only when needed
        with suppress(md.PackageNotFoundError):
            return dist, md.version(dist)
    return None


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version (``2.13.0+cpu`` -> (2, 13, 0); ``2.1rc1`` -> (2, 1))."""
    found = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(n) for n in found.group().split(".")) if found else ()


def family_checks(pip: str, own_lines: set[str]) -> list[Check]:
    """One line per model family: its installed ``packages`` against its ``tested`` versions; another version, or a
    package missing, is a note with the pip command of the tested one (of a package not in ``own_lines``)."""
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
        out.append(Check(f"versions/{f.name}", not (missing or off), f"{', '.join(parts)}: {tail}", fix,
                         required=False))
    return out


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    return sub.add_parser(
        "doctor", parents=[common.data_root],
        help="check the installation: versions, mmcv's ops (compiled or panbench's), GPU, data and checkpoints",
        description="Print the versions of the stack and check that each part works; each problem on one line with "
        "its fix. Exit 1 when a required part is broken.")


def run(args: argparse.Namespace) -> int:
    print(f"panbench {__version__}")
    checks = collect(dataset_root(args))
    for c in checks:
        print(c.line())
    if broken := [c for c in checks if c.required and not c.ok]:
        print(f"{len(broken)} required part(s) broken: {', '.join(c.name for c in broken)}")
        return 1
    print("all required parts work")
    return 0
