# Semantic FPN R50, ADE20K semantic segmentation; baseline: PMD-LAMB (PMDLAMB).
# Global batch 256 = 64 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# fpn_r50_agvm_64xb4-10k_ade20k-512x512-b256.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_pmd-lamb_64xb4-10k_ade20k-512x512-b256.py 64
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/fpn_r50_ade20k.py',
    '../_base_/schedules/ade20k_10k_warmup920.py',
    '../_base_/optimizers/pmd-lamb.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(
    # decay_period: optimizer steps in one epoch, ceil(20210 / 256)
    optimizer=dict(lr=1e-4 * (256 / 16) ** 0.5, decay_period=79))
auto_scale_lr = dict(base_batch_size=256)
