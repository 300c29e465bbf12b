"""The records a command (``compare``, ``images``, ``table``) names through :func:`panbench.records.io.named_records`:
a record path, a model name or a registry alias; the one-line hint when there is none; a record's per-image
analysis file."""

from __future__ import annotations

import shlex
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
    """The records ``what`` may name, oldest first (a JSON path: that one; a model name or alias: every record of
    that model), and their results folder; none is a one-line error with the hint."""
    from panbench.records.io import load_records, named_records

    runs, root, names = named_records(what, results, dataset, lambda w: alias_names(w, dataset))
    if not runs:
        raise InputError(f"{results / 'runs'}: {no_record_hint(what, names, load_records(results), dataset)}")
    return runs, root


def no_record_hint(what: str, names: set[str], every: list[RunRecord], dataset: str | None) -> str:
    """Why no record of ``what`` was found and the fix: the datasets its records are on, the names meant (a
    mistyped model), the ``eval`` of a registered model, or the ``score --name`` of an external system (quoted)."""
    where = f" on {dataset}" if dataset else ""
    head = f"no record of model '{what}'{where}"
    elsewhere = sorted({r.dataset for r in every if r.model == what or r.model in names})
    if elsewhere:
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


def load_run(rec: RunRecord, root: Path) -> Any:
    """The record's per-image :class:`panbench.analysis.AnalysisSet`, refused in one line when absent."""
    from panbench.analysis import AnalysisSet
    from panbench.reporting.pairing import analysis_path

    name = rec.record or rec.model
    fix = ("rerun `panbench eval` (or `panbench score --name`) with this version of panbench, which writes "
           "the per-image analysis file beside the record")
    if not rec.analysis_file:
        named = _named_analysis(root, rec)  # a damaged file, read as none (panbench.records.io.load_records)
        raise InputError(f"{named}: the per-image analysis file of {name} is damaged; {fix}" if named else
                         f"{name}: the record has no per-image analysis file (schema {rec.schema}); {fix}")
    path = analysis_path(root, rec)
    if path is None:
        raise InputError(f"{root / rec.analysis_file}: the per-image analysis file of {name} is missing; {fix}")
    aset = AnalysisSet.load(path)
    if aset.isthing is None or aset.category_ids is None:
        raise InputError(f"{path}: the analysis file lacks the category table; {fix}")
    return aset


def _named_analysis(root: Path, rec: RunRecord) -> Path | None:
    """The analysis file the record's JSON names, where it names one (the record as read may have none: its file
    damaged)."""
    import json

    try:
        named = json.loads((root / str(rec.record)).read_text()).get("analysis_file")
    except (OSError, ValueError, AttributeError):
        return None
    return root / named if isinstance(named, str) and named else None
