# RetinaNet R18-FPN, COCO detection; baseline: AdamW.
# Same batch (256 GPUs x 8 x 5 = 10240), data, warm-up and schedule as
# retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/retinanet/retinanet_r18_fpn_adamw_256xb8x5-16e_coco-b10240.py 256
_base_ = './retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4 * (10240 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=5,
    clip_grad=None)
custom_hooks = []
