# Synthetic "shapes" detection (COCO boxes). Generate the data first:
#   python tools/generate_shapes.py --out data/shapes
# The dataset is agvm_mm's ShapesCocoDataset (mmdet's CocoDataset with the shapes
# metainfo and paths; configs using this file import agvm_mm.datasets), the rest
# stock mmdet classes; types carry the `mmdet.` scope so the file works
# under any default_scope. If a child config overrides `data_root`, it must
# also re-set the evaluators' `ann_file` (evaluated when this file is loaded).
dataset_type = 'mmdet.ShapesCocoDataset'
data_root = 'data/shapes/'
img_size = 128
backend_args = None
# == agvm_mm.datasets.SHAPES_DET_METAINFO
metainfo = dict(
    classes=('circle', 'ellipse', 'triangle', 'square', 'hexagon', 'star'),
    palette=[(220, 20, 60), (0, 130, 200), (255, 180, 0), (60, 180, 75),
             (145, 30, 180), (240, 50, 230)])

# deterministic: no random augmentation. `LoadImageFromFile` stays
# unscoped: it is mmcv's, registered in mmengine's root registry, and a
# scoped 'mmdet.LoadImageFromFile' fails while the default scope is mmdet.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='mmdet.PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
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
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
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
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
