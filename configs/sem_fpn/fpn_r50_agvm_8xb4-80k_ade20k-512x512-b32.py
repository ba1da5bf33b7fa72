# Semantic FPN R50, ADE20K semantic segmentation; SGD + AGVM.
# Global batch 32 = 8 GPUs x 4 images per GPU.
# lr 0.02: linear rule 0.01 x 32 / 16 (stock recipe at 16 is 0.01).
# SGD momentum 0.9, weight decay 1e-4.
# Exponential warm-up from 0.001 over 500 optimizer steps;
# 80000 iterations (160k x 16 images of the stock recipe / 32), poly decay.
# AGVM from optimizer step 600, statistics every 10 steps; grad clip
# max_norm 1.0 only on optimizer steps [400, 600).
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_agvm_8xb4-80k_ade20k-512x512-b32.py 8
# Rules for values the paper does not give: configs/README.md.
# This file is the root of the family: the other batch sizes inherit it.
# mmseg's own sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py is these four bases
# plus the three lines below; it is rebuilt here from mmseg::_base_ files.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_160k.py'
]
custom_imports = dict(
    imports=['agvm_mm'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
# SyncBN with norm_eval=False is already mmseg's default for this model.
model = dict(
    data_preprocessor=data_preprocessor, decode_head=dict(num_classes=150))

train_dataloader = dict(batch_size=4)  # images per GPU

param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=500, end=80000,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000))

optim_wrapper = dict(
    _delete_=True,
    type='AGVMOptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0, norm_type=2),  # only inside agvm.clip_grad_window
    agvm=dict(
        interval=10,
        start_iter=600,  # optimizer steps (= runner iterations / accumulative_counts)
        stop_iter=None,
        momentum=0.97,
        clamp=(0.5, 10.0),
        anchor='backbone',
        modules=None,
        clip_grad_window=(400, 600)))
custom_hooks = [dict(type='AGVMHook')]  # logs Phi and s per module
auto_scale_lr = dict(enable=False, base_batch_size=32)
