# Mask R-CNN R50-FPN, COCO instance segmentation; SGD + AGVM.
# Global batch 512 = 128 GPUs x 4 images per GPU.
# lr 0.32: authors' config (= 0.16 x sqrt(512 / 128)).
# SGD momentum 0.9, weight decay 1e-4.
# Exponential warm-up from 0.001 over 460 optimizer steps;
# 16 epochs, lr x 0.1 at epochs 12 and 14.
# AGVM from optimizer step 560, statistics every 10 steps; grad clip
# max_norm 1.0 only on optimizer steps [360, 560).
# Run: tools/dist_train.sh configs/mask_rcnn/mask-rcnn_r50_fpn_agvm_128xb4-16e_coco-b512.py 128
# Rules for values the paper does not give: configs/README.md.
_base_ = './mask-rcnn_r50_fpn_agvm_8xb4-16e_coco-b32.py'

param_scheduler = [
    dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False, begin=0,
         end=460),
    dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
         milestones=[12, 14], gamma=0.1)
]

optim_wrapper = dict(
    optimizer=dict(lr=0.32),
    agvm=dict(
        interval=10,
        start_iter=560,  # optimizer steps (= runner iterations / accumulative_counts)
        stop_iter=None,
        momentum=0.97,
        clamp=(0.5, 10.0),
        anchor='backbone',
        modules=None,
        clip_grad_window=(360, 560)))
auto_scale_lr = dict(enable=False, base_batch_size=512)
