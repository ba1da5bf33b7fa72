# RetinaNet R18-FPN, COCO detection; SGD + AGVM.
# Global batch 10240 = 256 GPUs x 8 images per GPU x 5 accumulated micro-batches.
# lr 0.08 * (10240 / 128) ** 0.5: rule: 0.01 x 128 / 16 = 0.08 at 128, square-root scaling above.
# SGD momentum 0.9, weight decay 1e-4.
# Exponential warm-up from 0.001 over 23 optimizer steps;
# 16 epochs, lr x 0.1 at epochs 12 and 14.
# AGVM from optimizer step 46, statistics every 5 steps; grad clip
# max_norm 1.0 only on optimizer steps [0, 46).
# Run: tools/dist_train.sh configs/retinanet/retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py 256
# Rules for values the paper does not give: configs/README.md.
# Runner iterations = optimizer steps x accumulative_counts: the warm-up
# scheduler counts runner iterations, the agvm block optimizer steps.
_base_ = './retinanet_r50_fpn_agvm_8xb4-16e_coco-b32.py'

model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))  # ResNet-18, as the paper at 10k

train_dataloader = dict(batch_size=8)  # images per GPU

param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=115),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]

optim_wrapper = dict(
    optimizer=dict(lr=0.08 * (10240 / 128) ** 0.5),
    accumulative_counts=5,
    agvm=dict(
        interval=5,
        start_iter=46,  # optimizer steps (= runner iterations / accumulative_counts)
        stop_iter=None,
        momentum=0.97,
        clamp=(0.5, 10.0),
        anchor='backbone',
        modules=None,
        clip_grad_window=(0, 46)))
auto_scale_lr = dict(enable=False, base_batch_size=10240)
