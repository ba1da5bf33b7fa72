# Faster R-CNN R50-FPN, COCO detection; baseline: plain SGD (no AGVM).
# Same batch (64 GPUs x 4 = 256), data, warm-up and schedule as
# faster-rcnn_r50_fpn_agvm_64xb4-16e_coco-b256.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_sgd_64xb4-16e_coco-b256.py 64
_base_ = './faster-rcnn_r50_fpn_agvm_64xb4-16e_coco-b256.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.16 * 2 ** 0.5, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
