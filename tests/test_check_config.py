"""tools/check_config.py on stock mmdet Faster R-CNN (SGD) and Mask R-CNN
(AdamW), a stock mmseg Semantic FPN (SyncBN) and one of our paper configs,
each switched to AGVM as a user would (ResNet-50 at 64 px, one image per
micro-batch, 2 optimizer steps); a frozen anchor fails with exit status 1;
the window arithmetic on configs."""
import os
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

import agvm_mm  # noqa: F401  registers ExpWarmupLR for the window
from tests.conftest import ROOT
from tools.check import agvm_window, detect_task

TOOL = os.path.join(ROOT, 'tools', 'check_config.py')
SWITCH = ("custom_imports = dict(imports=['agvm_mm'], "
          'allow_failed_imports=False)\n'
          "custom_hooks = [dict(type='AGVMHook')]\n")
STOCK = {
    'faster_rcnn': ("_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_"
                    "coco.py'\n" + SWITCH +
                    "optim_wrapper = dict(type='AGVMOptimWrapper')\n"),
    'mask_rcnn_adamw': (
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n" + SWITCH
        + "optim_wrapper = dict(type='AGVMOptimWrapper', optimizer=dict("
        "_delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05))\n"),
    'sem_fpn': ("_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512."
                "py'\n" + SWITCH +
                "optim_wrapper = dict(type='AGVMOptimWrapper')\n"),
}
PAPER = os.path.join(
    ROOT, 'configs/retinanet/retinanet_r18_fpn_agvm_256xb8x5-16e_coco-'
    'b10240.py')
MMDET_FROZEN = 'backbone .* M  \\(\\d+ tensors: conv1, bn1, layer1\\)'


def check(config, cwd, *options):
    """Run the tool as a user would; return (exit status, output)."""
    args = [sys.executable, TOOL, str(config), '--steps', '2',
            '--data-root', str(cwd / 'shapes_check')]
    if options:
        args += ['--cfg-options', *options]
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT,
                                   OMP_NUM_THREADS='1'))
    return proc.returncode, proc.stdout + proc.stderr


def table(out):
    """Module -> [(Phi, s)] per check step, from the report."""
    lines = out[out.index('Phi / s per module'):].splitlines()[1:]
    names = lines[0].split()[1:]
    rows = {n: [] for n in names}
    for line in lines[1:]:
        if not re.match(r'^  \d', line):
            break
        values = re.findall(r'([\d.]+) / ([\d.]+)', line)
        for name, (phi, s) in zip(names, values):
            rows[name].append((float(phi), float(s)))
    return rows


@pytest.fixture(scope='module')
def cwd(tmp_path_factory):
    return tmp_path_factory.mktemp('check')


@pytest.mark.parametrize('name,modules,rule,start,frozen', [
    ('faster_rcnn', ['backbone', 'neck', 'rpn_head', 'roi_head'], 'sgd',
     'optimizer step 500 = runner iteration 500 (AGVMHook: LinearLR ends at '
     'runner iteration 500', MMDET_FROZEN),
    ('mask_rcnn_adamw', ['backbone', 'neck', 'rpn_head', 'roi_head.bbox_head',
                         'roi_head.mask_head'], 'adam',
     'optimizer step 500 = runner iteration 500', MMDET_FROZEN),
    # mmseg's PolyLR spans all 160k iterations: no warm-up
    ('sem_fpn', ['backbone', 'neck', 'decode_head'], 'sgd',
     'optimizer step 0 = runner iteration 0 (AGVMHook: no warm-up '
     'scheduler', 'Frozen parameters: none'),
], ids=list(STOCK))
def test_stock_configs(cwd, name, modules, rule, start, frozen):
    config = cwd / f'{name}.py'
    config.write_text(STOCK[name])
    status, out = check(config, cwd)
    assert status == 0, out[-4000:]
    assert 'Result: OK' in out
    listed = re.findall(r'^  (\S+) +[\d.]+ M  \(\d+ tensors\)$', out, re.M)
    assert listed == modules, out
    assert f"Variance rule: '{rule}'" in out
    assert start in out
    assert re.search(frozen, out), out
    phi_s = table(out)
    assert list(phi_s) == modules
    for module, steps in phi_s.items():
        assert len(steps) == 2
        assert all(0.0 <= phi <= 2.0 for phi, _ in steps)
    assert all(s == 1.0 for _, s in phi_s['backbone'])  # the anchor
    if name == 'sem_fpn':
        assert 'SyncBN runs as BN' in out
    # each module's critical batch against the recipe's batch (mmdet's
    # auto_scale_lr.base_batch_size 16, mmseg's configs have none)
    assert 'Critical batch per module' in out
    critical = re.findall(r'^  (\S+) +(not yet|noise-dominated \(>> batch\)'
                          r'|[\d.e+-]+)(?: +global batch 16 is [\d.,]+x it)?$',
                          out, re.M)
    assert [m for m, _ in critical] == modules, out
    if name == 'sem_fpn':
        assert 'give --global-batch B' in out
    else:
        assert 'global batch 16 (auto_scale_lr.base_batch_size) is' in out


def test_paper_config_window_and_frozen_anchor(cwd):
    status, out = check(PAPER, cwd)
    assert status == 0, out[-4000:]
    # 5 accumulated micro-batches: steps and runner iterations differ
    assert ('start     optimizer step 46 = runner iteration 230 '
            '(optim_wrapper.agvm.start_iter)') in out
    assert 'every 5 optimizer steps (= 25 runner iterations)' in out
    assert ('clip      optimizer steps [0, 46) = runner iterations [0, 230)'
            ' (optim_wrapper.agvm.clip_grad_window, max_norm 1.0)') in out
    assert 'accumulative_counts=5: the real run needs >= 2 processes' in out
    assert list(table(out)) == ['backbone', 'neck', 'bbox_head']

    status, out = check(PAPER, cwd, 'optim_wrapper.agvm.anchor='
                        'backbone.layer1', 'optim_wrapper.agvm.modules=['
                        'backbone.layer1,backbone,neck,bbox_head]')
    assert status == 1
    assert "optim_wrapper.agvm.anchor='backbone.layer1' is frozen" in out
    assert re.search(r'backbone.layer1 .* M  \(12 tensors', out)  # frozen
    assert 'Result: 1 problem(s)' in out


def _cfg(**kwargs):
    base = dict(
        optim_wrapper=dict(type='AGVMOptimWrapper', accumulative_counts=4,
                           agvm=dict(interval=10)),
        param_scheduler=[
            dict(type='LinearLR', by_epoch=False, begin=0, end=100),
            dict(type='MultiStepLR', by_epoch=True, begin=0, end=12,
                 milestones=[8, 11])
        ],
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=12),
        custom_hooks=[dict(type='AGVMHook')],
        model=dict(type='RetinaNet'))
    base.update(kwargs)
    return Config(base)


def test_window_arithmetic():
    window, problems = agvm_window(_cfg(), iters_per_epoch=50)
    assert (window.start, window.interval, window.stop) == (25, 10, None)
    assert window.total_steps == 12 * 50 // 4 and not problems
    # the hook's start_offset, and its clip window around the warm-up
    cfg = _cfg(optim_wrapper=dict(type='AGVMOptimWrapper',
                                  accumulative_counts=4,
                                  clip_grad=dict(max_norm=1.0)),
               custom_hooks=[dict(type='AGVMHook', start_offset=5,
                                  clip_window=(10, 5))])
    window, problems = agvm_window(cfg)
    assert (window.start, window.clip) == (30, (15, 30)) and not problems
    # an epoch-based warm-up needs the epoch length
    cfg = _cfg(param_scheduler=[dict(type='LinearLR', begin=0, end=1)])
    window, _ = agvm_window(cfg)
    assert window.start is None and 'give --iters-per-epoch' in \
        window.start_source
    assert agvm_window(cfg, iters_per_epoch=40)[0].start == 10
    # no AGVMHook: AGVM would start inside the warm-up
    _, problems = agvm_window(_cfg(custom_hooks=[]))
    assert 'optim_wrapper.agvm.start_iter' in problems[0]
    # a start after the end of training
    cfg = _cfg(optim_wrapper=dict(type='AGVMOptimWrapper',
                                  accumulative_counts=4,
                                  agvm=dict(start_iter=200)),
               train_cfg=dict(type='IterBasedTrainLoop', max_iters=400))
    _, problems = agvm_window(cfg)
    assert 'only 100 steps; it never runs' in problems[0]
    # an epoch-based scheduler to the end of training is no warm-up, even
    # without the epoch length (DETR-type configs); one that ends earlier is
    spans = [dict(type='MultiStepLR', by_epoch=True, begin=0, end=12,
                  milestones=[11])]
    window, _ = agvm_window(_cfg(param_scheduler=spans))
    assert window.start == 0 and window.start_source == (
        'AGVMHook: no warm-up scheduler, so step 0')
    spans[0]['end'] = 11
    window, _ = agvm_window(_cfg(param_scheduler=spans))
    assert window.start is None and 'ends at epoch 11' in window.start_source


def test_task_detection():
    assert detect_task(Config(dict(default_scope='mmseg', model={}))) == \
        'semantic'
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='mmdet.LoadAnnotations', with_mask=True)]
    cfg = Config(dict(model={}, train_dataloader=dict(dataset=dict(
        type='RepeatDataset', dataset=dict(pipeline=pipeline)))))
    assert detect_task(cfg) == 'instance'
    assert detect_task(Config(dict(model=dict(semantic_head={})))) == \
        'panoptic'
    assert detect_task(Config(dict(model={}))) == 'detection'
