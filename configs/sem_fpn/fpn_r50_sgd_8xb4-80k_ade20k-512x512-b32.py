# Semantic FPN R50, ADE20K semantic segmentation; baseline: plain SGD (no AGVM).
# Same batch (8 GPUs x 4 = 32), data, warm-up and schedule as
# fpn_r50_agvm_8xb4-80k_ade20k-512x512-b32.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/sem_fpn/fpn_r50_sgd_8xb4-80k_ade20k-512x512-b32.py 8
_base_ = './fpn_r50_agvm_8xb4-80k_ade20k-512x512-b32.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
