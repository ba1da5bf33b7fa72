# Faster R-CNN of the shapes configs: the model of
# mmdet::_base_/models/faster-rcnn_r50_fpn.py made tiny (./shapes_tiny.py).
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', './shapes_tiny.py']
model = _base_.tiny_faster_rcnn
