# RetinaNet on the shapes data in the AGVM authors' regime: the tiny
# ResNet-18 pretrained by tools/pretrain_backbone.py (pretrain it first)
# with stem and stage 1 frozen, heads from scratch, and the authors'
# schedule shape (../_base_/schedules/shapes_paper_6500it.py). BatchNorm
# keeps its pretrained statistics (norm_eval=True, mmdet's rule for
# pretrained backbones): the authors' SyncBN over the whole batch has no
# one-process equivalent, and frozen statistics keep the network the same
# function at every batch size.
_base_ = [
    '../_base_/models/retinanet_tiny_shapes.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/shapes_paper_6500it.py',
]

model = dict(backbone=_base_.pretrained_backbone)
optim_wrapper = dict(optimizer=dict(lr=0.02))
train_dataloader = dict(batch_size=8)
val_dataloader = test_dataloader = dict(batch_size=8)
