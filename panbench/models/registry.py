"""The model registry: one file per model under ``configs/``, found by name or alias.

Each config file inherits one MMDetection zoo config and carries a ``panbench = dict(...)``
block with its metadata; the block is read with ``ast`` so listing models needs neither
mmengine nor torch.  Unknown names answer "did you mean ...".
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panbench import REPO_ROOT
from panbench.errors import PanbenchError

CONFIG_DIR = REPO_ROOT / "configs"


@dataclass
class ModelSpec:
    """A model that panbench can evaluate: its config file and metadata."""

    name: str
    config: Path
    architecture: str = "custom"
    backbone: str = "?"
    aliases: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    sha256_prefix: str | None = None
    published: dict[str, float | None] = field(default_factory=dict)
    dataset: str = "coco"
    params: int | None = None

    @property
    def checkpoint_filename(self) -> str | None:
        return self.checkpoint.rsplit("/", 1)[-1] if self.checkpoint else None


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
    return ModelSpec(config=path, **fields)


def all_models(config_dir: Path = CONFIG_DIR, dataset: str | None = None) -> list[ModelSpec]:
    """Every registered model (``configs/*.py`` and ``configs/demo/*.py``), sorted by name."""
    specs = [load_spec(p) for p in sorted(config_dir.glob("*.py"))]
    if (config_dir / "demo").is_dir():
        specs += [load_spec(p) for p in sorted((config_dir / "demo").glob("*.py"))]
    if dataset is not None:
        specs = [s for s in specs if s.dataset == dataset]
    return specs


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
        if raw == "all":
            out += [s for s in specs if s.dataset == dataset]
        elif raw in by_name:
            out.append(by_name[raw])
        elif raw.endswith(".py") or "/" in raw:
            p = Path(raw)
            if not p.is_file():
                raise PanbenchError(f"{p}: config file not found; pass a registered name (panbench ls) or a path")
            out.append(load_spec(p))
        else:
            near = difflib.get_close_matches(raw, list(by_name), n=3, cutoff=0.4)
            hint = f"did you mean {', '.join(near)}?" if near else "run `panbench ls` for the list"
            raise PanbenchError(f"unknown model '{raw}'; {hint}")
    if not out:
        raise PanbenchError(f"no model selected by --model {names!r}; run `panbench ls`")
    return out
