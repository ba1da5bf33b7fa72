# RetinaNet R18-FPN on COCO: the paper's model at batch 10240.
_base_ = './retinanet_r50_fpn_coco.py'

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
