"""Demo Mask2Former: the zoo R-50 config shrunk (R-18 with 16 base channels, 64-channel heads, 24 queries, 1 encoder and
3 decoder layers, no 1024x1024 LSJ batch padding) for the 8 demo classes."""

_base_ = "mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py"

panbench = dict(name="demo-mask2former", architecture="Mask2Former", backbone="R-18 (small)", dataset="demo",
                aliases=["mask2former"], checkpoint=None, sha256_prefix=None, published={})

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
max_iters = 3000
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
    data_preprocessor=dict(batch_augments=None),
    backbone=dict(depth=18, base_channels=16, stem_channels=16, init_cfg=None, frozen_stages=-1,
                  norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False),
    panoptic_head=dict(
        in_channels=[16, 32, 64, 128], feat_channels=64, out_channels=64,
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes, num_queries=24,
        pixel_decoder=dict(
            norm_cfg=dict(type="GN", num_groups=8),
            encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=dict(embed_dims=64, num_heads=4),
                                                      ffn_cfg=dict(embed_dims=64, feedforward_channels=128))),
            positional_encoding=dict(num_feats=32)),
        positional_encoding=dict(num_feats=32),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=64, num_heads=4), cross_attn_cfg=dict(embed_dims=64, num_heads=4),
            ffn_cfg=dict(embed_dims=64, feedforward_channels=256))),
        loss_cls=dict(class_weight=[1.0] * 8 + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    train_cfg=dict(num_points=2048),
    test_cfg=dict(max_per_image=24),
)
