"""tools/analysis_tools/plan_batch.py: the planned lr and length at other
batches from B_noise measured on the config's own data, the leaf configs it
writes, and its messages on bad input."""
import csv
import json
import math
import os

import pytest
import torch
from mmengine.config import Config

from agvm_mm import large_batch_plan
from tests.conftest import ROOT, run_tool
from tools.analysis_tools.plan_batch import (PlanError, base_of,
                                             check_targets, leaf_config,
                                             split_batch)
from tools.harness.variance import whole_model_critical_batch

TOOL = os.path.join(ROOT, 'tools/analysis_tools/plan_batch.py')
CHECK = os.path.join(ROOT, 'tools/check_config.py')
SHAPES = os.path.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_agvm.py')
COCO = os.path.join(
    ROOT, 'configs/retinanet/retinanet_r50_fpn_agvm_128xb4-16e_coco-b512.py')


def _checkpoint(path) -> str:
    """The config's model at its init, saved as a checkpoint (the weights
    of a base run)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(SHAPES)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def test_tool_measures_plans_and_writes_configs_that_pass_the_check(
        shapes_cwd, tmp_path):
    """Base batch 4 (lr 0.02), measured from the start and at a checkpoint
    (4 steps each); batches 8 and 16 on 2 GPUs. The plan is
    large_batch_plan of the checkpoint's whole-model B_noise; each leaf
    config holds the plan, and one passes tools/check_config.py."""
    ckpt = _checkpoint(tmp_path / 'base.pth')
    out_dir, result = tmp_path / 'plan', tmp_path / 'plan.json'
    out = run_tool([
        TOOL, SHAPES, '--target-batch', '8', '16', '--gpus', '2',
        '--checkpoint', ckpt, '--steps', '4', '--batch-per-proc', '2',
        '--out-dir', str(out_dir), '--json', str(result), '--cfg-options',
        'auto_scale_lr.base_batch_size=4', 'model.test_cfg.score_thr=0.0'
    ], shapes_cwd)
    plan = json.loads(result.read_text())
    assert [m['label'] for m in plan['measurements']] == ['start', ckpt]
    assert plan['planned_from'] == ckpt
    # the measurement's own CSV gives the same number
    from tools.harness.variance import read_rows
    rows = read_rows(str(out_dir / 'base' / 'gradient_variance.csv'))
    noise = whole_model_critical_batch(rows)[4]
    assert plan['measurements'][1]['noise_scale'] == noise
    assert math.isfinite(noise) and noise > 0
    assert "the plan uses the last checkpoint's" in out
    for target, (size, counts) in ((8, (4, 1)), (16, (8, 1))):
        expected = large_batch_plan(4, 0.02, noise, target)
        entry = plan['plan'][str(target)]
        assert entry['lr'] == expected['lr']
        cfg = Config.fromfile(entry['config'])
        assert cfg.optim_wrapper.optimizer.lr == expected['lr']
        assert cfg.train_dataloader.batch_size == size
        assert cfg.optim_wrapper.accumulative_counts == counts
        # 2000 micro-batches of the base = 1000 optimizer steps, stretched
        steps = round(1000 * expected['steps'])
        assert cfg.train_cfg.max_iters == steps * counts
        ratio = steps * counts / 2000
        warm, multistep = cfg.param_scheduler
        assert warm.end == round(200 * ratio)
        assert multistep.milestones == [round(1500 * ratio),
                                        round(1800 * ratio)]
        assert multistep.end == steps * counts
        # mmengine does not scale the planned lr again
        assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=target)
        # AGVM's window as the paper configs place it
        [hook] = [h for h in cfg.custom_hooks if h.type == 'AGVMHook']
        offset = min(100, warm.end // counts)
        assert (hook.start_offset, hook.clip_window) == (offset,
                                                         (offset, offset))
        assert cfg.optim_wrapper.agvm.start_iter is None
        assert cfg.model.test_cfg.score_thr == 0.0  # --cfg-options kept
    # the written config runs: the check trains it for a few steps
    # its own data root: the check writes its small dataset there, which
    # in the shared one would change what the other tests train on
    run_tool([CHECK, plan['plan']['16']['config'], '--steps', '2',
              '--data-root', str(tmp_path / 'check_data')], shapes_cwd)


def test_plans_from_the_last_checkpoint_before_the_lr_decays(tmp_path):
    """mmengine's own schedulers (warm-up to iteration 2, lr x0.1 at 4)
    write the optimizer state; a checkpoint after the decay is marked with
    its fraction of the peak lr, and the last one before it plans (after the
    decay the gradient is small against its noise: a nearly linear plan,
    which diverged in docs/results/plan_batch.md)."""
    from mmengine.optim import LinearLR, MultiStepLR
    from tools.analysis_tools.plan_batch import (Measurement, decayed_lr,
                                                 planning_measurement)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    schedulers = [LinearLR(optimizer, start_factor=0.1, end=2),
                  MultiStepLR(optimizer, milestones=[4], gamma=0.1)]
    paths = {}
    for it in range(1, 6):  # the state after runner iteration ``it``
        optimizer.step()
        for sched in schedulers:
            sched.step()
        paths[it] = str(tmp_path / f'iter_{it}.pth')
        torch.save(dict(meta=dict(iter=it), optimizer=optimizer.state_dict()),
                   paths[it])
    ratios = {it: decayed_lr(path, 2) for it, path in paths.items()}
    # iteration 1 is in the warm-up (lr below its peak, not decayed)
    assert ratios == {1: None, 2: None, 3: None, 4: pytest.approx(0.1),
                      5: pytest.approx(0.1)}
    assert decayed_lr(_checkpoint(tmp_path / 'weights.pth'), 2) is None

    start, early, late = (Measurement(label, n) for label, n in
                          (('start', 2.0), (paths[3], 20.0),
                           (paths[5], 800.0)))
    assert planning_measurement([start, early, late], {paths[5]: 0.1}) \
        is early
    # every checkpoint after the decay: the last (the tool warns); none given
    assert planning_measurement([start, late], {paths[5]: 0.1}) is late
    assert planning_measurement([start], {}) is start


def test_epoch_based_config_is_stretched_in_epochs_and_iterations(tmp_path):
    """mmdet's COCO RetinaNet at batch 512 (16 epochs, lr x0.1 at 12 and 14,
    warm-up 460 iterations): twice the epochs at batch 2048 on 512 GPUs.
    An iteration there holds 4x the images, so the warm-up, the same
    fraction of the run, is 460 x 2 / 4 iterations."""
    cfg = Config.fromfile(COCO)
    base = base_of(cfg)
    assert (base.batch, base.lr, base.loop, base.length) == (512, 0.16,
                                                             'epoch', 16)
    plan = dict(lr=0.3, steps=0.5, epochs=2.0, noise_scale=700.0,
                planned_from='start')
    path, text = leaf_config(cfg, COCO, base, 2048, 512, plan, str(tmp_path))
    assert text == '32 epochs'
    leaf = Config.fromfile(path)
    assert leaf.train_cfg.max_epochs == 32
    assert leaf.train_dataloader.batch_size == 4
    assert leaf.optim_wrapper.accumulative_counts == 1
    warm, multistep = leaf.param_scheduler
    assert (warm.type, warm.end) == ('ExpWarmupLR', 230)
    assert (multistep.milestones, multistep.end) == ([24, 28], 32)
    [hook] = [h for h in leaf.custom_hooks if h.type == 'AGVMHook']
    assert hook.start_offset == 100 and hook.clip_window == (100, 100)
    # the leaf is short: it inherits the rest
    assert leaf.model.type == 'RetinaNet'


def test_auto_scale_lr_enabled_says_which_lr_is_the_base():
    cfg = Config.fromfile(SHAPES)
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=16)
    base = base_of(cfg)
    assert base.lr == 0.02 and base.batch == 16
    assert 'auto_scale_lr.enable=True' in base.source
    assert 'takes it as tuned at this batch' in base.source


@pytest.mark.parametrize('targets,gpus,match', [
    ([0], 1, 'at least 1 image'),
    ([64, 100], 8, 'not a multiple of --gpus 8'),
    ([64], 0, '--gpus 0'),
])
def test_bad_targets_are_refused(targets, gpus, match):
    with pytest.raises(PlanError, match=match):
        check_targets(targets, gpus)


def test_batch_split_per_gpu():
    assert split_batch(64, 8, 2, True) == (2, 4)  # the config's 2 per GPU
    assert split_batch(12, 1, 8, True) == (6, 2)  # halves on one GPU
    assert split_batch(6, 2, 2, True) == (1, 3)  # 3 per GPU: 1 x 3
    with pytest.raises(PlanError, match='even number of images'):
        split_batch(7, 1, 8, True)
    assert split_batch(7, 1, 8, False) == (7, 1)  # without AGVM


def test_noise_dominated_measurement_gives_no_plan(tmp_path):
    """A gradient-variance CSV whose neck has |G|^2 < 0 everywhere and a
    whole model whose sum is not positive: exit 2 before writing anything,
    naming the module and what to do."""
    path = tmp_path / 'gv.csv'
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['batch', 'step', 'iteration', 'module', 'phi',
                         'scale', 'gsq', 'trsigma', 'bnoise'])
        for step in range(4):
            writer.writerow([16, step, 2 * step + 2, 'backbone', 0.9, 1.0,
                             0.001, 0.5, 'nan'])
            writer.writerow([16, step, 2 * step + 2, 'neck', 1.1, 1.0,
                             -0.01, 0.5, 'nan'])
    out_dir = tmp_path / 'plan'
    env_run = run_tool([TOOL, SHAPES, '--target-batch', '64', '--csv',
                        str(path), '--out-dir', str(out_dir)], tmp_path,
                       expect=2)
    assert 'No plan' in env_run and 'noise-dominated' in env_run
    assert 'csv b16' in env_run
    assert 'neck' in env_run and '--checkpoint' in env_run
    assert not out_dir.exists()


def test_bad_target_fails_before_any_measurement(tmp_path):
    out = run_tool([TOOL, SHAPES, '--target-batch', '64', '100', '--gpus',
                    '8'], tmp_path, expect=2)
    assert '--target-batch 100 is not a multiple of --gpus 8' in out
    assert not (tmp_path / 'work_dirs').exists()


def test_experiment_plan_and_verdicts():
    """tools/benchmark_plan_batch.py: the batch-32 runs appear once the
    measurement planned them, and its two verdicts follow the rule fixed
    before the runs (diverged counts as 0 mAP)."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    import benchmark_plan_batch as E
    from tools.paper_regime.grid import Record
    backbone = 'model.backbone.init_cfg.checkpoint=x.pth'
    assert [r.batch for r in E.plan({}, None, backbone)] == [8, 8]
    # B_noise 24 at 20 %: lr 0.01 (1 + 24/8) / (1 + 24/32) = 0.022857,
    # epochs 13 (1 + 32/24) / (1 + 8/24) = 22.75
    measured = dict(plan={'32': dict(lr=0.0171234, epochs=1.61)},
                    measurements=[dict(label='start', noise_scale=2.0),
                                  dict(label='w/iter_2600.pth',
                                       noise_scale=24.0)])
    runs = E.plan({}, measured, backbone)
    assert [(r.arm, r.batch, r.seed, r.epochs) for r in runs[2:]] == [
        ('sgd', 32, 0, 20.93), ('agvm', 32, 0, 20.93), ('sgd', 32, 1, 20.93),
        ('agvm', 32, 1, 20.93), ('sgd', 32, 0, 13), ('sgd', 32, 0, 22.75),
        ('sgd', 32, 1, 22.75)]
    assert runs[2].lr == 0.01712 and runs[2].name.endswith('-e20.93')
    assert runs[-1].lr == 0.02286 and runs[-1].rule == E.EXPLORE_RULE

    def done(maps):
        return {r.name: Record('retinanet_paper', 'pretrained', r.batch,
                               r.arm, r.lr, r.seed, r.rule, 1, m, 0.5,
                               m is None, 'done')
                for r, m in zip(runs, maps)}

    words = E.verdicts(done([30.0, 30.2, 29.0, 30.5, 28.6, 30.1]),
                       measured, backbone)
    assert 'plan recovers' in words[0].lower() and '**recovers**' in words[0]
    assert '**AGVM wins**' in words[1]  # 30.3 against 28.8
    words = E.verdicts(done([30.0, 30.2, 27.0, 27.5, 28.0, None]),
                       measured, backbone)
    assert '**does not recover**' in words[0]  # 27.5 mean: 2.6 below
    assert '**AGVM loses**' in words[1]  # 13.75 (diverged = 0) vs 27.5
    assert 'different seeds' not in words[1]  # only AGVM diverged
    words = E.verdicts(done([30.0, 30.2, 29.0, None, None, 30.5]),
                       measured, backbone)
    assert '**AGVM ties**' in words[1]  # 15.25 against 14.5
    assert 'different seeds (SGD [1], SGD + AGVM [0])' in words[1]
    assert 'pending' in E.verdicts(done([30.0, 30.2]), measured,
                                   backbone)[0]
