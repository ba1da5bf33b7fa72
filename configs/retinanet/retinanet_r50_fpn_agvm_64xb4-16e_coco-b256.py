# RetinaNet R50-FPN, COCO detection; SGD + AGVM.
# Global batch 256 = 64 GPUs x 4 images per GPU.
# lr 0.08 * (256 / 128) ** 0.5: rule: 0.01 x 128 / 16 = 0.08 at 128, square-root scaling above.
# SGD momentum 0.9, weight decay 1e-4.
# Exponential warm-up from 0.001 over 920 optimizer steps;
# 16 epochs, lr x 0.1 at epochs 12 and 14.
# AGVM from optimizer step 1020, statistics every 10 steps; grad clip
# max_norm 1.0 only on optimizer steps [820, 1020).
# Run: tools/dist_train.sh configs/retinanet/retinanet_r50_fpn_agvm_64xb4-16e_coco-b256.py 64
# Rules for values the paper does not give: configs/README.md.
_base_ = './retinanet_r50_fpn_agvm_8xb4-16e_coco-b32.py'

param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=920),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]

optim_wrapper = dict(
    optimizer=dict(lr=0.08 * (256 / 128) ** 0.5),
    agvm=dict(
        interval=10,
        start_iter=1020,  # optimizer steps (= runner iterations / accumulative_counts)
        stop_iter=None,
        momentum=0.97,
        clamp=(0.5, 10.0),
        anchor='backbone',
        modules=None,
        clip_grad_window=(820, 1020)))
auto_scale_lr = dict(enable=False, base_batch_size=256)
