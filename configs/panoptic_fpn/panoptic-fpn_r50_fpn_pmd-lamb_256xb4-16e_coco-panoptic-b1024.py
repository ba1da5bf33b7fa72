# Panoptic FPN R50-FPN, COCO panoptic segmentation; baseline: PMD-LAMB (PMDLAMB).
# Same batch (256 GPUs x 4 = 1024), data, warm-up and schedule as
# panoptic-fpn_r50_fpn_agvm_256xb4-16e_coco-panoptic-b1024.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/panoptic_fpn/panoptic-fpn_r50_fpn_pmd-lamb_256xb4-16e_coco-panoptic-b1024.py 256
_base_ = './panoptic-fpn_r50_fpn_agvm_256xb4-16e_coco-panoptic-b1024.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='PMDLAMB', lr=1e-4 * (1024 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.01,
        decay_period=115,  # optimizer steps in one epoch (ceil(117266 / 1024))
        decay_factor=0.5),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0, norm_type=2))
custom_hooks = []
