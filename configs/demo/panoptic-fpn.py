"""Demo PanopticFPN: the zoo R-50 1x config shrunk (R-18 with 16 base channels, 64-channel FPN, small heads) for the 8
demo classes; stuff_area_limit lowered to suit 100-200 px images."""

_base_ = ["mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py", "./_base_/demo_dataset.py"]

panbench = dict(name="demo-panoptic-fpn", architecture="PanopticFPN", backbone="R-18 (small)", dataset="demo",
                aliases=["panoptic-fpn"], checkpoint=None, sha256_prefix=None, published={})

# ---- the demo dataset and training recipe (./_base_/demo_dataset.py) in place of the zoo's COCO settings ----
num_things_classes, num_stuff_classes = _base_.demo_num_things_classes, _base_.demo_num_stuff_classes
data_root, dataset_type = _base_.demo_data_root, _base_.demo_dataset_type
train_pipeline, test_pipeline = _base_.demo_train_pipeline, _base_.demo_test_pipeline
train_dataloader, val_dataloader = _base_.demo_train_dataloader, _base_.demo_val_dataloader
test_dataloader = val_dataloader
val_evaluator = _base_.demo_val_evaluator
test_evaluator = val_evaluator
max_iters = _base_.demo_max_iters
train_cfg, val_cfg, test_cfg = _base_.demo_train_cfg, _base_.demo_val_cfg, _base_.demo_test_cfg
optim_wrapper, param_scheduler = _base_.demo_optim_wrapper, _base_.demo_param_scheduler
auto_scale_lr, log_processor = _base_.demo_auto_scale_lr, _base_.demo_log_processor
default_hooks = _base_.demo_default_hooks

# ---- PanopticFPN trains 2000 iterations ----
max_iters = 2000
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters + 1)
param_scheduler = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=200),
                   dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters,
                        milestones=[int(max_iters * 0.8)], gamma=0.1)]
default_hooks = dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=max_iters, max_keep_ckpts=1),
                     logger=dict(type="LoggerHook", interval=50))

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
