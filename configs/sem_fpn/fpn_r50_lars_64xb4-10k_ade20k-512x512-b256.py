# Semantic FPN R50, ADE20K semantic segmentation; baseline: LARS (TimmLARS).
# Global batch 256 = 64 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# fpn_r50_agvm_64xb4-10k_ade20k-512x512-b256.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_lars_64xb4-10k_ade20k-512x512-b256.py 64
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/fpn_r50_ade20k.py',
    '../_base_/schedules/ade20k_10k_warmup920.py',
    '../_base_/optimizers/lars.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.08 * (256 / 128) ** 0.5))
auto_scale_lr = dict(base_batch_size=256)
