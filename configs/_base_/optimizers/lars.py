# LARS baseline (TimmLARS): momentum 0.9, weight decay 1e-4, trust_coeff
# 0.001; norms and biases without decay and trust ratio; no clipping. Every
# leaf sets the lr of the AGVM cell (configs/README.md, baselines).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='TimmLARS', lr=None, momentum=0.9, weight_decay=1e-4,
        trust_coeff=0.001),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
