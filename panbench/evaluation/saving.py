"""The ``--save-predictions`` writer of a run: made and checked once per node (and, under torchrun,
seen by every rank), the ``info`` block of its JSON, and the one-line error of a JSON that could not
be written after the record was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation.distributed import barrier, dist_any, dist_gather, dist_info, local_rank
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.predictions import PredictionWriter
from panbench.models.registry import ModelSpec
from panbench.records.provenance import now_iso


def prediction_writer(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions,
                      key: str) -> PredictionWriter | None:
    """The writer of ``--save-predictions`` (None without it), its folders made and checked once per node;
    its ``saved`` set holds the images whose prediction an earlier run of the same key saved."""
    if opts.save_predictions is None:
        return None
    prefix = getattr(dataset, "prefix", None) or dataset.ann_file.stem  # panoptic_val2017, panoptic_test-dev2017
    cats = [{"id": c, "name": n, "isthing": int(t)}
            for c, n, t in zip(dataset.categories.ids, dataset.categories.names, dataset.categories.isthing)]
    writer = PredictionWriter(opts.save_predictions, prefix, spec.name, key, dataset.samples, cats)
    if local_rank() == 0:
        writer.prepare(fresh=not opts.resume)
    barrier()
    check_shared(writer)
    writer.load_saved()
    return writer


def check_shared(writer: PredictionWriter) -> None:
    """Under torchrun, before any image runs: every rank sees the folder of ``--save-predictions`` that
    rank 0 sees (rank 0 assembles the JSON from every rank's files); else each rank stops in one line."""
    if dist_info()[1] == 1:
        return
    import uuid

    mark = writer.mark(uuid.uuid4().hex)  # a fresh name: no stale mark of another job, no cached lookup
    blind = not writer.sees(dist_gather(mark.name[len("seen-"):]))  # the gather: every mark is written
    stop = dist_any(blind)  # and the barrier before the marks go
    mark.unlink(missing_ok=True)
    if stop:
        raise PanbenchError(f"{writer.root}: --save-predictions under torchrun on several machines needs a folder "
                            "that every rank sees (a shared file system), and this one is not shared; choose a "
                            "shared folder (nothing was run)")


def predictions_info(spec: ModelSpec, opts: EvalOptions, key: str) -> dict[str, Any]:
    """The ``info`` block of a saved prediction JSON: what made it."""
    return {"description": f"{spec.name} predictions ({opts.postprocess.label()}) written by panbench",
            "model": spec.name, "postprocess": opts.postprocess.label(), "cfg_options": opts.cfg_options,
            "run_key": key, "date": now_iso(), "command": opts.command}


def unsaved_error(writer: PredictionWriter, e: PanbenchError | OSError, record: Path) -> PanbenchError:
    """The one-line error of a predictions JSON that could not be written, after the record was."""
    what = str(e) if isinstance(e, PanbenchError) else (f"{writer.json_path}: could not be written "
                                                       f"({e.strerror or e}); free space or choose another "
                                                       "--save-predictions folder, and rerun")
    return PanbenchError(f"{what} (the scores are in {record}; a rerun takes the cached images)")
