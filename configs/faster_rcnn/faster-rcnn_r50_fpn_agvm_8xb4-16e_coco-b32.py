# Faster R-CNN R50-FPN, COCO detection; SGD + AGVM.
# Global batch 32 = 8 GPUs x 4 images per GPU.
# lr 0.04: linear rule 0.02 x 32 / 16 (mmdet 1x recipe).
# SGD momentum 0.9, weight decay 1e-4.
# Exponential warm-up from 0.001 over 500 optimizer steps;
# 16 epochs, lr x 0.1 at epochs 12 and 14.
# AGVM from optimizer step 600, statistics every 10 steps; grad clip
# max_norm 1.0 only on optimizer steps [400, 600).
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_agvm_8xb4-16e_coco-b32.py 8
# Rules for values the paper does not give: configs/README.md.
# This file is the root of the family: the other batch sizes inherit it.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(
    imports=['agvm_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # as the authors
        norm_eval=False))

train_dataloader = dict(batch_size=4)  # images per GPU

train_cfg = dict(max_epochs=16)
param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]

optim_wrapper = dict(
    _delete_=True,
    type='AGVMOptimWrapper',
    optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4),
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
