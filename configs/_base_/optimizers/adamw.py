# AdamW baseline (R50): betas (0.9, 0.999), weight decay 0.1 (mmdet's
# searched value for R50), none on norms and biases, no clipping. Every
# leaf sets its lr, 1e-4 x sqrt(B / 16) (configs/README.md, rule 9).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=None, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
