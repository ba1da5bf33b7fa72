# Panoptic FPN R50-FPN, COCO panoptic segmentation; baseline: AdamW.
# Same batch (64 GPUs x 4 = 256), data, warm-up and schedule as
# panoptic-fpn_r50_fpn_agvm_64xb4-16e_coco-panoptic-b256.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/panoptic_fpn/panoptic-fpn_r50_fpn_adamw_64xb4-16e_coco-panoptic-b256.py 64
_base_ = './panoptic-fpn_r50_fpn_agvm_64xb4-16e_coco-panoptic-b256.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4 * (256 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
