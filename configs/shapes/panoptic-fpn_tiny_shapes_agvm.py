# Panoptic FPN with a tiny random-init ResNet-18 on the built-in shapes data
# (6 thing + 3 stuff classes), trained with AGVM. The model is mmdet's
# panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py without its COCO data and
# epoch schedule, made tiny. Batch (16 = 8 images x 2 micro-batches),
# schedule and the 2-process launch: ../_base_/schedules/shapes_agvm_1200it.py.
# AGVM modules (default partition): backbone, neck, rpn_head,
# roi_head.bbox_head, roi_head.mask_head, semantic_head.
_base_ = [
    '../_base_/models/panoptic-fpn_tiny_shapes.py',
    '../_base_/datasets/shapes_panoptic.py',
    '../_base_/shapes_det_runtime.py',
    '../_base_/schedules/shapes_agvm_1200it.py',
]

train_dataloader = dict(batch_size=8)
val_dataloader = test_dataloader = dict(batch_size=8)
# custom_hooks: the base's AGVMHook only (mmdet's panoptic recipe also
# drops NumClassCheckHook)
