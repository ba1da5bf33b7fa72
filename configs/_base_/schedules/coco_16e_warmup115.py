# COCO, 16 epochs; exponential warm-up over 115 runner iterations: 23
# optimizer steps at 5 accumulated micro-batches (batch 10240). The warm-up
# scheduler counts runner iterations, AGVM's settings optimizer steps.
_base_ = './coco_16e_warmup500.py'
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=23 * 5),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]
