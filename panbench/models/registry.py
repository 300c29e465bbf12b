"""The model registry: one config file per model under ``configs/`` (its ``panbench = dict(...)`` block read with
``ast``), found by name or alias, and the models a family lists (``Family.registered_models``), each a frozen
:class:`~panbench.models.spec.ModelSpec`."""

from __future__ import annotations

import ast
import difflib
import sys
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.models.families import FAMILIES, by_prefix
from panbench.models.protocol import Family
from panbench.models.spec import ModelSpec
from panbench.resources import config_dir

CONFIG_DIR = config_dir()  # the clone's configs/, or the installed package's copy (panbench/resources.py)


MMDET_ZOO = "MMDetection model zoo"  # the source of a config's published numbers (reporting.tables says it too)


def read_metadata(path: Path) -> dict[str, Any]:
    """The literal ``panbench = dict(...)`` block of a config file ({} when absent)."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as e:
        raise PanbenchError(f"{path}: not valid Python ({e.msg}, line {e.lineno}); fix the config file") from e
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "panbench" for t in node.targets):
            try:
                return dict(_literal(node.value))
            except (ValueError, TypeError) as e:
                raise PanbenchError(f"{path}: the panbench = dict(...) block must hold literals only") from e
    return {}


def _literal(node: ast.AST) -> Any:
    """``ast.literal_eval`` that also accepts ``dict(key=literal, ...)`` calls."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
    return ast.literal_eval(node)


def load_spec(path: Path) -> ModelSpec:
    meta = read_metadata(path)
    known = set(ModelSpec.__dataclass_fields__) - {"config"}
    fields = {k: v for k, v in meta.items() if k in known}
    fields["name"] = meta.get("name", path.stem)
    if fields.get("published"):  # a config's published numbers are the zoo's unless it names another source
        fields.setdefault("published_source", MMDET_ZOO)
        if fields["published_source"] == MMDET_ZOO:  # CocoPanopticMetric: panopticapi's pq_compute
            fields.setdefault("published_rules", "panopticapi")
    return ModelSpec(config=path, **fields)


def all_models(config_dir: Path = CONFIG_DIR, dataset: str | None = None,
               framework: str | None = None) -> list[ModelSpec]:
    """Every registered model (``configs/``, ``configs/demo/``, the families'), optionally of a dataset, framework."""
    specs = [load_spec(p) for d in (config_dir, config_dir / "demo") for p in sorted(d.glob("*.py"))]
    for f in FAMILIES.values():
        specs += f.registered_models()
    return [s for s in specs if dataset in (None, s.dataset) and framework in (None, s.framework)]


def did_you_mean(word: str, choices: list[str], n: int = 3, cutoff: float = 0.4) -> str | None:
    """``"did you mean a, b?"`` with the choices closest to ``word`` (difflib), or None: every name's suggestion."""
    near = difflib.get_close_matches(word, list(dict.fromkeys(choices)), n=n, cutoff=cutoff)
    return f"did you mean {', '.join(near)}?" if near else None


def registered_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    """Every registered model name and alias."""
    return [n for s in all_models(config_dir) for n in (s.name, *s.aliases)]


def resolve(names: str, config_dir: Path = CONFIG_DIR, dataset: str = "coco") -> list[ModelSpec]:
    """Turn ``--model`` (a name, an alias, ``all``, a comma list or a config path) into specs."""
    specs = all_models(config_dir)
    by_name: dict[str, ModelSpec] = {}
    for s in specs:
        by_name.setdefault(s.name, s)
    for s in specs:  # aliases resolve within the dataset asked for first
        for a in s.aliases:
            if s.dataset == dataset or a not in by_name:
                by_name[a] = s
    out: list[ModelSpec] = []
    for raw in [n.strip() for n in names.split(",") if n.strip()]:
        prefixed = by_prefix(raw)
        if raw == "all":
            out += all_of(specs, dataset)
        elif prefixed is not None:
            out.append(ref_spec(prefixed[0], prefixed[1]))
        elif raw in by_name:
            out.append(by_name[raw])
        elif raw.endswith(".py") or "/" in raw:
            p = Path(raw)
            if not p.is_file():
                raise PanbenchError(f"{p}: config file not found; pass a registered name (panbench ls) or a path")
            out.append(load_spec(p))
        else:
            hint = did_you_mean(raw, list(by_name)) or "run `panbench ls` for the list"
            raise PanbenchError(f"unknown model '{raw}'; {hint}")
    if not out:
        if "all" in (n.strip() for n in names.split(",")):
            raise PanbenchError(f"--model all: dataset {dataset} has no registered model that runs here; name the "
                                "models to run on it (`panbench ls` lists each model with its dataset)")
        raise PanbenchError(f"no model selected by --model {names!r}; run `panbench ls`")
    # "mask2former,all", or an alias beside its name: each model once
    return [s for k, s in enumerate(out) if all((s.name, s.config) != (u.name, u.config) for u in out[:k])]


def all_of(specs: list[ModelSpec], dataset: str) -> list[ModelSpec]:
    """``--model all`` on ``dataset``: its registered models of the families ``all`` takes (COCO's: the MMDetection
    zoo; its transformers checkpoints, hub downloads, are chosen by name), else all its registered models; those
    that cannot run here (:meth:`Family.unavailable`) left out with a note."""
    own = [s for s in specs if s.dataset == dataset]
    chosen = [s for s in own if FAMILIES[s.framework].in_all] or own
    why = {s.name: FAMILIES[s.framework].unavailable(s) for s in chosen}
    for reason in filter(None, why.values()):
        print(f"note: --model all leaves out {reason}", file=sys.stderr)
    return [s for s in chosen if why[s.name] is None]


def ref_spec(fam: Family, ref: str) -> ModelSpec:
    """``--model PREFIX:<ref>``: the registered entry of ``ref``, else an unregistered ``PREFIX-<name>`` spec."""
    import re

    ref = ref.strip()
    if not ref:
        raise PanbenchError(f"--model {fam.prefix}: needs a reference after '{fam.prefix}:' "
                            f"({fam.prefix}:{fam.ref_help})")
    for s in all_models():
        if s.framework == fam.name and s.ref == ref:
            return s
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(ref.rstrip("/")).name or ref)
    head = f"{fam.prefix}-"
    name = stem if stem.startswith(head) else head + stem  # a directory named hf-x is model hf-x, not hf-hf-x
    return ModelSpec(name=name, config=Path(f"{fam.prefix}:{ref}"), architecture=fam.name, framework=fam.name,
                     ref=ref, unregistered=True)
