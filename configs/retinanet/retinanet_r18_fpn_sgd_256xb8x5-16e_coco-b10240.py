# RetinaNet R18-FPN, COCO detection; baseline: plain SGD (no AGVM).
# Same batch (256 GPUs x 8 x 5 = 10240), data, warm-up and schedule as
# retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/retinanet/retinanet_r18_fpn_sgd_256xb8x5-16e_coco-b10240.py 256
_base_ = './retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.08 * (10240 / 128) ** 0.5, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=5,
    clip_grad=None)
custom_hooks = []
