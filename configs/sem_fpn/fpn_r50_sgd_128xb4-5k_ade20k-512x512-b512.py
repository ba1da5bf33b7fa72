# Semantic FPN R50, ADE20K semantic segmentation; baseline: plain SGD (no AGVM).
# Global batch 512 = 128 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# fpn_r50_agvm_128xb4-5k_ade20k-512x512-b512.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_sgd_128xb4-5k_ade20k-512x512-b512.py 128
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/fpn_r50_ade20k.py',
    '../_base_/schedules/ade20k_5k_warmup460.py',
    '../_base_/optimizers/sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.08 * (512 / 128) ** 0.5))
auto_scale_lr = dict(base_batch_size=512)
