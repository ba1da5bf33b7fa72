# RetinaNet R50-FPN, COCO detection; baseline: AdamW.
# Same batch (128 GPUs x 4 = 512), data, warm-up and schedule as
# retinanet_r50_fpn_agvm_128xb4-16e_coco-b512.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/retinanet/retinanet_r50_fpn_adamw_128xb4-16e_coco-b512.py 128
_base_ = './retinanet_r50_fpn_agvm_128xb4-16e_coco-b512.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4 * (512 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
