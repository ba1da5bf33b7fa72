# ADE20K, 2500 iterations, poly decay after an exponential warm-up over 230
# iterations; validation and checkpoints every 250.
_base_ = './ade20k_80k_warmup500.py'
train_cfg = dict(max_iters=2500, val_interval=250)
default_hooks = dict(checkpoint=dict(interval=250))
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=230),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=230, end=2500,
         by_epoch=False)
]
