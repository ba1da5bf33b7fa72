# The plain-SGD twin of retinanet_tiny_shapes_agvm.py: same model, data,
# batch and schedule, mmengine's OptimWrapper.
_base_ = './retinanet_tiny_shapes_agvm.py'
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                                    weight_decay=1e-4),
                     accumulative_counts=2, clip_grad=dict(max_norm=10.0))
custom_hooks = []
