# The AGVM authors' schedule shape (their Faster / Mask R-CNN recipes at
# batch 256/512) as fractions of a shapes run: 13 epochs of 4000 images at
# batch 16 (8 x 2), exponential warm-up over 12.5 % of the run, AGVM from
# 2.7 % of the run after the warm-up's end (their 100 of ~3.7k steps),
# gradient clipping (max_norm 1.0) only within the same distance either
# side of the warm-up's end, lr x0.1 at 75 % and 87.5 % (their epochs 12
# and 14 of 16). tools/reproduce.py rescales it to any batch. With the
# detection runtime: checkpoints every 1000 iterations. The regime's
# backbone is a variable here (`model` belongs to the model bases): a
# config takes it with `model = dict(backbone=_base_.pretrained_backbone)`.
_base_ = ['./shapes_agvm_1200it.py', '../shapes_det_runtime.py']

max_iters = 6500  # micro-batches; 3250 optimizer steps
warmup_iters = 812  # 12.5 %
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[4875, 5688], gamma=0.1)
]
# offsets in optimizer steps from the warm-up's end (step 406): 88 = 2.7 %
custom_hooks = [dict(type='AGVMHook', start_offset=88, clip_window=(88, 88))]
default_hooks = dict(checkpoint=dict(interval=1000))

# tools/pretrain_backbone.py's checkpoint, stem and stage 1 frozen as the
# authors, BN statistics kept (../../shapes/retinanet_tiny_shapes_paper_agvm.py
# says why)
pretrained_backbone = dict(
    frozen_stages=1, norm_eval=True,
    init_cfg=dict(_delete_=True, type='Pretrained',
                  checkpoint='data/pretrained/resnet18_16ch_shapes.pth'))
