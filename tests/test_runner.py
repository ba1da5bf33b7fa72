"""A real mmengine Runner trains a real mmdet RetinaNet (tiny random-init
ResNet-18, stock mmdet config as base) with AGVMOptimWrapper through
tools/train.py and tools/dist_train.sh; logs and resume are checked."""
import glob
import json
import math
import os

import pytest

from tests.conftest import ROOT, assert_same_training_state, run_tool
from tests.toy import free_port

CONFIG = os.path.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_agvm.py')
SMALL = [
    'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
    'test_dataloader.batch_size=2', 'model.test_cfg.score_thr=0.0',
    'default_hooks.logger.interval=2', 'log_processor.window_size=2'
]


def train(cwd, work_dir, iters, *options, nproc=1, resume=None):
    opts = SMALL + [f'train_cfg.max_iters={iters}',
                    f'train_cfg.val_interval={iters}'] + list(options)
    if nproc == 1:
        args = [os.path.join(ROOT, 'tools/train.py'), CONFIG]
    else:
        args = [os.path.join(ROOT, 'tools/dist_train.sh'), CONFIG, str(nproc)]
    args += ['--work-dir', str(work_dir)]
    if resume:
        args += ['--resume', str(resume)]
    return run_tool(args + ['--cfg-options'] + opts, cwd)


def scalars(work_dir):
    [path] = glob.glob(f'{work_dir}/*/vis_data/scalars.json')
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize('nproc,counts', [(1, 2), (2, 1)])
def test_runner_trains_retinanet_with_agvm(shapes_cwd, tmp_path, nproc,
                                           counts):
    env_port = str(free_port())
    os.environ['PORT'] = env_port
    out = train(shapes_cwd, tmp_path, 8, f'optim_wrapper.accumulative_counts='
                f'{counts}', 'optim_wrapper.agvm.start_iter=0',
                'optim_wrapper.agvm.interval=1', nproc=nproc)
    assert 'agvm_phi/bbox_head' in out  # the logger printed them
    records = scalars(tmp_path)
    train_logs = [r for r in records if 'loss' in r]
    assert train_logs
    for r in train_logs:
        for module in ('backbone', 'neck', 'bbox_head'):
            assert 0.0 <= r[f'agvm_phi/{module}'] <= 2.0
            assert 0.5**0.5 <= r[f'agvm_scale/{module}'] <= 10**0.5
            # the critical batch in images, or NaN (none yet / noise)
            bnoise = r[f'agvm_bnoise/{module}']
            assert math.isnan(bnoise) or bnoise > 0
        # the whole model's, what plans the batch (test_noise_scale has
        # its value)
        assert math.isnan(r['agvm_bnoise/model']) or \
            r['agvm_bnoise/model'] > 0
        assert r['agvm_scale/backbone'] == 1.0
    assert any(r['agvm_scale/bbox_head'] != 1.0 for r in train_logs)
    final = records[-1]
    assert 0.0 <= final['coco/bbox_mAP'] <= 1.0  # CocoMetric ran
    assert ('Distributed training: True' in out) == (nproc > 1)


@pytest.mark.parametrize('nproc,counts,steps', [(1, 2, 2), (2, 1, 4)])
def test_resume_is_exact(shapes_cwd, tmp_path, nproc, counts, steps):
    """Save at runner iteration 3 and resume: the same parameters, optimizer
    state and factors as an uninterrupted run, bit for bit. AGVM takes
    statistics every 3 optimizer steps, so iteration 3 is mid-interval; with
    1 process and 2 micro-batches per step it is also mid-accumulation (the
    gathered gradients travel in the checkpoint). Also shows that torch >=
    2.6's weights_only loading accepts mmengine's checkpoints once agvm_mm
    is imported."""
    os.environ['PORT'] = str(free_port())
    opts = ['optim_wrapper.agvm.start_iter=0', 'optim_wrapper.agvm.interval=3',
            f'optim_wrapper.accumulative_counts={counts}',
            'default_hooks.checkpoint.interval=3',
            'default_hooks.checkpoint.max_keep_ckpts=5']
    full, resumed = tmp_path / 'full', tmp_path / 'resumed'
    train(shapes_cwd, full, 10, *opts, nproc=nproc)
    out = train(shapes_cwd, resumed, 10, *opts, nproc=nproc,
                resume=full / 'iter_3.pth')
    if nproc == 1:  # the accurate line replaces mmengine's warning
        assert 'their gradients were restored from the checkpoint' in out
        assert 'the gradient of some iterations is lost' not in out
    a = assert_same_training_state(full / 'iter_10.pth',
                                   resumed / 'iter_10.pth')
    assert a['meta']['iter'] == 10
    assert a['optimizer']['agvm']['noise']  # the critical batch's averages
    assert a['optimizer']['agvm']['steps'] == steps  # 0, 3 (, 6, 9)


def test_hook_scalars_reach_tensorboard_and_start_follows_warmup(
        shapes_cwd, tmp_path):
    """start_iter=None: AGVMHook starts AGVM where the warm-up scheduler
    ends; Phi and s reach both the local and the TensorBoard backend."""
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    config = tmp_path / 'tb.py'
    config.write_text(
        f"_base_ = '{CONFIG}'\n"
        "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), "
        "dict(type='TensorboardVisBackend')])\n")
    out = run_tool([
        os.path.join(ROOT, 'tools/train.py'), str(config), '--work-dir',
        str(tmp_path / 'wd'), '--cfg-options'
    ] + SMALL + [
        'train_cfg.max_iters=8', 'train_cfg.val_interval=100',
        'param_scheduler.0.end=4', 'optim_wrapper.agvm.interval=1'
    ], shapes_cwd)
    # warm-up ends at runner iteration 4 = optimizer step 2 (2 micro-batches)
    assert 'AGVM starts at optimizer step 2' in out
    records = [r for r in scalars(tmp_path / 'wd') if 'loss' in r]
    assert 'agvm_phi/neck' not in records[0]  # iteration 2: not started
    assert 'agvm_phi/neck' in records[-1]
    [events] = glob.glob(f'{tmp_path}/wd/*/vis_data/events.out.tfevents.*')
    acc = EventAccumulator(events)
    acc.Reload()
    tags = acc.Tags()['scalars']
    for module in ('backbone', 'neck', 'bbox_head'):
        assert f'agvm_phi/{module}' in tags
        assert f'agvm_scale/{module}' in tags
    assert acc.Scalars('agvm_scale/backbone')[-1].value == 1.0
