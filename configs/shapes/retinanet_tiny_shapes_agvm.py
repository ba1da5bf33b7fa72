# RetinaNet with a tiny random-init ResNet-18 on the built-in shapes data,
# trained with AGVM. Batch (16 = 8 images x 2 micro-batches), schedule and
# the 2-process launch: ../_base_/schedules/shapes_agvm_1200it.py.
# AGVM modules (default partition): backbone, neck, bbox_head.
_base_ = [
    '../_base_/models/retinanet_tiny_shapes.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/shapes_det_runtime.py',
    '../_base_/schedules/shapes_agvm_1200it.py',
]

train_dataloader = dict(batch_size=8)
val_dataloader = test_dataloader = dict(batch_size=8)

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
