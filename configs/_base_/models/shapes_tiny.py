# The shapes configs' tiny models, made from mmdet's R50-FPN models: a
# ResNet-18 with 16 base channels, random init (nothing is downloaded), and
# a 64-channel FPN from stride 4 for objects of 8-64 px in 128 px images, 6
# thing classes. They are variables rather than `model` because mmengine
# refuses the same key in two sibling bases: a config lists this file beside
# mmdet's model base and takes one with `model = _base_.tiny_faster_rcnn`.
# Names with two leading underscores are parts (mmengine drops them).
__backbone = dict(
    depth=18, base_channels=16, frozen_stages=-1, norm_eval=False,
    init_cfg=None)
__neck = dict(in_channels=[16, 32, 64, 128], out_channels=64)

tiny_retinanet = dict(
    backbone=__backbone,
    # FPN from stride 4 and 12 px base anchors
    neck=dict(__neck, start_level=0, add_extra_convs='on_output'),
    bbox_head=dict(
        num_classes=6,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        anchor_generator=dict(octave_base_scale=3,
                              strides=[4, 8, 16, 32, 64])),
    test_cfg=dict(max_per_img=50))

tiny_faster_rcnn = dict(
    backbone=__backbone,
    neck=__neck,
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # base anchors 8 (stride 4) .. 128 px (stride 64)
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

tiny_mask_rcnn = dict(tiny_faster_rcnn, roi_head=dict(
    tiny_faster_rcnn['roi_head'],
    mask_roi_extractor=dict(out_channels=64),
    mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=6)))

# Panoptic FPN: the Mask R-CNN above, 3 stuff classes, a semantic head
# predicting the stuff maps + 1 (all things merged into one)
__things, __stuff = 6, 3
tiny_panoptic_fpn = dict(
    tiny_mask_rcnn,
    semantic_head=dict(
        num_things_classes=__things,
        num_stuff_classes=__stuff,
        in_channels=64,
        inner_channels=32,
        norm_cfg=dict(num_groups=8)),
    panoptic_fusion_head=dict(
        num_things_classes=__things, num_stuff_classes=__stuff),
    test_cfg=dict(
        tiny_mask_rcnn['test_cfg'],
        rcnn=dict(score_thr=0.5, max_per_img=50),
        # HeuristicFusionHead drops stuff segments under stuff_area_limit
        # pixels (4096 in the COCO recipe; images here are 128 x 128)
        panoptic=dict(stuff_area_limit=64)))
