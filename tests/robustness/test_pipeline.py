"""The corrupting pipeline: where the model's family applies an image step (MMDetection's loading step, then the
corruption of the RGB image, then the other steps; a transformers model's pipeline gets the corrupted RGB image);
a family that does not say where is refused."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from panbench.errors import PanbenchError
from panbench.robustness.corruptions import Corruption
from panbench.robustness.pipeline import CorruptedPipeline


def image_file(tmp_path):
    rng = np.random.RandomState(1)
    rgb = rng.randint(0, 256, (40, 56, 3)).astype(np.uint8)
    path = tmp_path / "x.png"  # lossless: the decoded pixels are these
    Image.fromarray(rgb).save(path)
    return path, rgb


def test_an_mmdet_pipeline_gets_the_corrupted_rgb_image_back_in_bgr_after_loading(tmp_path) -> None:
    from mmengine.dataset import Compose

    from panbench.models.mmdet import mm
    from panbench.models.mmdet.family import MMDetModel

    mm.init_mmdet()
    path, rgb = image_file(tmp_path)
    c = Corruption("impulse_noise", 5)
    pipe = CorruptedPipeline(MMDetModel(None, [], [], Compose([dict(type="LoadImageFromFile")])), c)
    data = pipe({"img_path": str(path), "img_id": 42})
    want = c.apply(rgb, 42)
    assert np.array_equal(data["img"], want[..., ::-1])  # corrupted in RGB, handed on in BGR
    assert not np.array_equal(data["img"], c.apply(rgb[..., ::-1].copy(), 42))  # not corrupted in BGR
    assert data["corrupt_s"] > 0 and np.array_equal(pipe.load_rgb({"img_path": str(path), "img_id": 42}), rgb)


def test_a_transformers_pipeline_gets_the_corrupted_rgb_image(tmp_path) -> None:
    from panbench.models.hf.model import HFPanoptic

    path, rgb = image_file(tmp_path)
    seen = {}

    def hf_pipeline(item):
        seen.update(item)
        return {"pixel_values": item["img"]}

    model = SimpleNamespace(pipeline=hf_pipeline, protocol=None)  # transformers' pipeline
    model.pipeline_with = lambda item, step: HFPanoptic.pipeline_with(model, item, step)
    c = Corruption("glass_blur", 2)
    data = CorruptedPipeline(model, c, timed=False)({"img_path": str(path), "img_id": 7})
    assert np.array_equal(seen["img"], c.apply(rgb, 7)) and "corrupt_s" not in data


def test_a_family_that_does_not_say_where_a_corruption_goes_is_refused() -> None:
    plain = SimpleNamespace(pipeline=lambda item: item)  # a pipeline only: it would score the clean image
    with pytest.raises(PanbenchError, match=r"^--corruption: the toy model family .*pipeline_with.*leave --corruption"):
        CorruptedPipeline(plain, Corruption("fog", 1), family="toy")
