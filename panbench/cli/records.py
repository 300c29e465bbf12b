"""The records a command (``compare``, ``images``, ``table``) names: a record path, a model name or a registry alias;
the one-line hint when there is none; a record's per-image analysis file."""

from __future__ import annotations

import json
import shlex
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.errors import InputError, PanbenchError
from panbench.models.registry import did_you_mean, registered_names, resolve

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord


def alias_names(what: str, dataset: str | None) -> set[str]:
    """The models a registry alias stands for on ``dataset`` (``mask2former`` with ``--only-dataset demo`` is
    ``demo-mask2former``); none where ``what`` is no alias."""
    try:
        return {s.name for s in resolve(what, dataset=dataset or "coco")}
    except PanbenchError:
        return set()


def find_records(what: str, results: Path, dataset: str | None) -> tuple[list[RunRecord], Path]:
    """The records ``what`` names, oldest first, and their results folder: a record JSON's path (also ``runs/X.json``
    below ``results``), else every record on ``dataset`` (None: any) of model ``what`` or of the models it is an alias
    of; none found is a one-line error with the hint."""
    from panbench.records.io import load_record, load_records

    path = Path(what)
    if path.suffix == ".json" and not path.is_file() and (results / path).is_file():
        path = results / path  # runs/X.json: the record's path below the results folder
    if path.suffix == ".json" and path.is_file():
        run = load_record(path, fix="pass a results/runs/*.json file")
        rel = Path(run.record or Path("runs") / path.name)
        root = path.resolve().parents[len(rel.parts) - 1] if path.resolve().parts[-len(rel.parts):] == rel.parts \
            else results
        return [run], root
    if path.suffix == ".json":
        raise InputError(f"{path}: record not found; pass a results/runs/*.json file or a model name")
    every = load_records(results)
    records = [r for r in every if dataset is None or r.dataset == dataset]
    names: set[str] = set()
    if not (runs := [r for r in records if r.model == what]):
        names = alias_names(what, dataset)
        runs = [r for r in records if r.model in names]
    if not runs:
        raise InputError(f"{results / 'runs'}: {no_record_hint(what, names, every, dataset)}")
    return runs, results


def no_record_hint(what: str, names: set[str], every: list[RunRecord], dataset: str | None) -> str:
    """Why no record of ``what`` was found and the fix: the datasets its records are on, the names meant (a
    mistyped model), the ``eval`` of a registered model, or the ``score --name`` of an external system (quoted)."""
    where = f" on {dataset}" if dataset else ""
    head = f"no record of model '{what}'{where}"
    if elsewhere := sorted({r.dataset for r in every if r.model == what or r.model in names}):
        return f"{head}; its records are on {', '.join(elsewhere)}: pass --only-dataset {elsewhere[0]}"
    recorded = [r.model for r in every if dataset is None or r.dataset == dataset]
    if names:
        model = shlex.quote(sorted(names)[0])
        run = f"run `panbench eval --model {model}{f' --dataset {dataset}' if dataset else ''}`"
        near = [m for m in dict.fromkeys(recorded) if what in m or m in names]  # e.g. demo-maskformer for maskformer
        if near:  # records of a model that the name may mean: compare them, as they exist
            on = sorted({r.dataset for r in every if r.model == near[0]})
            return f"{head}; records exist of {', '.join(near)} (on {', '.join(on)}): compare those, or {run}"
        return f"{head}; {run}"
    if hint := did_you_mean(what, recorded + registered_names()):
        return f"{head}; {hint}"
    return (f"{head}; record a system scored elsewhere with `panbench score ... --name {shlex.quote(what)}`, "
            "or pass a record JSON path (`panbench ls` lists the models `panbench eval` runs)")


def load_run(rec: RunRecord, root: Path, keys: Collection[str] | None = None) -> Any:
    """The record's per-image :class:`panbench.analysis.AnalysisSet` (of its columns only ``keys`` where given),
    refused in one line when absent."""
    from panbench.analysis import AnalysisSet
    from panbench.reporting.pairing import analysis_path

    name = rec.record or rec.model
    fix = ("rerun `panbench eval` (or `panbench score --name`) with this version of panbench, which writes "
           "the per-image analysis file beside the record")
    if not rec.analysis_file:  # none, or a damaged one that the record's JSON names (read as none: load_records)
        try:
            named = json.loads((root / str(rec.record)).read_text()).get("analysis_file")
        except (OSError, ValueError, AttributeError):
            named = None
        raise InputError(f"{root / named}: the per-image analysis file of {name} is damaged; {fix}"
                         if isinstance(named, str) and named else
                         f"{name}: the record has no per-image analysis file (schema {rec.schema}); {fix}")
    if (path := analysis_path(root, rec)) is None:
        raise InputError(f"{root / rec.analysis_file}: the per-image analysis file of {name} is missing; {fix}")
    aset = AnalysisSet.load(path, keys)
    if aset.isthing is None or aset.category_ids is None:
        raise InputError(f"{path}: the analysis file lacks the category table; {fix}")
    return aset
