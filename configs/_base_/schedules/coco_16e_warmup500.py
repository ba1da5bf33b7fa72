# COCO, 16 epochs, lr x 0.1 at epochs 12 and 14 (the authors' configs);
# exponential warm-up from 0.001 (mmcv 1.x's warmup='exp', ExpWarmupLR)
# over 500 runner iterations, mmdet's stock length, used at batch 32. The
# other warm-ups (configs/README.md, rule 2) chain onto this file.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=16, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]
# the lr of every file is already the lr of its batch
auto_scale_lr = dict(enable=False, base_batch_size=32)
