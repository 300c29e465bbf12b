"""Demo Mask2Former: the zoo R-50 config shrunk (R-18 with 16 base channels, 64-channel heads, 24 queries, 1 encoder and
3 decoder layers, no 1024x1024 LSJ batch padding) for the 8 demo classes."""

_base_ = ["mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py", "./_base_/demo_dataset.py"]

panbench = dict(name="demo-mask2former", architecture="Mask2Former", backbone="R-18 (small)", dataset="demo",
                aliases=["mask2former"], checkpoint=None, sha256_prefix=None, published={})

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
