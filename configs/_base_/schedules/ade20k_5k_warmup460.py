# ADE20K, 5000 iterations, poly decay after an exponential warm-up over 460
# iterations; validation and checkpoints every 500.
_base_ = './ade20k_80k_warmup500.py'
train_cfg = dict(max_iters=5000, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=500))
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=460),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=460, end=5000,
         by_epoch=False)
]
