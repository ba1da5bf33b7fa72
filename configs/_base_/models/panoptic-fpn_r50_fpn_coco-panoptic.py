# Panoptic FPN R50-FPN on COCO panoptic: mmdet's
# panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py without its schedule and
# optimizer (those are ../schedules/ and ../optimizers/, which also set its
# custom_hooks), with the authors' SyncBN. mmdet's file takes in its
# schedule, so its model changes are restated here.
# custom_imports registers AGVM, the baseline optimizers and ExpWarmupLR.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_panoptic.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['agvm_mm'], allow_failed_imports=False)

model = dict(
    type='PanopticFPN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # as the authors
        norm_eval=False),
    semantic_head=dict(
        type='PanopticFPNHead',
        num_things_classes=80,
        num_stuff_classes=53,
        in_channels=256,
        inner_channels=128,
        start_level=0,
        end_level=4,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        conv_cfg=None,
        loss_seg=dict(
            type='CrossEntropyLoss', ignore_index=255, loss_weight=0.5)),
    panoptic_fusion_head=dict(
        type='HeuristicFusionHead',
        num_things_classes=80,
        num_stuff_classes=53),
    test_cfg=dict(
        rcnn=dict(
            score_thr=0.6,
            nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True),
            max_per_img=100,
            mask_thr_binary=0.5),
        # used in HeuristicFusionHead
        panoptic=dict(mask_overlap=0.5, stuff_area_limit=4096)))
