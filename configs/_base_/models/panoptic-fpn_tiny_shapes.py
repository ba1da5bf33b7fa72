# Panoptic FPN of the shapes configs: the model of
# ./panoptic-fpn_r50_fpn.py made tiny (./shapes_tiny.py).
_base_ = ['./panoptic-fpn_r50_fpn.py', './shapes_tiny.py']
model = _base_.tiny_panoptic_fpn
