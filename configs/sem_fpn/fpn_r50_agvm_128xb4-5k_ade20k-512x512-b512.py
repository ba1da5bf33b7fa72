# Semantic FPN R50, ADE20K semantic segmentation; SGD + AGVM.
# Global batch 512 = 128 GPUs x 4 images per GPU.
# lr 0.08 * (512 / 128) ** 0.5: rule: 0.01 x 128 / 16 = 0.08 at 128, square-root scaling above.
# Warm-up 460 optimizer steps; AGVM from step 560, gradients clipped only on
# steps [360, 560) (AGVMHook: the warm-up's end + 100 and +- 100).
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_agvm_128xb4-5k_ade20k-512x512-b512.py 128
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/fpn_r50_ade20k.py',
    '../_base_/schedules/ade20k_5k_warmup460.py',
    '../_base_/optimizers/agvm-sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.08 * (512 / 128) ** 0.5))
auto_scale_lr = dict(base_batch_size=512)
