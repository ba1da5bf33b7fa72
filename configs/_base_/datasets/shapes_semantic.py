# Synthetic "shapes" semantic segmentation for mmseg: the same JPEG images as
# the COCO-style tasks, labels in annotations/semantic_{train,val}2017/*.png
# (values 0..8 = things then stuff, every pixel labeled, no 255).
# Generate the data first:
#   python tools/generate_shapes.py --out data/shapes
# The dataset is agvm_mm's ShapesSegDataset (mmseg's BaseSegDataset with the shapes
# metainfo and paths; configs using this file import agvm_mm.datasets), the rest
# stock mmseg classes; types carry the `mmseg.` scope so the file works
# under any default_scope.
dataset_type = 'mmseg.ShapesSegDataset'
data_root = 'data/shapes/'
img_size = 128
backend_args = None
# == agvm_mm.datasets.SHAPES_SEG_METAINFO
metainfo = dict(
    classes=('circle', 'ellipse', 'triangle', 'square', 'hexagon', 'star',
             'sky', 'grass', 'wall'),
    palette=[(220, 20, 60), (0, 130, 200), (255, 180, 0), (60, 180, 75),
             (145, 30, 180), (240, 50, 230), (135, 206, 235), (34, 139, 34),
             (128, 128, 128)])

# deterministic: no random augmentation. `LoadImageFromFile` stays
# unscoped: it is mmcv's, registered in mmengine's root registry, and a
# scoped 'mmdet.LoadImageFromFile' fails while the default scope is mmdet.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='mmseg.PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmseg.Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.PackSegInputs')
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
        data_prefix=dict(
            img_path='train2017',
            seg_map_path='annotations/semantic_train2017'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=False,
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
        data_prefix=dict(
            img_path='val2017', seg_map_path='annotations/semantic_val2017'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
