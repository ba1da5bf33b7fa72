# Semantic FPN R50, ADE20K semantic segmentation; baseline: plain SGD (no AGVM).
# Global batch 32 = 8 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# fpn_r50_agvm_8xb4-80k_ade20k-512x512-b32.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_sgd_8xb4-80k_ade20k-512x512-b32.py 8
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/fpn_r50_ade20k.py',
    '../_base_/schedules/ade20k_80k_warmup500.py',
    '../_base_/optimizers/sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.02))
auto_scale_lr = dict(base_batch_size=32)
