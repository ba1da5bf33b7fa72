# Semantic FPN R50, ADE20K semantic segmentation; baseline: LAMB (TimmLAMB).
# Same batch (128 GPUs x 4 = 512), data, warm-up and schedule as
# fpn_r50_agvm_128xb4-5k_ade20k-512x512-b512.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_lamb_128xb4-5k_ade20k-512x512-b512.py 128
_base_ = './fpn_r50_agvm_128xb4-5k_ade20k-512x512-b512.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='TimmLAMB', lr=1e-4 * (512 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0, norm_type=2))
custom_hooks = []
