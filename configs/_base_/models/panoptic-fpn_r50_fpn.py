# Panoptic FPN R50-FPN, the model of mmdet's
# panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py (Mask R-CNN + semantic head +
# fusion head; mmdet has no _base_/models file for it, and its config takes
# in COCO and the 1x schedule), for COCO's 80 thing and 53 stuff classes.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

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
