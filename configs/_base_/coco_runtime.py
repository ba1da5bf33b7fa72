# What the COCO paper configs share beside model and data: mmdet's default
# runtime; custom_imports registering AGVM, the baseline optimizers and
# ExpWarmupLR; and the authors' BatchNorm, SyncBN over all GPUs with
# statistics updated, which a model base takes as
# `model = dict(backbone=_base_.authors_bn)` (a variable: `model` may not
# stand in two sibling bases).
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['agvm_mm'], allow_failed_imports=False)
authors_bn = dict(norm_cfg=dict(type='SyncBN', requires_grad=True),
                  norm_eval=False)
