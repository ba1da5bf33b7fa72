# Semantic FPN R50, ADE20K semantic segmentation; baseline: LARS (TimmLARS).
# Same batch (128 GPUs x 4 = 512), data, warm-up and schedule as
# fpn_r50_agvm_128xb4-5k_ade20k-512x512-b512.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_lars_128xb4-5k_ade20k-512x512-b512.py 128
_base_ = './fpn_r50_agvm_128xb4-5k_ade20k-512x512-b512.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='TimmLARS', lr=0.08 * (512 / 128) ** 0.5, momentum=0.9,
        weight_decay=1e-4, trust_coeff=0.001),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
