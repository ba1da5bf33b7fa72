# ADE20K, 10000 iterations, poly decay after an exponential warm-up over 920
# iterations; validation and checkpoints every 1000.
_base_ = './ade20k_80k_warmup500.py'
train_cfg = dict(max_iters=10000, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=920),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=920, end=10000,
         by_epoch=False)
]
