# The plain-SGD twin of panoptic-fpn_tiny_shapes_agvm.py: same model, data,
# batch and schedule, mmengine's OptimWrapper.
_base_ = './panoptic-fpn_tiny_shapes_agvm.py'
optim_wrapper = _base_.sgd_twin
custom_hooks = []
