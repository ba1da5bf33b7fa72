# RetinaNet with a tiny random-init ResNet-18 on the built-in shapes data,
# trained with AGVM. Global batch 16 = 1 process x 8 images x 2 micro-batches
# (accumulative_counts=2 gives AGVM its two gradient estimates). With 2
# processes: tools/dist_train.sh CONFIG 2 --cfg-options
# optim_wrapper.accumulative_counts=1 keeps the batch at 16.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
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

# 2000 iterations at lr 0.02, lr steps at 1500 / 1800, checkpoints every 500
max_iters = 2000  # micro-batches; 1000 optimizer steps
warmup_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[1500, 1800], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=500))
