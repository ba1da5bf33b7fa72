"""The shapes configs of Faster R-CNN, Mask R-CNN, Panoptic FPN (mmdet) and
Semantic FPN (mmseg) train with AGVM through tools/train.py (1 process, 2
accumulated micro-batches) and tools/dist_train.sh (2 gloo processes, 1
micro-batch each), and their checkpoints evaluate through tools/test.py and
tools/dist_test.sh: AGVM logs Phi and s for exactly the default partition's
modules, and the test metrics are numbers."""
import ast
import glob
import json
import math
import os

import pytest

from tests.conftest import ROOT, run_tool
from tests.toy import free_port

ITERS = 4
# config, AGVM modules of the default partition, test metrics to check,
# options that make the model predict something even when barely trained
FAMILIES = {
    'faster-rcnn': (('backbone', 'neck', 'rpn_head', 'roi_head'),
                    ('coco/bbox_mAP', ),
                    ['model.test_cfg.rcnn.score_thr=0.0']),
    'mask-rcnn': (('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head',
                   'roi_head.mask_head'), ('coco/bbox_mAP', 'coco/segm_mAP'),
                  ['model.test_cfg.rcnn.score_thr=0.0']),
    'panoptic-fpn': (('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head',
                      'roi_head.mask_head', 'semantic_head'),
                     ('coco_panoptic/PQ', ),
                     ['model.test_cfg.rcnn.score_thr=0.0']),
    'sem-fpn': (('backbone', 'neck', 'decode_head'), ('mIoU', ), []),
}
SMALL = [
    'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
    'test_dataloader.batch_size=2', 'default_hooks.logger.interval=2',
    'log_processor.window_size=2', f'train_cfg.max_iters={ITERS}',
    f'train_cfg.val_interval={ITERS}', 'optim_wrapper.agvm.start_iter=0',
    'optim_wrapper.agvm.interval=1'
]


def config(family, optim='agvm'):
    return os.path.join(ROOT, 'configs', 'shapes',
                        f'{family}_tiny_shapes_{optim}.py')


def scalars(work_dir):
    [path] = glob.glob(f'{work_dir}/*/vis_data/scalars.json')
    with open(path) as f:
        return [json.loads(line) for line in f]


def check_agvm_logs(work_dir, modules):
    train_logs = [r for r in scalars(work_dir) if 'loss' in r]
    assert train_logs
    for r in train_logs:
        for kind in ('agvm_phi', 'agvm_scale'):
            logged = {
                k.split('/', 1)[1]
                for k in r if k.startswith(kind + '/')
            }
            assert logged == set(modules), (kind, logged)
            assert all(math.isfinite(r[f'{kind}/{m}']) for m in modules)
        assert r['agvm_scale/backbone'] == 1.0  # the anchor
        assert math.isfinite(r['loss'])


def printed_metrics(out, keys):
    """The dict tools/test.py prints last."""
    dicts = [ast.literal_eval(line) for line in out.splitlines()
             if line.startswith('{') and line.endswith('}')]
    assert dicts, out[-3000:]
    metrics = dicts[-1]
    for key in keys:
        assert isinstance(metrics[key], float), metrics
        assert math.isfinite(metrics[key]), metrics
    return metrics


@pytest.mark.timeout(600)
@pytest.mark.parametrize('family', list(FAMILIES))
def test_shapes_config_trains_and_tests(shapes_cwd, tmp_path, monkeypatch,
                                        family):
    modules, keys, test_opts = FAMILIES[family]
    cfg = config(family)
    tools = os.path.join(ROOT, 'tools')

    # 1 process, 2 accumulated micro-batches
    wd = tmp_path / 'single'
    out = run_tool([
        f'{tools}/train.py', cfg, '--work-dir',
        str(wd), '--cfg-options'
    ] + SMALL + test_opts + ['optim_wrapper.accumulative_counts=2'],
                   shapes_cwd)
    assert 'Distributed training: False' in out
    check_agvm_logs(wd, modules)
    out = run_tool([
        f'{tools}/test.py', cfg,
        str(wd / f'iter_{ITERS}.pth'), '--work-dir',
        str(tmp_path / 'single_test'), '--cfg-options',
        'test_dataloader.batch_size=2'
    ] + test_opts, shapes_cwd)
    printed_metrics(out, keys)

    # 2 gloo processes, 1 micro-batch each
    wd = tmp_path / 'dist'
    monkeypatch.setenv('PORT', str(free_port()))
    out = run_tool([
        f'{tools}/dist_train.sh', cfg, '2', '--work-dir',
        str(wd), '--cfg-options'
    ] + SMALL + test_opts + ['optim_wrapper.accumulative_counts=1'],
                   shapes_cwd)
    assert 'Distributed training: True' in out
    check_agvm_logs(wd, modules)
    monkeypatch.setenv('PORT', str(free_port()))
    out = run_tool([
        f'{tools}/dist_test.sh', cfg,
        str(wd / f'iter_{ITERS}.pth'), '2', '--work-dir',
        str(tmp_path / 'dist_test'), '--cfg-options',
        'test_dataloader.batch_size=2'
    ] + test_opts, shapes_cwd)
    printed_metrics(out, keys)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_sgd_twin_matches_agvm_config(family):
    """The _sgd twin differs only in its optim wrapper and custom hooks."""
    from mmengine.config import Config
    agvm, sgd = Config.fromfile(config(family)), Config.fromfile(
        config(family, 'sgd'))
    assert agvm.optim_wrapper.type == 'AGVMOptimWrapper'
    assert sgd.optim_wrapper.type == 'OptimWrapper'
    assert 'agvm' not in sgd.optim_wrapper
    assert sgd.optim_wrapper.optimizer == agvm.optim_wrapper.optimizer
    assert sgd.optim_wrapper.accumulative_counts == \
        agvm.optim_wrapper.accumulative_counts
    assert [h.type for h in agvm.custom_hooks] == ['AGVMHook']
    assert sgd.custom_hooks == []
    for key in ('model', 'train_dataloader', 'train_cfg', 'param_scheduler'):
        assert sgd[key] == agvm[key], key
    # nothing to download, nothing that needs a GPU
    text = agvm.pretty_text
    assert 'SyncBN' not in text and 'Pretrained' not in text
    assert agvm.model.get('pretrained') is None
    assert agvm.model.backbone.init_cfg is None
