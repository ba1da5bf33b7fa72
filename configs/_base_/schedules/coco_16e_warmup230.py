# COCO, 16 epochs; exponential warm-up over 230 runner iterations.
_base_ = './coco_16e_warmup500.py'
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=230),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]
