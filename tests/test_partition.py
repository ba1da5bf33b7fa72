"""Default module partition of real mmdet / mmseg models (docs/algorithm.md §1)."""
import pytest
import torch
from mmengine.hub import get_config
from mmengine.registry import MODELS, init_default_scope

from agvm_mm import AGVMOptimWrapper, AGVMOptimWrapperConstructor
from agvm_mm.partition import partition_modules

CASES = {
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py':
    ['backbone', 'neck', 'bbox_head'],
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py':
    ['backbone', 'neck', 'rpn_head', 'roi_head'],
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py':
    ['backbone', 'neck', 'rpn_head', 'roi_head.bbox_head',
     'roi_head.mask_head'],
    'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py': [
        'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head',
        'roi_head.mask_head', 'semantic_head'
    ],
    'mmseg::_base_/models/fpn_r50.py':
    ['backbone', 'neck', 'decode_head'],
}


def build(path):
    cfg = get_config(path)
    init_default_scope('mmseg' if path.startswith('mmseg') else 'mmdet')
    cfg.model.backbone.depth = 18  # small and fast, names are the same
    if 'mmdet' in path:
        cfg.model.neck.in_channels = [64, 128, 256, 512]
    else:
        cfg.model.neck.in_channels = [64, 128, 256, 512]
        cfg.model.pop('data_preprocessor', None)
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module', params=list(CASES))
def model_case(request):
    return build(request.param), CASES[request.param]


def test_default_partition_of_stock_models(model_case):
    model, expected = model_case
    parts = partition_modules(model)
    assert list(parts) == expected
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assigned = [id(p) for ps in parts.values() for p in ps]
    assert sorted(assigned) == sorted(trainable)  # each exactly once
    # mmdet ResNet's frozen stem (frozen_stages=1) is skipped
    frozen = [p for p in model.backbone.parameters() if not p.requires_grad]
    assert not {id(p) for p in frozen} & set(assigned)
    assert bool(frozen) == (type(model).__module__.startswith('mmdet'))


def test_prefix_override_and_leftovers():
    model = build('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    parts = partition_modules(model, ['backbone.layer4', 'backbone', 'roi_head'])
    # longest prefix wins; unlisted top-level children form their own module
    assert list(parts) == ['backbone.layer4', 'backbone', 'roi_head', 'neck',
                           'rpn_head']
    assert all(p in set(model.backbone.layer4.parameters())
               for p in parts['backbone.layer4'])
    with pytest.raises(ValueError, match='agvm.modules'):
        partition_modules(model, ['backbone', 'bbox_head'])


@pytest.mark.parametrize('paramwise', [None, dict(norm_decay_mult=0.)])
def test_constructor_groups_by_module(paramwise):
    model = build('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    constructor = AGVMOptimWrapperConstructor(
        dict(type='AGVMOptimWrapper', accumulative_counts=2,
             optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                            weight_decay=1e-4),
             agvm=dict(lr_mult=dict(rpn_head=2.0))), paramwise)
    wrapper = constructor(model)
    assert isinstance(wrapper, AGVMOptimWrapper)
    assert wrapper.agvm_modules == ['backbone', 'neck', 'rpn_head',
                                    'roi_head']
    groups = wrapper.optimizer.param_groups
    parts = partition_modules(model)
    for group in groups:
        module = group['agvm_module']
        assert all(any(p is q for q in parts[module]) for p in group['params'])
        assert group['lr'] == pytest.approx(0.04 if module == 'rpn_head'
                                            else 0.02)
    if paramwise is None:
        assert [g['agvm_module'] for g in groups] == wrapper.agvm_modules
    else:
        assert len(groups) == len(
            [p for p in model.parameters() if p.requires_grad])
        norm = [g for g in groups if g['params'][0].dim() == 1]
        assert any(g['weight_decay'] == 0 for g in norm)
    with pytest.raises(ValueError, match='lr_mult'):
        AGVMOptimWrapperConstructor(
            dict(type='AGVMOptimWrapper', accumulative_counts=2,
                 optimizer=dict(type='SGD', lr=0.02),
                 agvm=dict(lr_mult=dict(mask_head=2.0))))(model)
    assert torch.is_tensor(groups[0]['params'][0])
