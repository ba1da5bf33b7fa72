# ADE20K, 80k iterations (mmseg's 160k x 16 images at batch 32), stock poly
# decay (power 0.9, eta_min 1e-4) after an exponential warm-up from 0.001
# over 500 iterations; validation and checkpoints every 8k, as mmseg's
# schedule_160k.py every 16k. The other lengths chain onto this file.
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=500, end=80000,
         by_epoch=False)
]
# the lr of every file is already the lr of its batch
auto_scale_lr = dict(enable=False, base_batch_size=32)
