# The SGD twin of retinanet_tiny_shapes_paper_agvm.py: the same wrapper with
# agvm.modulate=False, so it is plain SGD (bit for bit: AGVM only measures
# Phi) with the same clip window around the warm-up's end.
_base_ = './retinanet_tiny_shapes_paper_agvm.py'
optim_wrapper = dict(agvm=dict(modulate=False))
