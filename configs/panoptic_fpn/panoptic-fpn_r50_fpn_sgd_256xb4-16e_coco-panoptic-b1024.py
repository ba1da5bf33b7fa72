# Panoptic FPN R50-FPN, COCO panoptic segmentation; baseline: plain SGD (no AGVM).
# Same batch (256 GPUs x 4 = 1024), data, warm-up and schedule as
# panoptic-fpn_r50_fpn_agvm_256xb4-16e_coco-panoptic-b1024.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/panoptic_fpn/panoptic-fpn_r50_fpn_sgd_256xb4-16e_coco-panoptic-b1024.py 256
_base_ = './panoptic-fpn_r50_fpn_agvm_256xb4-16e_coco-panoptic-b1024.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.16 * (1024 / 128) ** 0.5, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
