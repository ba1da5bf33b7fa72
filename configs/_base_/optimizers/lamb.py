# LAMB baseline (TimmLAMB): betas (0.9, 0.999), weight decay 0.01 (BERT,
# timm); norms and biases without decay and trust ratio; global grad norm
# clipped to 1.0 (NVLAMB's). Every leaf sets its lr, 1e-4 x sqrt(B / 16).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='TimmLAMB', lr=None, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0, norm_type=2))
custom_hooks = []
