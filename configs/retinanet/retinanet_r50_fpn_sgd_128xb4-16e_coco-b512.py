# RetinaNet R50-FPN, COCO detection; baseline: plain SGD (no AGVM).
# Same batch (128 GPUs x 4 = 512), data, warm-up and schedule as
# retinanet_r50_fpn_agvm_128xb4-16e_coco-b512.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/retinanet/retinanet_r50_fpn_sgd_128xb4-16e_coco-b512.py 128
_base_ = './retinanet_r50_fpn_agvm_128xb4-16e_coco-b512.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.08 * (512 / 128) ** 0.5, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
