"""The demo dataset (``panbench data demo``: 4 thing and 4 stuff classes, things first) and the CPU training
recipe the three demo models share.

Each demo config lists this file after its MMDetection zoo config (``_base_ = [zoo, "./_base_/demo_dataset.py"]``).
mmengine refuses a key that two bases both set, so every setting the zoo configs also hold carries a ``demo_``
prefix here and the demo config assigns it (``train_dataloader = _base_.demo_train_dataloader``).  This file has
no ``panbench = dict(...)`` block and sits outside ``configs/demo/*.py``, so the model registry does not list it.
"""

classes = ("disk", "tile", "ring", "blob", "sky", "grass", "wall", "sand")
metainfo = dict(classes=classes, thing_classes=classes[:4], stuff_classes=classes[4:])
demo_num_things_classes, demo_num_stuff_classes = 4, 4
demo_data_root = "data/demo/"
demo_dataset_type = "CocoPanopticDataset"
demo_train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadPanopticAnnotations", with_bbox=True, with_mask=True, with_seg=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="RandomResize", scale=(208, 160), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type="PackDetInputs"),
]
demo_test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(208, 160), keep_ratio=True),
    dict(type="LoadPanopticAnnotations", with_bbox=True, with_mask=True, with_seg=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
demo_train_dataloader = dict(
    _delete_=True, batch_size=4, num_workers=1, persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True), batch_sampler=None,
    dataset=dict(type=demo_dataset_type, data_root=demo_data_root, metainfo=metainfo,
                 ann_file="annotations/panoptic_train2017.json",
                 data_prefix=dict(img="train2017/", seg="annotations/panoptic_train2017/"),
                 filter_cfg=dict(filter_empty_gt=True, min_size=1), pipeline=demo_train_pipeline))
demo_val_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=1, persistent_workers=False, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type=demo_dataset_type, data_root=demo_data_root, metainfo=metainfo,
                 ann_file="annotations/panoptic_val2017.json",
                 data_prefix=dict(img="val2017/", seg="annotations/panoptic_val2017/"),
                 test_mode=True, pipeline=demo_test_pipeline))
demo_val_evaluator = dict(_delete_=True, type="CocoPanopticMetric",
                          ann_file=demo_data_root + "annotations/panoptic_val2017.json",
                          seg_prefix=demo_data_root + "annotations/panoptic_val2017/")

# ---- training: 3000 iterations (a demo config that trains another number sets its own schedule) ----
demo_max_iters = 3000
demo_train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=demo_max_iters,
                      val_interval=demo_max_iters + 1)
demo_val_cfg = dict(type="ValLoop")
demo_test_cfg = dict(type="TestLoop")
demo_optim_wrapper = dict(_delete_=True, type="OptimWrapper",
                          optimizer=dict(type="AdamW", lr=0.0005, weight_decay=0.05),
                          clip_grad=dict(max_norm=1.0, norm_type=2))
demo_param_scheduler = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=200),
                        dict(type="MultiStepLR", by_epoch=False, begin=0, end=demo_max_iters,
                             milestones=[int(demo_max_iters * 0.8)], gamma=0.1)]
demo_auto_scale_lr = dict(enable=False, base_batch_size=4)
demo_default_hooks = dict(
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=demo_max_iters, max_keep_ckpts=1),
    logger=dict(type="LoggerHook", interval=50))
demo_log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=False)
