"""Demo PanopticFPN: the zoo R-50 1x config shrunk (R-18 with 16 base channels, 64-channel FPN, small heads) for the 8
demo classes; stuff_area_limit lowered to suit 100-200 px images."""

_base_ = "mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py"

panbench = dict(name="demo-panoptic-fpn", architecture="PanopticFPN", backbone="R-18 (small)", dataset="demo",
                aliases=["panoptic-fpn"], checkpoint=None, sha256_prefix=None, published={})

# ---- the demo dataset (panbench data demo): 4 thing and 4 stuff classes, things first ----
classes = ("disk", "tile", "ring", "blob", "sky", "grass", "wall", "sand")
metainfo = dict(classes=classes, thing_classes=classes[:4], stuff_classes=classes[4:])
num_things_classes, num_stuff_classes = 4, 4
data_root = "data/demo/"
dataset_type = "CocoPanopticDataset"
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadPanopticAnnotations", with_bbox=True, with_mask=True, with_seg=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="RandomResize", scale=(208, 160), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(208, 160), keep_ratio=True),
    dict(type="LoadPanopticAnnotations", with_bbox=True, with_mask=True, with_seg=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(
    _delete_=True, batch_size=4, num_workers=1, persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True), batch_sampler=None,
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file="annotations/panoptic_train2017.json",
                 data_prefix=dict(img="train2017/", seg="annotations/panoptic_train2017/"),
                 filter_cfg=dict(filter_empty_gt=True, min_size=1), pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=1, persistent_workers=False, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file="annotations/panoptic_val2017.json",
                 data_prefix=dict(img="val2017/", seg="annotations/panoptic_val2017/"),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type="CocoPanopticMetric", ann_file=data_root + "annotations/panoptic_val2017.json",
                     seg_prefix=data_root + "annotations/panoptic_val2017/")
test_evaluator = val_evaluator
max_iters = 2000
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
optim_wrapper = dict(_delete_=True, type="OptimWrapper", optimizer=dict(type="AdamW", lr=0.0005, weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=200),
                   dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters,
                        milestones=[int(max_iters * 0.8)], gamma=0.1)]
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=max_iters, max_keep_ckpts=1),
                     logger=dict(type="LoggerHook", interval=50))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=False)

model = dict(
    backbone=dict(depth=18, base_channels=16, stem_channels=16, init_cfg=None, frozen_stages=-1,
                  norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=128, num_classes=num_things_classes),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=num_things_classes)),
    semantic_head=dict(in_channels=64, inner_channels=32, num_things_classes=num_things_classes,
                       num_stuff_classes=num_stuff_classes, norm_cfg=dict(type="GN", num_groups=8, requires_grad=True)),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    # fewer proposals and sampled RoIs than the zoo's 2000/1000/512: small images, few objects, CPU training
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=200), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200), panoptic=dict(stuff_area_limit=256)),
)
