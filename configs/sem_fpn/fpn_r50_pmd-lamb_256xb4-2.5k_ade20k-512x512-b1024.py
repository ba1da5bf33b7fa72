# Semantic FPN R50, ADE20K semantic segmentation; baseline: PMD-LAMB (PMDLAMB).
# Global batch 1024 = 256 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# fpn_r50_agvm_256xb4-2.5k_ade20k-512x512-b1024.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_pmd-lamb_256xb4-2.5k_ade20k-512x512-b1024.py 256
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/fpn_r50_ade20k.py',
    '../_base_/schedules/ade20k_2.5k_warmup230.py',
    '../_base_/optimizers/pmd-lamb.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(
    # decay_period: optimizer steps in one epoch, ceil(20210 / 1024)
    optimizer=dict(lr=1e-4 * (1024 / 16) ** 0.5, decay_period=20))
auto_scale_lr = dict(base_batch_size=1024)
