"""What the commands that run models (eval, robustness, speed, viz) share: torch imported first, the models and
dataset of ``--model`` and ``--dataset``, the one checkpoint of ``--checkpoint``, the process's rank and the end of a
distributed run."""

from __future__ import annotations

import os
from typing import Any

from panbench.errors import PanbenchError
from panbench.interrupts import sigint_deferred
from panbench.models.registry import resolve


def import_torch() -> None:
    """``import torch``, before any work: without it, one line naming the extra (every model needs it). A Ctrl-C
    meanwhile is acted on as the import ends: one inside torch's C++ initialisation would end the process in
    pybind11's ``terminate`` (exit -6) instead of the one line."""
    with sigint_deferred():
        import torch  # noqa: F401


def models_and_dataset(model: str, dataset: str | None) -> tuple[list[Any], str]:
    """The models of ``--model`` and the dataset they run on: ``--dataset`` when given (a model whose classes do not
    map to it is refused by the class check), else the one they were trained on (models of several: refused)."""
    if dataset:
        return resolve(model, dataset=dataset), dataset
    first = model.split(",")[0].strip()
    guess = "coco" if first == "all" else resolve(first)[0].dataset
    specs = resolve(model, dataset=guess)
    # a model the registry does not list (hf:DIR) says nothing of its dataset: it follows the others (its labels
    # are checked)
    found = sorted({s.dataset for s in specs if not s.unregistered}) or [guess]
    if len(found) > 1:
        raise PanbenchError(f"--model {model}: the models were trained on different datasets "
                            f"({', '.join(found)}); pass --dataset")
    return specs, found[0]


def single_checkpoint(checkpoints: list[str] | None, specs: list[Any]) -> str | None:
    """The one ``--checkpoint`` of a command that runs one model with it (eval, robustness), or None."""
    if checkpoints and (len(specs) > 1 or len(checkpoints) > 1):
        raise PanbenchError("--checkpoint applies to one model; pass a single --model with a single --checkpoint")
    return checkpoints[0] if checkpoints else None


def rank() -> int:
    """This process's rank under torchrun (0 when not distributed): only rank 0 prints."""
    return int(os.environ.get("RANK", "0"))


def finish_distributed() -> None:
    """The end of a run under torchrun: a barrier, then the process group destroyed (nothing outside it)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        from panbench.evaluation.runtime import barrier

        barrier()  # one line, not a traceback, when rank 0 stopped at the end (e.g. a predictions JSON unwritten)
        dist.destroy_process_group()
