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
]
custom_imports = dict(imports=['agvm_mm'], allow_failed_imports=False)

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

max_iters = 1200  # micro-batches; 600 optimizer steps
warmup_iters = 100
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='AGVMOptimWrapper',
    optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=2,
    clip_grad=dict(max_norm=10.0),
    agvm=dict(interval=10, start_iter=None))  # None: AGVMHook starts it
                                              # when the warm-up ends
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

custom_hooks = [dict(type='AGVMHook')]
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
randomness = dict(seed=0)
