# Faster R-CNN with a tiny random-init ResNet-18 on the built-in shapes data,
# trained with AGVM. Global batch 16 = 1 process x 8 images x 2 micro-batches
# (accumulative_counts=2 gives AGVM its two gradient estimates). With 2
# processes: tools/dist_train.sh CONFIG 2 --cfg-options
# optim_wrapper.accumulative_counts=1 keeps the batch at 16.
# AGVM modules (default partition): backbone, neck, rpn_head, roi_head.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/shapes_det_runtime.py',
    '../_base_/schedules/shapes_agvm_1200it.py',
]

model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),  # random init: nothing is downloaded
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # base anchors 8 (stride 4) .. 128 px (stride 64): objects are 8-64 px
        anchor_generator=dict(scales=[2], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=128, num_classes=6)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(score_thr=0.05, max_per_img=50)))

train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=8)
test_dataloader = val_dataloader
