# Semantic FPN R50, ADE20K semantic segmentation; SGD + AGVM.
# Global batch 256 = 64 GPUs x 4 images per GPU.
# lr 0.08 * (256 / 128) ** 0.5: rule: 0.01 x 128 / 16 = 0.08 at 128, square-root scaling above.
# Warm-up 920 optimizer steps; AGVM from step 1020, gradients clipped only on
# steps [820, 1020) (AGVMHook: the warm-up's end + 100 and +- 100).
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_agvm_64xb4-10k_ade20k-512x512-b256.py 64
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/fpn_r50_ade20k.py',
    '../_base_/schedules/ade20k_10k_warmup920.py',
    '../_base_/optimizers/agvm-sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.08 * (256 / 128) ** 0.5))
auto_scale_lr = dict(base_batch_size=256)
