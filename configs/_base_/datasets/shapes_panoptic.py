# Synthetic "shapes" panoptic segmentation (COCO panoptic format: 6 things,
# 3 stuff). Generate the data first:
#   python tools/generate_shapes.py --out data/shapes
# mmdet's LoadPanopticAnnotations and CocoPanopticMetric import
# `panopticapi` (GitHub-only, not on PyPI); importing agvm_mm.datasets
# installs a stand-in when it is missing.
# If a child config overrides `data_root`, it must also re-set the
# evaluators' `ann_file` / `seg_prefix` (evaluated when this file is loaded).
# agvm_mm's ShapesPanopticDataset: mmdet's CocoPanopticDataset with the shapes
# metainfo and paths (configs using this file import agvm_mm.datasets).
dataset_type = 'mmdet.ShapesPanopticDataset'
data_root = 'data/shapes/'
img_size = 128
backend_args = None
# == agvm_mm.datasets.SHAPES_PANOPTIC_METAINFO
metainfo = dict(
    classes=('circle', 'ellipse', 'triangle', 'square', 'hexagon', 'star',
             'sky', 'grass', 'wall'),
    thing_classes=('circle', 'ellipse', 'triangle', 'square', 'hexagon',
                   'star'),
    stuff_classes=('sky', 'grass', 'wall'),
    palette=[(220, 20, 60), (0, 130, 200), (255, 180, 0), (60, 180, 75),
             (145, 30, 180), (240, 50, 230), (135, 206, 235), (34, 139, 34),
             (128, 128, 128)])

# deterministic: no random augmentation. `LoadImageFromFile` stays
# unscoped: it is mmcv's, registered in mmengine's root registry, and a
# scoped 'mmdet.LoadImageFromFile' fails while the default scope is mmdet.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='mmdet.PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='mmdet.LoadPanopticAnnotations', backend_args=backend_args),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),  # iteration-based
    # training: no restart pause at the end of each pass
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(
            img='train2017/', seg='annotations/panoptic_train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='mmdet.CocoPanopticMetric',
    ann_file=data_root + 'annotations/panoptic_val2017.json',
    seg_prefix=data_root + 'annotations/panoptic_val2017/',
    backend_args=backend_args)
test_evaluator = val_evaluator
