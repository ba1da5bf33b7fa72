# RetinaNet with a tiny random-init ResNet-18 on the built-in shapes data,
# trained with AGVM. Global batch 16 = 1 process x 8 images x 2 micro-batches
# (accumulative_counts=2 gives AGVM its two gradient estimates). With 2
# processes: tools/dist_train.sh CONFIG 2 --cfg-options
# optim_wrapper.accumulative_counts=1 keeps the batch at 16.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['agvm_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),  # random init: nothing is downloaded
    # FPN from stride 4 and 12 px base anchors: objects are 8-64 px
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64, start_level=0,
              add_extra_convs='on_output'),
    bbox_head=dict(
        num_classes=6,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        anchor_generator=dict(octave_base_scale=3,
                              strides=[4, 8, 16, 32, 64])),
    test_cfg=dict(max_per_img=50))

train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=8)
test_dataloader = val_dataloader

max_iters = 2000  # micro-batches; 1000 optimizer steps
warmup_iters = 200
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='AGVMOptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=2,
    clip_grad=dict(max_norm=10.0),
    agvm=dict(interval=10, start_iter=None))  # None: AGVMHook starts it
                                              # when the warm-up ends
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[1500, 1800], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

custom_hooks = [dict(type='AGVMHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500,
                    max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False, window_size=20)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
randomness = dict(seed=0)
