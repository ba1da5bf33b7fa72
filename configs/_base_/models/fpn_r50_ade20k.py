# Semantic FPN R50 on ADE20K: mmseg's sem_fpn/fpn_r50_4xb4-160k_ade20k-
# 512x512.py without its schedule and optimizer (those are ../schedules/ and
# ../optimizers/). SyncBN with norm_eval=False is already mmseg's default
# for this model. custom_imports registers AGVM, the baseline optimizers and
# ExpWarmupLR.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['agvm_mm'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor, decode_head=dict(num_classes=150))
