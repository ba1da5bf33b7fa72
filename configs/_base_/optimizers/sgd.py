# SGD, momentum 0.9, weight decay 1e-4 (every SGD cell, ADE20K too), no
# clipping. Every leaf sets the lr of its batch (configs/README.md, rule 1).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=None, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
