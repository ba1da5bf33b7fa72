# Panoptic FPN R50-FPN on COCO panoptic: mmdet's
# panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py without its schedule and
# optimizer (those are ../schedules/ and ../optimizers/, which also set its
# custom_hooks), with the authors' SyncBN. Runtime: ../coco_runtime.py;
# custom_imports adds agvm_mm.datasets, which provides a panopticapi
# stand-in for mmdet's panoptic loader and metric if it is missing.
_base_ = [
    './panoptic-fpn_r50_fpn.py', 'mmdet::_base_/datasets/coco_panoptic.py',
    '../coco_runtime.py'
]
custom_imports = dict(imports=['agvm_mm', 'agvm_mm.datasets'],
                      allow_failed_imports=False)
model = dict(backbone=_base_.authors_bn)
