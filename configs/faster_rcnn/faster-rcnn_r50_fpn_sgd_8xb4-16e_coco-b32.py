# Faster R-CNN R50-FPN, COCO detection; baseline: plain SGD (no AGVM).
# Same batch (8 GPUs x 4 = 32), data, warm-up and schedule as
# faster-rcnn_r50_fpn_agvm_8xb4-16e_coco-b32.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_sgd_8xb4-16e_coco-b32.py 8
_base_ = './faster-rcnn_r50_fpn_agvm_8xb4-16e_coco-b32.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
