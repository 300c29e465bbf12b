"""A model's test pipeline with a corruption between loading the image and the rest of the pipeline,
where MMDetection's ``test_robustness.py`` puts its ``Corrupt`` step (after ``LoadImageFromFile``).

It runs wherever the pipeline runs: in the DataLoader workers of :mod:`panbench.evaluation.inference.loop` (and
of each forked ``--cpu-procs`` process), so the corruption's cost is paid on the data-loading side,
beside the forward pass rather than in it.  Each call adds the seconds it spent corrupting to the
item (``corrupt_s``), which the loop sums into the run's timings.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from panbench.robustness.corruptions import Corruption


class CorruptedPipeline:
    """``pipeline`` with ``corruption`` applied to the decoded image, seeded by the item's ``img_id``.

    An MMDetection pipeline (mmengine ``Compose`` starting with ``LoadImageFromFile``): the loading step
    runs, its BGR image is corrupted in RGB (the order the corruptions are defined in) and the other
    steps follow.  A transformers model's pipeline (:class:`panbench.models.hf.model.HFPanoptic`) takes the
    corrupted RGB image as ``img``.
    """

    def __init__(self, pipeline: Any, corruption: Corruption, timed: bool = True) -> None:
        self.pipeline, self.corruption, self.timed = pipeline, corruption, timed
        steps = getattr(pipeline, "transforms", None) or []
        self.mmdet = bool(steps) and type(steps[0]).__name__ == "LoadImageFromFile"

    def load_rgb(self, item: dict[str, Any]) -> np.ndarray:
        """The image as the model's pipeline decodes it, in RGB (uncorrupted)."""
        if self.mmdet:
            return np.ascontiguousarray(self.pipeline.transforms[0](dict(item))["img"][..., ::-1])
        from PIL import Image

        with Image.open(item["img_path"]) as im:
            return np.asarray(im.convert("RGB"))

    def __call__(self, item: dict[str, Any]) -> dict[str, Any] | None:
        t = time.perf_counter()
        if self.mmdet:
            load, *rest = self.pipeline.transforms
            data = load(dict(item))
            bgr = data["img"]
            data["img"] = np.ascontiguousarray(self.corruption.apply(bgr[..., ::-1], item["img_id"])[..., ::-1])
            dt = time.perf_counter() - t
            for step in rest:
                data = step(data)
                if data is None:
                    return None
        else:
            img = self.corruption.apply(self.load_rgb(item), item["img_id"])
            dt = time.perf_counter() - t
            data = self.pipeline({**item, "img": img})
        if self.timed:
            data["corrupt_s"] = dt
        return data

