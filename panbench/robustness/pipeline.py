"""A model's test pipeline with a corruption applied to the decoded image, where the model's family applies an image
step (``pipeline_with``); a family without it is refused (:func:`check_corruptible`).  It runs in the DataLoader
workers; each call adds its seconds to the item (``corrupt_s``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from panbench.errors import PanbenchError
from panbench.robustness.corruptions import Corruption

MEMBER = "pipeline_with"  # the member of panbench.models.protocol.Corruptible that applies it


def check_corruptible(model: Any, family: str) -> None:
    """Refuse (one line) ``--corruption`` for a model whose family does not say where an image step goes."""
    if not callable(getattr(model, MEMBER, None)):
        raise PanbenchError(f"--corruption: the {family} model family does not say where a corruption is applied (its "
                         f"PanopticModel has no {MEMBER}, docs/models.md); leave --corruption out for its models")


class CorruptedPipeline:
    """``model``'s pipeline with ``corruption`` applied to the decoded RGB image, seeded by the item's ``img_id``."""

    def __init__(self, model: Any, corruption: Corruption, timed: bool = True, family: str = "model") -> None:
        check_corruptible(model, family)
        self.model, self.corruption, self.timed = model, corruption, timed

    def load_rgb(self, item: dict[str, Any]) -> np.ndarray:
        """The image as the model's pipeline decodes it, in RGB (uncorrupted)."""
        seen: list[np.ndarray] = []

        def keep(rgb: np.ndarray) -> np.ndarray:
            seen.append(np.array(rgb))
            return rgb

        getattr(self.model, MEMBER)(dict(item), keep)
        return seen[0]

    def __call__(self, item: dict[str, Any]) -> dict[str, Any] | None:
        spent: list[float] = []

        def corrupt(rgb: np.ndarray) -> np.ndarray:
            t = time.perf_counter()
            out = self.corruption.apply(rgb, item["img_id"])
            spent.append(time.perf_counter() - t)
            return out

        data = getattr(self.model, MEMBER)(item, corrupt)
        if data is not None and self.timed:
            data["corrupt_s"] = sum(spent)
        return data
