# RetinaNet R50-FPN, COCO detection; baseline: LARS (TimmLARS).
# Same batch (256 GPUs x 4 = 1024), data, warm-up and schedule as
# retinanet_r50_fpn_agvm_256xb4-16e_coco-b1024.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/retinanet/retinanet_r50_fpn_lars_256xb4-16e_coco-b1024.py 256
_base_ = './retinanet_r50_fpn_agvm_256xb4-16e_coco-b1024.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='TimmLARS', lr=0.08 * (1024 / 128) ** 0.5, momentum=0.9,
        weight_decay=1e-4, trust_coeff=0.001),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
