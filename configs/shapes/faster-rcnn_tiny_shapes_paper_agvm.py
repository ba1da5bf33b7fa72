# Faster R-CNN on the shapes data in the AGVM authors' regime: the schedule
# shape of retinanet_tiny_shapes_paper_agvm.py (pretrained, frozen stem and
# stage 1, BN statistics kept; exponential warm-up over 12.5 % of the run,
# AGVM from 2.7 % after its end, clipping only around its end, lr steps at
# 75 % and 87.5 %), on this family's model and lr (0.04 at batch 16).
_base_ = './faster-rcnn_tiny_shapes_agvm.py'

model = dict(backbone=dict(
    frozen_stages=1, norm_eval=True,
    init_cfg=dict(_delete_=True, type='Pretrained',
                  checkpoint='data/pretrained/resnet18_16ch_shapes.pth')))

max_iters = 6500  # micro-batches; 3250 optimizer steps (13 epochs of 4000)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=812),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[4875, 5688], gamma=0.1)
]
custom_hooks = [dict(type='AGVMHook', start_offset=88, clip_window=(88, 88))]
default_hooks = dict(checkpoint=dict(interval=1000))
