"""The corrupting pipeline: MMDetection's loading step, the corruption of the RGB image, the other steps;
a transformers model's pipeline gets the corrupted RGB image."""

from __future__ import annotations

import numpy as np
from PIL import Image

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

    mm.init_mmdet()
    path, rgb = image_file(tmp_path)
    c = Corruption("impulse_noise", 5)
    pipe = CorruptedPipeline(Compose([dict(type="LoadImageFromFile")]), c)
    assert pipe.mmdet
    data = pipe({"img_path": str(path), "img_id": 42})
    want = c.apply(rgb, 42)
    assert np.array_equal(data["img"], want[..., ::-1])  # corrupted in RGB, handed on in BGR
    assert not np.array_equal(data["img"], c.apply(rgb[..., ::-1].copy(), 42))  # not corrupted in BGR
    assert data["corrupt_s"] > 0 and np.array_equal(pipe.load_rgb({"img_path": str(path), "img_id": 42}), rgb)


def test_a_transformers_pipeline_gets_the_corrupted_rgb_image(tmp_path) -> None:
    path, rgb = image_file(tmp_path)
    seen = {}

    def hf_pipeline(item):
        seen.update(item)
        return {"pixel_values": item["img"]}

    c = Corruption("glass_blur", 2)
    data = CorruptedPipeline(hf_pipeline, c, timed=False)({"img_path": str(path), "img_id": 7})
    assert np.array_equal(seen["img"], c.apply(rgb, 7)) and "corrupt_s" not in data
