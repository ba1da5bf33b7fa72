"""tools/analysis_tools/gradient_variance.py: per-module gradient variance at
several batch sizes (the paper's Figure 1) on the tiny RetinaNet shapes
config, and the functions it is built from."""
import csv
import glob
import math
import os

import pytest
from mmengine.config import Config

from tests.conftest import ROOT, run_tool
from tools.analysis_tools.gradient_variance import (Cell, make_cell_config,
                                                    plan_cells)
from tools.harness.plot import plot_gradient_variance
from tools.harness.variance import critical_batches, read_rows, summarize

CONFIG = os.path.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_agvm.py')
TOOL = os.path.join(ROOT, 'tools/analysis_tools/gradient_variance.py')
MODULES = ['backbone', 'neck', 'bbox_head']


def test_tool_records_every_step_unmodulated(shapes_cwd, tmp_path):
    """Batches 4 and 8 = 1 process x 2 images x 2 or 4 micro-batches, 3
    optimizer steps each, Phi measured at every step."""
    work = tmp_path / 'gv'
    out = run_tool([
        TOOL, CONFIG, '--batches', '4', '8', '--batch-per-proc', '2',
        '--steps', '3', '--interval', '1', '--work-dir', str(work),
        '--cfg-options', 'model.test_cfg.score_thr=0.0'
    ], shapes_cwd)
    rows = read_rows(str(work / 'gradient_variance.csv'))
    with open(work / 'gradient_variance.csv') as f:
        assert next(csv.reader(f)) == [
            'batch', 'step', 'iteration', 'module', 'phi', 'scale', 'gsq',
            'trsigma', 'bnoise']
    keys = [(r['batch'], r['step'], r['module']) for r in rows]
    assert sorted(keys) == sorted((b, s, m) for b in (4, 8)
                                  for s in range(3) for m in MODULES)
    for r in rows:
        counts = r['batch'] // 2
        assert r['iteration'] == (r['step'] + 1) * counts
        assert 0.0 <= r['phi'] <= 2.0
        assert 0.5**0.5 <= r['scale'] <= 10**0.5
        # one step's estimates: tr(Sigma) >= 0; |G|^2 may be < 0 (noise)
        assert r['trsigma'] >= 0 and math.isfinite(r['gsq'])
        assert math.isnan(r['bnoise']) or r['bnoise'] > 0
    # the summary tables: one line per batch, ratios to the backbone, then
    # the critical batches
    assert 'backbone' in out and 'bbox_head' in out
    assert any(line.startswith('8 ') for line in out.splitlines())
    assert 'Critical batch B_noise' in out

    from PIL import Image
    with Image.open(work / 'gradient_variance.png') as image:
        # 2 x 2 panels of 4.0 x 3.4 in at 100 dpi: Phi, then B_noise
        assert image.size == (800, 680)

    # measurement only: the wrapper did not modulate and the lr is the
    # configured one (the AGVM config's own modulation is switched off)
    for batch, counts in ((4, 2), (8, 4)):
        [dumped] = glob.glob(str(work / f'b{batch}' / '*.py'))
        cfg = Config.fromfile(dumped)
        wrapper = cfg.optim_wrapper
        assert wrapper.type == 'AGVMOptimWrapper'
        assert wrapper.agvm.modulate is False
        assert wrapper.agvm.start_iter == 0 and wrapper.agvm.interval == 1
        assert wrapper.accumulative_counts == counts
        assert wrapper.optimizer.lr == Config.fromfile(
            CONFIG).optim_wrapper.optimizer.lr
        assert cfg.train_dataloader.batch_size == 2
        assert cfg.train_cfg.max_iters == 3 * counts


def test_tool_with_two_processes(shapes_cwd, tmp_path):
    """Batch 4 = 2 gloo processes x 2 images, no accumulation: the two
    estimates are the two ranks' gradients."""
    work = tmp_path / 'gv2'
    run_tool([
        TOOL, CONFIG, '--batches', '4', '--nproc', '2', '--batch-per-proc',
        '2', '--steps', '2', '--work-dir', str(work),
        '--cfg-options', 'model.test_cfg.score_thr=0.0'
    ], shapes_cwd)
    rows = read_rows(str(work / 'gradient_variance.csv'))
    assert sorted((r['step'], r['module']) for r in rows) == sorted(
        (s, m) for s in range(2) for m in MODULES)
    assert all(r['batch'] == 4 and r['iteration'] == r['step'] + 1 and
               0.0 <= r['phi'] <= 2.0 for r in rows)
    [dumped] = glob.glob(str(work / 'b4' / '*.py'))
    assert Config.fromfile(dumped).optim_wrapper.accumulative_counts == 1


def test_plan_cells():
    assert plan_cells([8, 32], 1, 4) == [Cell(8, 1, 4, 2), Cell(32, 1, 4, 8)]
    assert plan_cells([1024], 8, 4) == [Cell(1024, 8, 4, 32)]
    assert plan_cells([16], 2, 8) == [Cell(16, 2, 8, 1)]
    with pytest.raises(ValueError, match='even number >= 2'):
        plan_cells([8], 1, 8)  # one process, no accumulation
    with pytest.raises(ValueError, match='even number >= 2'):
        plan_cells([12], 1, 4)  # accumulation 3
    with pytest.raises(ValueError, match='not a multiple'):
        plan_cells([10], 1, 4)


def test_cell_config_modulation_schedule_and_lr():
    cfg = Config.fromfile(CONFIG)
    warmup = cfg.param_scheduler[0].end  # runner iterations at 2 micro-batches
    milestones = cfg.param_scheduler[1].milestones
    base_lr = cfg.optim_wrapper.optimizer.lr
    cell = Cell(64, 1, 8, 8)
    plain = make_cell_config(cfg, cell, steps=5)
    assert plain.optim_wrapper.agvm.modulate is False
    # the same optimizer steps at 8 micro-batches per step
    assert plain.param_scheduler[0].end == warmup * 4
    assert plain.param_scheduler[1].milestones == [m * 4 for m in milestones]
    assert plain.val_cfg is None and plain.default_hooks.checkpoint is None
    hooks = [h['type'] for h in plain.custom_hooks]
    assert hooks.count('AGVMHook') == 1 and 'GradientVarianceHook' in hooks
    agvm = make_cell_config(cfg, cell, steps=5, agvm=True, schedule='iters',
                            lr_scaling='sqrt', base_batch=16)
    assert agvm.optim_wrapper.agvm.modulate is True
    assert agvm.param_scheduler[0].end == warmup
    assert agvm.optim_wrapper.optimizer.lr == pytest.approx(base_lr * 2)
    assert make_cell_config(cfg, cell, 5,
                            schedule='constant').param_scheduler is None


def test_summary_and_plot(tmp_path):
    nan = math.nan
    rows = [dict(batch=b, step=s, iteration=s + 1, module=m,
                 phi=phi / b**0.5 * (s + 1), scale=1.0, gsq=nan,
                 trsigma=nan, bnoise=nan)
            for b in (8, 32, 64) for s in range(4)
            for m, phi in zip(MODULES, (0.8, 0.4, 0.01))]
    text = summarize(rows)
    # last half = steps 2, 3: backbone 0.8 * 3.5 / sqrt(8)
    assert f'{0.8 * 3.5 / 8**0.5:.4g}' in text
    assert '(80.00)' in text  # backbone / bbox_head
    assert 'Critical batch' not in text  # a CSV without the noise columns
    path = plot_gradient_variance(rows, str(tmp_path / 'f.png'), 'x')
    from PIL import Image
    with Image.open(path) as image:
        assert image.size == (1200, 340)


def test_critical_batch_summary_averages_each_estimate_on_its_own():
    """B_noise = mean tr(Sigma) / mean |G|^2 over the last half of the
    steps: at steps 2 and 3 the backbone's tr(Sigma) 4 and 12 over |G|^2 3
    and 1 give 8 / 2 = 4 (the mean of the ratios would be 6.7);
    noise-dominated when the mean |G|^2 is not positive (the neck)."""
    def row(batch, step, module, gsq, trsigma):
        return dict(batch=batch, step=step, iteration=step + 1,
                    module=module, phi=0.5, scale=1.0, gsq=gsq,
                    trsigma=trsigma, bnoise=math.nan)

    rows = [row(16, 0, 'backbone', 9.0, 9.0), row(16, 1, 'backbone', 9.0,
                                                   9.0),
            row(16, 2, 'backbone', 3.0, 4.0), row(16, 3, 'backbone', 1.0,
                                                   12.0),
            row(16, 0, 'neck', 1.0, 1.0), row(16, 1, 'neck', 1.0, 1.0),
            row(16, 2, 'neck', -2.0, 5.0), row(16, 3, 'neck', 1.0, 5.0)]
    assert critical_batches(rows)[16] == {'backbone': 4.0,
                                          'neck': math.inf}
    text = summarize(rows)
    assert 'noise-dominated (>> batch)' in text
    assert '(4x)' in text  # batch 16 is 4 x the backbone's 4 images
