# COCO, 12 epochs with mmdet's 1x steps (lr x 0.1 at epochs 8 and 11);
# exponential warm-up over 153 runner iterations (batch 1536).
_base_ = './coco_16e_warmup500.py'
train_cfg = dict(max_epochs=12)
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=153),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
