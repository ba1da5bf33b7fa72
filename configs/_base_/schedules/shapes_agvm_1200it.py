# The tiny shapes configs' training: global batch 16 = 1 process x 8 images
# x 2 micro-batches (accumulative_counts=2 gives AGVM its two gradient
# estimates; on 2 processes accumulative_counts=1 keeps the batch at 16),
# 1200 runner iterations, SGD lr 0.04 with AGVM from the warm-up's end,
# linear warm-up over 100 iterations, lr x 0.1 at 75 % and 90 %, seed 0.
# agvm_mm: AGVM's types; agvm_mm.datasets: the Shapes* dataset types (and
# the panopticapi stand-in) of every config that takes this schedule.
custom_imports = dict(imports=['agvm_mm', 'agvm_mm.datasets'],
                      allow_failed_imports=False)

max_iters = 1200  # micro-batches; 600 optimizer steps
warmup_iters = 100
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# what the AGVM wrapper and the SGD twins' wrapper (sgd_twin below) share
__training = dict(
    optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=2,
    clip_grad=dict(max_norm=10.0))
optim_wrapper = dict(
    __training,
    type='AGVMOptimWrapper',
    agvm=dict(interval=10, start_iter=None))  # None: AGVMHook starts it
                                              # when the warm-up ends
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

custom_hooks = [dict(type='AGVMHook')]
# the plain-SGD twins (../../shapes/*_sgd.py) take `optim_wrapper =
# _base_.sgd_twin`: mmengine's OptimWrapper, same optimizer, batch, clipping
sgd_twin = dict(__training, _delete_=True, type='OptimWrapper')
randomness = dict(seed=0)
