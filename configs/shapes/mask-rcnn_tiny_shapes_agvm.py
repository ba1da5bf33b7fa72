# Mask R-CNN with a tiny random-init ResNet-18 on the built-in shapes data,
# trained with AGVM. Batch (16 = 8 images x 2 micro-batches), schedule and
# the 2-process launch: ../_base_/schedules/shapes_agvm_1200it.py.
# AGVM modules (default partition): backbone, neck, rpn_head,
# roi_head.bbox_head, roi_head.mask_head.
_base_ = [
    '../_base_/models/mask-rcnn_tiny_shapes.py',
    '../_base_/datasets/shapes_instance.py',
    '../_base_/shapes_det_runtime.py',
    '../_base_/schedules/shapes_agvm_1200it.py',
]

train_dataloader = dict(batch_size=8)
val_dataloader = test_dataloader = dict(batch_size=8)
