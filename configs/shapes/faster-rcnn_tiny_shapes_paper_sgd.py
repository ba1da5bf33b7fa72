# The SGD twin of faster-rcnn_tiny_shapes_paper_agvm.py: AGVM only measures
# (agvm.modulate=False), so this is plain SGD with the same clip window.
_base_ = './faster-rcnn_tiny_shapes_paper_agvm.py'
optim_wrapper = dict(agvm=dict(modulate=False))
