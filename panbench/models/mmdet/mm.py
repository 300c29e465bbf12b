"""Everything that touches MMDetection: registries (``init_mmdet()``, explicitly, once), configs (``--cfg-options``
checked against the config they change), models, weights (checked on load), pipelines."""

from __future__ import annotations

import hashlib
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.models.protocol import count_parameters as count_parameters  # the one count, for this family's callers
from panbench.ops import install

_READY = False


# Modules that mmengine 0.10 / mmdet 3.3 import eagerly but inference never uses (~1.6 s of a ~4.5 s start-up), with
# the names their importers read: functions forward to the real module, classes refuse to be used.
_TRAINING_ONLY: dict[str, tuple[str, ...]] = {
    "torch.distributed.optim": (),  # mmengine's ZeroRedundancyOptimizer import is guarded: falls back
    "torch.distributed.fsdp": (),  # mmengine's FSDPStrategy import is guarded: skipped
    "mmengine.model.wrappers.fully_sharded_distributed": ("MMFullyShardedDataParallel",),
    "mmdet.utils.mot_error_visualize": ("imshow_mot_errors",),
    "scipy.optimize": ("linear_sum_assignment",),
    # mmdet's GLIP/grounding modules try `from transformers import ...` (seconds) and fall back to None on
    # ImportError: an empty stand-in makes each of those imports fail as if transformers were absent
    "transformers": (),
}


def _stand_in(module: str, name: str) -> Any:
    if name[0].isupper():
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise PanbenchError(f"{module}.{name} is not loaded by panbench (inference only); "
                                "set PANBENCH_FULL_IMPORTS=1")

        return type(name, (), {"__init__": refuse})

    def forward(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    forward.__name__ = name
    return forward


@contextmanager
def inference_imports() -> Iterator[None]:
    """While mmdet is first imported, stand in for the modules above (``PANBENCH_FULL_IMPORTS=1``: off)."""
    if os.environ.get("PANBENCH_FULL_IMPORTS") == "1" or "mmdet" in sys.modules:
        yield
        return
    stubs = {}
    for mod, names in _TRAINING_ONLY.items():
        if mod not in sys.modules:
            stub = types.ModuleType(mod, "panbench: not loaded for inference")
            for n in names:
                setattr(stub, n, _stand_in(mod, n))
            stubs[mod] = sys.modules[mod] = stub
    try:
        yield
    finally:
        for mod, stub in stubs.items():
            if sys.modules.get(mod) is stub:
                del sys.modules[mod]


def init_mmdet() -> None:
    """Register mmdet's modules and make ``mmdet`` the default scope (once per process)."""
    global _READY
    if not _READY:
        quiet_library_warnings()
        install()  # mmcv's compiled ops, or panbench's stand-in when mmcv has none (mmcv-lite)
        with inference_imports():
            from mmdet.utils import register_all_modules

            register_all_modules(init_default_scope=True)
        _name_cpu_ranks_by_local_rank()
        _READY = True


def quiet_library_warnings() -> None:
    """Leave out mmengine 0.10.7's pkg_resources warning and mmdet 3.3's SyntaxWarnings (Python 3.12+)."""
    import warnings

    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", category=SyntaxWarning, module=r".*[/\\](mmdet|mmengine|mmcv)[/\\]")


def _name_cpu_ranks_by_local_rank() -> None:
    """mmengine's logger names a rank by its local rank where a node runs more ranks than GPUs (not IndexError)."""
    from mmengine.logging import logger

    found = logger._get_device_id

    def device_id() -> int | str:  # a MIG device's UUID is a string (mmengine's own ValueError branch)
        try:
            return found()
        except IndexError:
            return int(os.environ.get("LOCAL_RANK", "0"))

    logger._get_device_id = device_id


def load_config(path: Path, options: dict[str, Any] | None = None) -> Any:
    """An mmengine Config from a panbench config file, ``--cfg-options`` merged in as ``tools/test.py`` does."""
    init_mmdet()
    from mmengine.config import Config

    try:
        cfg = Config.fromfile(str(path))
    except Exception as e:  # mmengine raises many types for a bad config
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise PanbenchError(f"{path}: config does not load ({type(e).__name__}: {msg}); fix the file") from e
    if options:
        _merge(cfg, options, path)
    return cfg


def merged(cfg: Any, options: dict[str, Any] | None, path: Path) -> Any:
    """A copy of ``cfg`` (read from ``path``) with ``--cfg-options`` merged in, as :func:`load_config` gives it:
    ``cfg`` itself is left as it is, for the next copy."""
    import copy

    out = copy.deepcopy(cfg)
    if options:
        _merge(out, options, path)
    return out


def _merge(cfg: Any, options: dict[str, Any], path: Path) -> None:
    check_cfg_options(cfg, options, path)
    try:
        cfg.merge_from_dict(options)
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise PanbenchError(f"{path}: --cfg-options do not apply ({type(e).__name__}: {msg}); "
                            "check the keys against the resolved config in a run record") from e


def check_cfg_options(cfg: Any, options: dict[str, Any], path: Path | str) -> None:
    """Each ``--cfg-options`` key names a setting (else the closest is proposed), each value its kind."""
    import difflib

    for key, value in options.items():
        node: Any = cfg
        parts = key.split(".")
        for depth, part in enumerate(parts):
            here = ".".join(parts[:depth]) or "the config's top level"
            if isinstance(node, list | tuple) and part.isdigit():
                if int(part) >= len(node):
                    raise PanbenchError(f"--cfg-options {key}: {here} has {len(node)} entries (index {part} is "
                                        f"out of range) in {path}; use an index below {len(node)}")
                node = node[int(part)]
                continue
            if not hasattr(node, "keys"):
                raise PanbenchError(f"--cfg-options {key}: {here} is {type(node).__name__}, not a dict, in {path}; "
                                    "set it whole or choose a key of the config")
            if part not in node:
                read = keys_read_with_default(cfg) if depth == len(parts) - 1 else {}
                if part in read:  # a setting the code reads with a default (object_mask_thr of Mask2Former)
                    node = read[part]
                    break
                keys = sorted({str(k) for k in node.keys()} | set(read))
                near = difflib.get_close_matches(part, keys, n=1, cutoff=0.6)
                hint = (f"did you mean {'.'.join(parts[:depth] + [near[0]])}?" if near
                        else f"the keys of {here} are {', '.join(keys)[:300]}")
                raise PanbenchError(f"--cfg-options {key}: {path} has no key '{part}' under {here}; {hint}")
            node = node[part]
        _check_kind(key, node, value)


def keys_read_with_default(cfg: Any) -> dict[str, Any]:
    """The settings the config's ``model`` classes read with ``cfg.get('key', default)``, with that default."""
    import ast
    import inspect
    import re

    from mmdet.registry import MODELS

    types_: set[str] = set()

    def walk(v: Any) -> None:
        if hasattr(v, "keys"):
            if isinstance(v.get("type"), str):
                types_.add(v["type"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(cfg.get("model"))
    out: dict[str, Any] = {}
    for t in sorted(types_):
        cls = MODELS.get(t)
        try:
            module = inspect.getmodule(cls) if cls is not None else None
            src = inspect.getsource(module) if module is not None else ""
        except (OSError, TypeError):
            continue
        for name, default in re.findall(r"cfg\.get\(\s*['\"](\w+)['\"]\s*(?:,\s*([^()]*?))?\s*\)", src):
            try:
                out.setdefault(name, ast.literal_eval(default) if default else None)
            except (ValueError, SyntaxError):
                out.setdefault(name, None)
    return out


def _check_kind(key: str, old: Any, new: Any) -> None:
    """``new`` has the kind of ``old`` (None: any), else a one-line error showing the value it replaces."""
    def kind(v: Any) -> str:
        kinds = ((type(None), "none"), (bool, "bool"), (int | float, "number"), (str, "string"), (list | tuple, "list"))
        return next((k for t, k in kinds if isinstance(v, t)), "dict" if hasattr(v, "keys") else type(v).__name__)

    k_old, k_new = kind(old), kind(new)
    if k_old in ("none", k_new) or k_new == "none":
        return
    raise PanbenchError(f"--cfg-options {key}={new!r}: expected a {k_old} like the config's value {old!r}, got a "
                        f"{k_new}; e.g. {key}={old!r}")


def config_text_and_hash(cfg: Any) -> tuple[str, str]:
    """The resolved config as JSON text (not ``pretty_text``: yapf, a second) and its sha256 (16 hex)."""
    import json

    text = json.dumps(cfg.to_dict(), sort_keys=True, indent=1, default=str)
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


def build_model(cfg: Any, path: Path) -> Any:
    """Build the detector of ``cfg`` (random weights; no pretrained download)."""
    init_mmdet()
    from mmdet.registry import MODELS

    try:
        model = MODELS.build(cfg.model)
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise PanbenchError(f"{path}: model does not build ({type(e).__name__}: {msg}); fix the config") from e
    model.eval()
    return model


def class_names(cfg: Any) -> list[str]:
    """The class order the model predicts in: the config's metainfo, else mmdet's COCO panoptic order."""
    for loader in ("test_dataloader", "val_dataloader"):
        ds = cfg.get(loader, {}).get("dataset", {})
        meta = ds.get("metainfo") if hasattr(ds, "get") else None
        if meta and meta.get("classes"):
            return list(meta["classes"])
    init_mmdet()
    from mmdet.datasets import CocoPanopticDataset

    return list(CocoPanopticDataset.METAINFO["classes"])


def label_to_category(names: list[str], categories: Any, where: str) -> list[int]:
    """Model class index -> dataset category id; a class order other than the annotation file's refused (mmdet's)."""
    by_name = {n: cid for n, cid in zip(categories.names, categories.ids)}
    for n in names:
        if n not in by_name:
            raise PanbenchError(f"{where}: the model's class '{n}' is not a category of the dataset; evaluate on the "
                                "dataset the model was trained for (--dataset) or set metainfo.classes in the config")
    wanted = set(names)
    json_order = [n for n in categories.names if n in wanted]
    if json_order != list(names):
        k = next(i for i, (a, b) in enumerate(zip(json_order, names)) if a != b)
        raise PanbenchError(f"{where}: class {k} is '{names[k]}' in the config but '{json_order[k]}' in the annotation "
                            "file's category order, which mmdet uses to number classes: predictions would be "
                            "mislabelled; list metainfo.classes in the annotation file's order")
    return [by_name[n] for n in names]


def check_thing_split(model: Any, names: list[str], categories: Any, where: str) -> None:
    """mmdet's heads treat the first ``num_things_classes`` labels as things: the dataset must agree."""
    head = getattr(model, "panoptic_fusion_head", None)
    n_th = getattr(head, "num_things_classes", None)
    if n_th is None:
        return
    isthing = dict(zip(categories.names, categories.isthing))
    for k, n in enumerate(names):
        if isthing[n] != (k < n_th):
            raise PanbenchError(f"{where}: class {k} '{n}' is a {'thing' if isthing[n] else 'stuff'} category in the "
                                f"dataset but the model treats labels {'>=' if k >= n_th else '<'} {n_th} as "
                                f"{'stuff' if k >= n_th else 'things'}; list things first in metainfo.classes and set "
                                "num_things_classes to match")


def load_weights(model: Any, state: dict[str, Any], path: Path, names: list[str], meta: dict | None = None) -> None:
    """Load ``state`` into ``model`` strictly; refuse a checkpoint of another architecture."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = [f"{len(keys)} {what} keys (e.g. {keys[0]})" for what, keys in (("missing", missing),
                                                                               ("unexpected", unexpected)) if keys]
        raise PanbenchError(f"{path}: checkpoint does not fit the model ({'; '.join(parts)}); it is for another "
                            "architecture or mmdet version: pass the matching --model or convert the checkpoint")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise PanbenchError(f"{path}: '{k}' has shape {tuple(state[k].shape)} but the model expects "
                                f"{tuple(v.shape)}; the checkpoint was trained for another number of classes or "
                                "another architecture")
    ck_classes = _checkpoint_classes(meta or {})
    problem = compare_classes(ck_classes, list(names)) if ck_classes is not None else None
    if problem:
        raise PanbenchError(f"{path}: {problem}; predictions would be mislabelled: use the config the checkpoint "
                            "was trained with, or set metainfo.classes to the checkpoint's classes")
    model.load_state_dict(state, strict=True)


def _few(items: list[str], k: int = 3) -> str:
    shown = ", ".join(repr(x) for x in items[:k])
    return f"[{shown}{', ...' if len(items) > k else ''}] ({len(items)})"


def compare_classes(ckpt: list[str], config: list[str]) -> str | None:
    """None when the checkpoint's classes equal the config's up to spelling; else what differs."""
    # surrounding whitespace and case do not count (mmdet 2.x's COCO panoptic classes spell ' truck')
    a, b = [x.strip().casefold() for x in ckpt], [x.strip().casefold() for x in config]
    if a == b:
        return None
    only_ck = [x for x, n in zip(ckpt, a) if n not in set(b)]
    only_cfg = [x for x, n in zip(config, b) if n not in set(a)]
    if only_ck or only_cfg:
        return (f"the checkpoint's classes differ from the config's: only in the checkpoint {_few(only_ck)}, "
                f"only in the config {_few(only_cfg)}")
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    at = lambda lst, i: repr(lst[i]) if i < len(lst) else "nothing"  # noqa: E731
    return (f"the checkpoint's class order differs from the config's at index {k} (checkpoint {at(ckpt, k)}, "
            f"config {at(config, k)}; {len(ckpt)} vs {len(config)} classes)")


def _checkpoint_classes(meta: dict) -> list[str] | None:
    """A checkpoint meta's class names: mmengine's ``dataset_meta['classes']`` or mmcv 1.x's ``CLASSES``."""
    dm = meta.get("dataset_meta")
    for value in ((dm.get("classes") if isinstance(dm, dict) else None), meta.get("CLASSES")):
        if value is not None and not isinstance(value, str | bytes) and len(value):
            return [str(x) for x in list(value)]
    return None


def test_pipeline(cfg: Any) -> Any:
    """The config's test pipeline without ground-truth loading (panbench scores from the PNGs)."""
    init_mmdet()
    from mmengine.dataset import Compose

    steps = [dict(t) for t in cfg.test_dataloader.dataset.pipeline if t["type"] != "LoadPanopticAnnotations"]
    return Compose(steps)
