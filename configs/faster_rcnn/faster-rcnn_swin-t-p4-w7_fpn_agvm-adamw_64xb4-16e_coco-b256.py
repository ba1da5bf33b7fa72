# Faster R-CNN Swin-T-FPN, COCO detection; AdamW + AGVM.
# Global batch 256 = 64 GPUs x 4 images per GPU.
# lr 1e-4 * (256 / 16) ** 0.5 (AdamW: Swin-T recipe 1e-4 at 16, square-root scaling),
# betas (0.9, 0.999), weight decay 0.05 (not on norms / position tables, as mmdet Swin).
# Exponential warm-up from 0.001 over 920 optimizer steps; 16 epochs, lr x 0.1 at 12 and 14.
# AGVM (Adam rule, chosen from AdamW) from optimizer step 1020, statistics every 10
# steps; grad clip max_norm 1.0 only on optimizer steps [820, 1020).
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_swin-t-p4-w7_fpn_agvm-adamw_64xb4-16e_coco-b256.py 64
# Rules for values the paper does not give: configs/README.md.
# Backbone as mmdet's swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(
    imports=['agvm_mm'], allow_failed_imports=False)

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))

train_dataloader = dict(batch_size=4)  # images per GPU

train_cfg = dict(max_epochs=16)
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=920),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]

optim_wrapper = dict(
    _delete_=True,
    type='AGVMOptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4 * (256 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }),
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0, norm_type=2),  # only inside agvm.clip_grad_window
    agvm=dict(
        interval=10,
        start_iter=1020,  # optimizer steps (= runner iterations / accumulative_counts)
        stop_iter=None,
        momentum=0.97,
        clamp=(0.5, 10.0),
        anchor='backbone',
        modules=None,
        clip_grad_window=(820, 1020)))
custom_hooks = [dict(type='AGVMHook')]  # logs Phi and s per module
auto_scale_lr = dict(enable=False, base_batch_size=256)
