# Faster R-CNN R50-FPN on COCO: mmdet's faster-rcnn_r50_fpn_1x_coco.py
# without its schedule and optimizer (those are ../schedules/ and
# ../optimizers/), with the authors' SyncBN. Runtime and imports:
# ../coco_runtime.py.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../coco_runtime.py'
]
model = dict(backbone=_base_.authors_bn)
