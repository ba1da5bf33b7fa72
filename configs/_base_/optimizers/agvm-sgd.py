# SGD + AGVM, the paper's setting: SGD momentum 0.9, weight decay 1e-4;
# statistics every 10 optimizer steps, EMA momentum 0.97, clamp (0.5, 10),
# the backbone as the anchor. AGVMHook starts AGVM 100 optimizer steps after
# the warm-up's end and clips gradients (max_norm 1.0) only on the 100 steps
# either side of it: the authors' start 1020 and window [820, 1020) at
# warm-up 920 (configs/README.md, rule 3); explicit agvm.start_iter /
# clip_grad_window win. Every leaf sets the lr of its batch.
optim_wrapper = dict(
    type='AGVMOptimWrapper',
    optimizer=dict(type='SGD', lr=None, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0, norm_type=2),  # only inside the window
    agvm=dict(
        interval=10,
        start_iter=None,  # optimizer steps; None: set by AGVMHook
        stop_iter=None,
        momentum=0.97,
        clamp=(0.5, 10.0),
        anchor='backbone',
        modules=None,
        clip_grad_window=None))  # optimizer steps; None: set by AGVMHook
custom_hooks = [
    dict(type='AGVMHook', start_offset=100, clip_window=(100, 100))
]
