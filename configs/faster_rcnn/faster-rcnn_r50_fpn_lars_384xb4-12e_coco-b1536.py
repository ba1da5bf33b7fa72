# Faster R-CNN R50-FPN, COCO detection; baseline: LARS (TimmLARS).
# Same batch (384 GPUs x 4 = 1536), data, warm-up and schedule as
# faster-rcnn_r50_fpn_agvm_384xb4-12e_coco-b1536.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_lars_384xb4-12e_coco-b1536.py 384
_base_ = './faster-rcnn_r50_fpn_agvm_384xb4-12e_coco-b1536.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='TimmLARS', lr=0.38 * (1536 / 512) ** 0.5, momentum=0.9,
        weight_decay=1e-4, trust_coeff=0.001),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
