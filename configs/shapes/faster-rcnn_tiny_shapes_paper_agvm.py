# Faster R-CNN on the shapes data in the AGVM authors' regime, as
# retinanet_tiny_shapes_paper_agvm.py (pretrained backbone, frozen stem and
# stage 1, BN statistics kept, ../_base_/schedules/shapes_paper_6500it.py)
# at the schedule base's lr (0.04 at batch 16).
_base_ = [
    '../_base_/models/faster-rcnn_tiny_shapes.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/shapes_paper_6500it.py',
]

model = dict(backbone=_base_.pretrained_backbone)
train_dataloader = dict(batch_size=8)
val_dataloader = test_dataloader = dict(batch_size=8)
