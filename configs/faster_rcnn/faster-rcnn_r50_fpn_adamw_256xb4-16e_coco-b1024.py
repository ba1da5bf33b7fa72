# Faster R-CNN R50-FPN, COCO detection; baseline: AdamW.
# Same batch (256 GPUs x 4 = 1024), data, warm-up and schedule as
# faster-rcnn_r50_fpn_agvm_256xb4-16e_coco-b1024.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_adamw_256xb4-16e_coco-b1024.py 256
_base_ = './faster-rcnn_r50_fpn_agvm_256xb4-16e_coco-b1024.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4 * (1024 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
