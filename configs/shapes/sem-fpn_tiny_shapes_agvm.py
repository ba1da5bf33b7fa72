# Semantic FPN (mmseg) with a tiny random-init ResNet-18 (V1c stem) on the
# built-in shapes data (9 classes: 6 things + 3 stuff, every pixel labeled),
# trained with AGVM. Global batch 16 = 1 process x 8 images x 2 micro-batches
# (accumulative_counts=2 gives AGVM its two gradient estimates). With 2
# processes: tools/dist_train.sh CONFIG 2 --cfg-options
# optim_wrapper.accumulative_counts=1 keeps the batch at 16.
# default_scope is 'mmseg' (from mmseg's default_runtime).
# AGVM modules (default partition): backbone, neck, decode_head.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    '../_base_/datasets/shapes_semantic.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/shapes_agvm_1200it.py',
]

norm_cfg = dict(type='BN', requires_grad=True)  # mmseg's base: SyncBN
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,  # the base loads open-mmlab://resnet50_v1c
    backbone=dict(
        depth=18,
        stem_channels=16,
        base_channels=16,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),  # random init: nothing is downloaded
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    decode_head=dict(
        in_channels=[64, 64, 64, 64],
        channels=32,
        num_classes=9,
        norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))

train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=8)
test_dataloader = val_dataloader

# mmseg's default_runtime has no default_hooks (its schedules do)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400,
                    max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False, window_size=20)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends,
                  name='visualizer')
