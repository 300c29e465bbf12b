"""GFLOPs of the full-size zoo architectures (random weights, each model's test pipeline) against the FLOPs their
papers publish, and panbench's fusion on their outputs against mmdet's.

Published (1 multiply-add = 1 FLOP, fvcore, averaged over 100 COCO val images at the 800-pixel short side):
Mask2Former R50 226 G and Swin-L 868 G (Cheng et al., "Masked-attention Mask Transformer for Universal Image
Segmentation", CVPR 2022, Table 1, COCO panoptic val); MaskFormer R50 181 G (Cheng et al., "Per-Pixel
Classification is Not All You Need for Semantic Segmentation", NeurIPS 2021, Table 2, COCO panoptic val).
PanopticFPN: no FLOPs published in its paper or detectron2's model zoo; its count is checked to be positive only
(eval's count of it on a COCO image at 800x1199: test_eval_coco_sample.py).

The comparison runs on one 640x480 image (COCO val's most common size; 800x1067 after the test pipeline's
resize), one forward per model, which gives the fusion's inputs too.  Tolerance: 10%.  The gap comes from
(a) the image sizes (one size instead of COCO's first 100 images), and (b) the ops counted: FlopCounterMode counts
convolutions and matrix products only; fvcore also counts normalisations and upsampling, and neither counts
deformable attention's ``grid_sample`` sampling (Mask2Former's pixel decoder).  That the count follows the input
is checked once, on MaskFormer R50: the COCO sample's first image (640x427, 800x1199 after the resize) counts more,
in proportion to its pixels.

The counts need a real forward: on the ``meta`` device or under ``FakeTensorMode`` the models stop at
data-dependent Python (mmengine's ``stack_batch`` padding, the deformable attention's level sizes, the fusion).
The backbone alone has none: Swin-L's (three quarters of its count, and of a CPU's minute) is counted on the meta
device and the rest of the forward runs for real on random features of the backbone's output shapes
(:data:`SPLIT`); that the split count equals the whole forward's is checked on the demo Mask2Former (its classes,
R-18 small: a forward in a fraction of a second).
"""

from __future__ import annotations

import pytest
import torch

from panbench.evaluation.flops import model_gflops

pytestmark = pytest.mark.slow

PUBLISHED = {  # config -> (GFLOPs, source)
    "mask2former_r50": (226.0, "Cheng et al. 2022, Table 1"),
    "mask2former_swin-l-in21k": (868.0, "Cheng et al. 2022, Table 1"),
    "maskformer_r50": (181.0, "Cheng et al. 2021, Table 2"),
    "panoptic-fpn_r50_1x": (None, "none published"),
}
TOLERANCE = 0.10
GROWTH = "maskformer_r50"  # the model whose count on a second, larger input is checked to grow with the pixels
SPLIT = {"mask2former_swin-l-in21k"}  # counted as backbone on meta + the rest for real (:func:`_split_gflops`)


def _sample_inputs(cfg, coco_sample, n):
    from panbench.data.datasets import load_dataset
    from panbench.models.mmdet import mm

    ds = load_dataset(coco_sample, name="coco")
    pipe = mm.test_pipeline(cfg)
    return [pipe({"img_path": str(s.image_path), "img_id": s.image_id}) for s in ds.samples[:n]]


def _gflops_on_meta(cfg, path, datas):
    """:func:`model_gflops` of ``cfg``'s model built on the meta device: shapes only, no arithmetic.  Its panoptic
    fusion, which branches on values and has no op that FlopCounterMode counts, returns an empty map there."""
    from mmengine.structures import PixelData

    from panbench.models.mmdet import mm
    from panbench.models.mmdet.family import MMDetModel

    with torch.device("meta"):
        model = mm.build_model(cfg, path).to("meta")  # .to: mmengine's data preprocessor moves the inputs there

    def empty_map(mask_cls, mask_pred, samples, **kwargs):
        return [{"pan_results": PixelData(sem_seg=torch.zeros((1, *s.ori_shape), device="meta"))} for s in samples]

    model.panoptic_fusion_head.predict = empty_map
    return model_gflops(MMDetModel(model, mm.class_names(cfg), [], None), datas, "meta")


def _split_gflops(model, family, typical) -> dict:
    """:func:`model_gflops` with the backbone counted on the meta device: the rest of ``model`` runs for real on
    random features of the shapes the backbone gives (a FLOP count depends on shapes only), the backbone's count
    added.  It leaves the backbone on the meta device (Swin's build reads values: it cannot be built there)."""
    from torch.utils.flop_counter import FlopCounterMode

    from panbench.evaluation.flops import _TotalOnly

    assert not model.with_neck  # extract_feat is the backbone alone
    inputs = model.data_preprocessor({"inputs": [typical["inputs"]], "data_samples": [typical["data_samples"]]})
    model.backbone.to("meta")
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalOnly()
    with torch.inference_mode(), counter:
        shapes = [f.shape for f in model.extract_feat(inputs["inputs"].to("meta"))]
    gen = torch.Generator().manual_seed(0)
    model.extract_feat = lambda _inputs: [torch.randn(s, generator=gen) for s in shapes]
    try:
        res = model_gflops(family, [typical], "cpu")
    finally:
        del model.extract_feat
    total = (round(res["gflops"] * 1e9) + counter.get_total_flops() // 2) / 1e9  # multiply-adds: integers
    return {**res, "gflops": total, "per_image_gflops": [total]}


def test_the_count_with_the_backbone_on_meta_equals_the_whole_forwards(tmp_path) -> None:
    """:func:`_split_gflops`, which counts Swin-L, equals :func:`model_gflops` of the whole forward, on the demo
    Mask2Former (Mask2Former's classes: its pixel decoder's deformable attention and the transformer decoder)."""
    import numpy as np
    from PIL import Image

    from panbench.models.mmdet import mm
    from panbench.models.mmdet.family import MMDetModel, panoptic_only
    from panbench.models.registry import CONFIG_DIR

    path = CONFIG_DIR / "demo" / "mask2former.py"
    cfg = mm.load_config(path)
    panoptic_only(cfg)
    torch.manual_seed(0)
    model = mm.build_model(cfg, path).eval()
    img = tmp_path / "image.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(img)
    typical = mm.test_pipeline(cfg)({"img_path": str(img), "img_id": 0})
    family = MMDetModel(model, mm.class_names(cfg), [], mm.test_pipeline(cfg))
    whole = model_gflops(family, [typical], "cpu")["gflops"]
    assert whole > 0 and _split_gflops(model, family, typical)["gflops"] == whole


@pytest.mark.system  # the zoo's full-size models, Swin-L among them, one forward each (~30 s)
@pytest.mark.parametrize("name", list(PUBLISHED))
def test_zoo_gflops_match_the_papers_and_fusion_matches_mmdet(name, coco_sample, tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from panbench.models.mmdet import mm
    from panbench.models.mmdet.family import MMDetModel, install_fusion, panoptic_only
    from panbench.models.registry import CONFIG_DIR

    path = CONFIG_DIR / f"{name}.py"
    cfg = mm.load_config(path)
    panoptic_only(cfg)
    torch.manual_seed(0)
    model = mm.build_model(cfg, path).eval()
    img = tmp_path / "coco-size.jpg"  # 640x480, COCO val's most common size: the papers' typical input
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(img)
    typical = mm.test_pipeline(cfg)({"img_path": str(img), "img_id": 0})
    head = model.panoptic_fusion_head
    calls = []
    orig = head.predict

    def capture(*a, **k):
        calls.append((a, k))
        return orig(*a, **k)

    head.predict = capture
    family = MMDetModel(model, mm.class_names(cfg), [], mm.test_pipeline(cfg))
    if name in SPLIT:
        res = _split_gflops(model, family, typical)
    else:
        res = model_gflops(family, [typical], "cpu")
    del head.predict
    pub, source = PUBLISHED[name]
    assert res["input_hw"] == [[800, 1067]] and res["convention"].startswith("1 multiply-add = 1 FLOP")
    if pub is None:
        assert res["gflops"] > 50
    else:
        assert abs(res["gflops"] / pub - 1) <= TOLERANCE, (name, res["gflops"], pub, source)
    print(f"\n{name}: {res['gflops']:.1f} GFLOPs at 800x1067 (published {pub}, {source})")
    if name == GROWTH:  # counted on the meta device: the same count at 800x1067, more at the sample's 800x1199
        meta = _gflops_on_meta(cfg, path, [typical, *_sample_inputs(cfg, coco_sample, 1)])
        assert meta["input_hw"] == [[800, 1067], [800, 1199]] and meta["per_image_gflops"][0] == res["gflops"]
        assert 1.0 < meta["per_image_gflops"][1] / res["gflops"] < 1199 / 1067 * 1.05, meta["per_image_gflops"]

    # the fusion on these outputs: mmdet's and panbench's, pixel for pixel; random weights keep few segments,
    # so the thresholds are lowered too (the same rules at other settings)
    for settings in ({}, {"object_mask_thr": 0.0, "iou_thr": 0.3, "mask_overlap": 0.9, "stuff_area_limit": 64}):
        cfg_before = dict(head.test_cfg)
        for k, v in settings.items():
            if k in head.test_cfg:
                head.test_cfg[k] = v
        with torch.inference_mode():
            ref = [_maps(orig(*a, **k)) for a, k in calls]
            assert install_fusion(model, "panbench")
            ours = [_maps(head.predict(*a, **k)) for a, k in calls]
        for k in [k for k in vars(head) if k in ("predict", "_predict_single")]:
            delattr(head, k)
        head.test_cfg.update(cfg_before)
        assert all(torch.equal(r, o) for rs, os_ in zip(ref, ours) for r, o in zip(rs, os_))


def _maps(out):
    return [o["pan_results"].sem_seg[0] if isinstance(o, dict) else o.sem_seg[0] for o in out]


def test_ops_counted_as_zero_where_they_run_count_what_their_decompositions_count() -> None:
    """Upsampling and ``grid_sample`` (Mask2Former's pixel decoder) are counted as 0 where they run rather than
    decomposed by FlopCounterMode: the count of a forward through each of them beside a convolution equals the
    count with them decomposed, so the shortcut hides no counted op."""
    import torch.nn.functional as F  # noqa: N812
    from torch.utils.flop_counter import FlopCounterMode

    from panbench.evaluation import flops

    conv = torch.nn.Conv2d(3, 4, 3)
    x, grid = torch.rand(1, 3, 9, 11), torch.rand(1, 5, 6, 2) * 2 - 1

    def forward() -> None:
        y = conv(x)
        for mode in ("bilinear", "nearest", "bicubic"):
            y = conv(F.interpolate(x, scale_factor=2, mode=mode)) + 0 * F.interpolate(y, size=(7, 9), mode=mode).sum()
        conv(F.grid_sample(x, grid, align_corners=False))

    counts = []
    for mapping in ({}, dict.fromkeys(flops._uncounted_ops(torch), flops._no_flops)):
        counter = FlopCounterMode(display=False, custom_mapping=mapping)
        with torch.inference_mode(), counter:
            forward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
