# Faster R-CNN R50-FPN, COCO detection; baseline: PMD-LAMB (PMDLAMB).
# Same batch (384 GPUs x 4 = 1536), data, warm-up and schedule as
# faster-rcnn_r50_fpn_agvm_384xb4-12e_coco-b1536.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_pmd-lamb_384xb4-12e_coco-b1536.py 384
_base_ = './faster-rcnn_r50_fpn_agvm_384xb4-12e_coco-b1536.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='PMDLAMB', lr=1e-4 * (1536 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.01,
        decay_period=77,  # optimizer steps in one epoch (ceil(117266 / 1536))
        decay_factor=0.5),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0, norm_type=2))
custom_hooks = []
