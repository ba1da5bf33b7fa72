# Panoptic FPN R50-FPN, COCO panoptic segmentation; SGD + AGVM.
# Global batch 1024 = 256 GPUs x 4 images per GPU.
# lr 0.16 * (1024 / 128) ** 0.5: rule: 0.02 x 128 / 16 = 0.16 at 128, square-root scaling above.
# Warm-up 230 optimizer steps; AGVM from step 330, gradients clipped only on
# steps [130, 330) (AGVMHook: the warm-up's end + 100 and +- 100).
# Run: tools/dist_train.sh configs/panoptic_fpn/panoptic-fpn_r50_fpn_agvm_256xb4-16e_coco-panoptic-b1024.py 256
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/panoptic-fpn_r50_fpn_coco-panoptic.py',
    '../_base_/schedules/coco_16e_warmup230.py',
    '../_base_/optimizers/agvm-sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.16 * (1024 / 128) ** 0.5))
auto_scale_lr = dict(base_batch_size=1024)
