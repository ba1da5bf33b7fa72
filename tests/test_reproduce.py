"""tools/reproduce.py and tools/harness: the local mode on a 2 x 2 grid
(table and plot from the runs' logs, resume), the cluster mode's dry-run
commands, and DivergenceHook (a diverging run stops early, leaves its marker
and is reported as NaN)."""
import ast
import glob
import json
import math
import os
import os.path as osp
import re
import threading

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from agvm_mm.hooks import divergence_hook  # noqa: F401  registers the hook
from agvm_mm.hooks.divergence_hook import MARKER, DivergenceHook, total_loss
from tests.conftest import ROOT, run_tool
from tools import harness as R
from tools.harness.results import CellResult, read_state, write_state

TOOL = osp.join(ROOT, 'tools', 'reproduce.py')


# --------------------------------------------------------------------------
# DivergenceHook on a real mmengine Runner with a toy model
class ToyData(Dataset):
    def __init__(self, n=40, scale=1.0):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 2, generator=gen) * scale
        self.y = self.x.sum(1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


class ToyModel(BaseModel):
    def __init__(self, nan_at=None):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.nan_at = nan_at
        self.losses = 0

    def forward(self, inputs, labels, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            self.losses += 1
            loss = ((out - labels)**2).mean()
            if self.nan_at is not None and self.losses >= self.nan_at:
                loss = loss * float('nan')
            return dict(loss=loss)
        return [(out, labels)]


class CountingMetric(BaseMetric):
    calls = 0

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        CountingMetric.calls += 1
        return dict(dummy=0.0)


def _runner(tmp_path, name, model, train_cfg, lr=0.01, scale=1.0,
            hook=None):
    loader = dict(dataset=ToyData(scale=scale), batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='default_collate'))
    return Runner(
        model=model, work_dir=str(tmp_path / name), experiment_name=name,
        train_dataloader=loader, val_dataloader=dict(loader),
        val_evaluator=[CountingMetric()], val_cfg=dict(),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        custom_hooks=[hook or dict(type='DivergenceHook')],
        default_hooks=dict(checkpoint=None,
                           logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine')


def test_total_loss():
    assert total_loss(dict(loss=torch.tensor(2.0), acc=5.0)) == 2.0
    assert total_loss(dict(loss_a=torch.tensor([1.0, 2.0]),
                           loss_b=0.5, acc=9.0)) == 3.5
    assert total_loss(dict(acc=1.0)) is None
    assert math.isnan(total_loss(dict(loss=torch.tensor(float('nan')))))
    hook = DivergenceHook(max_loss=10.0)
    assert (hook.divergence_reason(11.0)
            and hook.divergence_reason(float('inf')))
    assert (not hook.divergence_reason(9.0)
            and not hook.divergence_reason(None))


def test_divergence_hook_iter_loop(tmp_path):
    """An injected NaN at iteration 3 of 60: stopped right after it, marker
    written, no validation on the diverged model, normal return."""
    CountingMetric.calls = 0
    runner = _runner(tmp_path, 'iter', ToyModel(nan_at=3),
                     dict(by_epoch=False, max_iters=60, val_interval=3))
    runner.train()
    assert runner.train_loop.iter == 3
    assert runner.model.losses == 3
    with open(osp.join(runner.work_dir, MARKER)) as f:
        marker = json.load(f)
    assert marker['iter'] == 3 and marker['loss'] == 'nan'
    assert marker['reason'] == 'non-finite loss'
    assert CountingMetric.calls == 0  # val at iteration 3 was skipped


def test_divergence_hook_epoch_loop(tmp_path):
    """A real divergence (lr far too large) in an epoch-based loop: the
    running epoch is cut short, not finished, and training ends."""
    CountingMetric.calls = 0
    runner = _runner(tmp_path, 'epoch', ToyModel(),
                     dict(by_epoch=True, max_epochs=3, val_interval=1),
                     lr=1e3, scale=10.0)
    runner.train()
    with open(osp.join(runner.work_dir, MARKER)) as f:
        marker = json.load(f)
    per_epoch = len(runner.train_dataloader)  # 20
    assert marker['iter'] < per_epoch
    assert runner.model.losses == marker['iter']  # nothing trained after it
    assert runner.train_loop.iter == marker['iter']
    assert runner.epoch == 1 and runner.train_loop.stop_training
    assert CountingMetric.calls == 0


def test_divergence_hook_max_loss(tmp_path):
    runner = _runner(tmp_path, 'maxloss', ToyModel(),
                     dict(by_epoch=False, max_iters=40, val_interval=40),
                     lr=1e3, scale=10.0,
                     hook=dict(type='DivergenceHook', max_loss=1e8))
    runner.train()
    with open(osp.join(runner.work_dir, MARKER)) as f:
        marker = json.load(f)
    assert marker['reason'].startswith('loss above')
    assert math.isfinite(marker['loss']) and marker['loss'] > 1e8
    assert runner.train_loop.iter == marker['iter'] < 40


def test_healthy_run_has_no_marker(tmp_path):
    runner = _runner(tmp_path, 'ok', ToyModel(),
                     dict(by_epoch=False, max_iters=6, val_interval=6))
    runner.train()
    assert runner.train_loop.iter == 6
    assert not osp.exists(osp.join(runner.work_dir, MARKER))


# --------------------------------------------------------------------------
# cluster mode: dry-run commands
def test_config_names():
    info = R.parse_config_name(
        'retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py')
    assert (info['G'], info['S'], info['K'], info['B']) == (256, 8, 5, 10240)
    assert info['model'] == 'retinanet_r18_fpn' and info['optim'] == 'agvm'
    info = R.parse_config_name(
        'panoptic-fpn_r50_fpn_pmd-lamb_64xb4-16e_coco-panoptic-b256.py')
    assert info['optim'] == 'pmd-lamb' and info['data'] == 'coco-panoptic'
    assert R.parse_config_name('retinanet_tiny_shapes_agvm.py') is None
    # every paper config follows the scheme, G x S x K = B
    for path in glob.glob(osp.join(ROOT, 'configs', '*', '*.py')):
        if '/shapes/' in path or '/_base_/' in path:
            continue
        info = R.parse_config_name(path)
        assert info, path
        assert info['G'] * info['S'] * info['K'] == info['B'], path
    path, _ = R.find_paper_config('faster_rcnn', 'adamw', 256)
    assert osp.basename(path).startswith('faster-rcnn_r50_fpn_adamw')
    path, _ = R.find_paper_config('faster_rcnn', 'adamw', 256, model='swin')
    assert 'swin-t' in osp.basename(path)
    with pytest.raises(LookupError):
        R.find_paper_config('retinanet', 'lamb', 32)


def test_cluster_dry_run_slurm(tmp_path):
    out = run_tool([TOOL, '--launcher', 'slurm', '--partition', 'gpu',
                    '--families', 'retinanet', 'faster_rcnn',
                    '--batches', '32', '256', '1536', '10240',
                    '--optims', 'sgd', 'agvm', 'lamb',
                    '--work-root', str(tmp_path / 'wr'), '--dry-run'],
                   cwd=str(tmp_path), timeout=300)
    commands = [line for line in out.splitlines() if 'slurm_train.sh' in line]

    def command(family, optim, batch):
        wd = str(tmp_path / 'wr' / family / f'{optim}-b{batch}')
        found = [c for c in commands if c.rstrip().endswith(' ' + wd)]
        assert len(found) == 1, (family, optim, batch, out[-3000:])
        return found[0]

    cmd = command('retinanet', 'sgd', 256)
    assert cmd.startswith('GPUS=64 GPUS_PER_NODE=8 bash ')
    assert ' gpu agvm-retinanet-sgd-b256 ' in cmd
    assert 'retinanet_r50_fpn_sgd_64xb4-16e_coco-b256.py' in cmd
    cmd = command('faster_rcnn', 'agvm', 1536)
    assert cmd.startswith('GPUS=384 GPUS_PER_NODE=8 ')
    assert 'faster-rcnn_r50_fpn_agvm_384xb4-12e_coco-b1536.py' in cmd
    cmd = command('retinanet', 'lamb', 10240)
    assert cmd.startswith('GPUS=256 ')
    assert 'retinanet_r18_fpn_lamb_256xb8x5-16e_coco-b10240.py' in cmd
    cmd = command('faster_rcnn', 'sgd', 32)
    assert cmd.startswith('GPUS=8 GPUS_PER_NODE=8 ')
    # the printed paper config path of each cell
    assert ('[dry-run] retinanet agvm b32: configs/retinanet/'
            'retinanet_r50_fpn_agvm_8xb4-16e_coco-b32.py (G=8)') in out
    # no baseline at 32, no Faster R-CNN at 10240: reported, not launched
    assert 'retinanet lamb b32: cannot run' in out
    assert 'faster_rcnn sgd b10240: cannot run' in out
    assert len(commands) == 2 * 3 * 4 - 2 * 2 - 3 - 1  # 16 cells
    # the launched config is the paper config plus DivergenceHook (its own
    # AGVMHook, which places the AGVM window, restated)
    wrapper = tmp_path / 'wr' / 'retinanet' / 'agvm-b256' / \
        R.CONFIG_SUBDIR / 'retinanet_r50_fpn_agvm_64xb4-16e_coco-b256.py'
    text = wrapper.read_text()
    assert osp.join(ROOT, 'configs', 'retinanet', wrapper.name) in text
    assert ast.literal_eval(text.split('custom_hooks = ', 1)[1]) == [
        dict(type='AGVMHook', start_offset=100, clip_window=(100, 100)),
        dict(type='DivergenceHook')]
    # nothing was trained
    assert not glob.glob(str(tmp_path / 'wr' / '*' / '*' / R.STATE_FILE))


def test_cluster_dry_run_pytorch(tmp_path, capsys):
    cells = R.plan_cluster(['sem_fpn', 'mask_rcnn'], [512], ['agvm', 'lars'],
                           R.ClusterOptions('pytorch',
                                            work_root=str(tmp_path)))
    R.run_grid(cells, dry_run=True)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if 'dist_train.sh' in line]
    assert len(lines) == 4
    for line in lines:
        assert not line.startswith('GPUS=')
        # G = 128 processes, the work dir of the cell
        assert re.search(r'\.py 128 --work-dir ' + re.escape(str(tmp_path)),
                         line)
    assert any('fpn_r50_lars_128xb4-5k_ade20k-512x512-b512.py 128' in line
               for line in lines)
    assert any('mask-rcnn_r50_fpn_agvm_128xb4-16e_coco-b512.py 128' in line
               for line in lines)
    with pytest.raises(ValueError):  # slurm needs a partition
        env = os.environ.pop('PARTITION', None)
        try:
            R.plan_cluster(['retinanet'], [256], ['sgd'],
                           R.ClusterOptions('slurm'))
        finally:
            if env is not None:
                os.environ['PARTITION'] = env


def test_batch_specs_restrict_the_grid(tmp_path):
    """``32:sgd`` runs only SGD at 32 (the reference row); the others run
    every optimizer; bad specs name the option and the fix."""
    batches, only = R.parse_batches(['32:sgd', '256', '512:SGD,pmdlamb'],
                                    ['sgd', 'agvm', 'pmd-lamb'])
    assert batches == [32, 256, 512]
    assert only == {32: ('sgd', ), 512: ('sgd', 'pmd-lamb')}
    cells = R.plan_cluster(['faster_rcnn'], batches, ['sgd', 'agvm',
                                                      'pmd-lamb'],
                           R.ClusterOptions('pytorch',
                                            work_root=str(tmp_path)))
    kept = {(c.optim, c.batch) for c in R.restrict_cells(cells, only)}
    assert kept == {('sgd', 32), ('sgd', 256), ('agvm', 256),
                    ('pmd-lamb', 256), ('sgd', 512), ('pmd-lamb', 512)}
    for specs, words in ((['32:lamb'], "not in --optims ['sgd']"),
                         (['b32'], 'B or B:OPT,OPT'), (['0'], '>= 1'),
                         (['32:foo'], 'unknown optimizer')):
        with pytest.raises(ValueError, match=re.escape(words)):
            R.parse_batches(specs, ['sgd'])


def test_slot_env_splits_threads_and_gpus(monkeypatch):
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    monkeypatch.setattr(os, 'cpu_count', lambda: 16)
    local = R.Cell('retinanet', 'sgd', 32, 'w', local=True)
    cluster = R.Cell('retinanet', 'sgd', 32, 'w')
    assert R.slot_env(0, 1, local, gpus=8) == {}  # one job: as it is
    assert R.slot_env(5, 4, local, gpus=0) == {'OMP_NUM_THREADS': '4'}
    assert R.slot_env(5, 4, local, gpus=4) == {
        'OMP_NUM_THREADS': '4', 'CUDA_VISIBLE_DEVICES': '1'}
    assert R.slot_env(1, 2, cluster, gpus=8) == {'OMP_NUM_THREADS': '8'}
    monkeypatch.setenv('OMP_NUM_THREADS', '2')  # the user's choice wins
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3')
    assert R.slot_env(1, 2, local, gpus=8) == {}


# --------------------------------------------------------------------------
# local mode: a 2 x 2 grid on the shapes data
def _logged_metric(work_dir, key):
    """The last value of ``key`` in the cell's mmengine json logs, read
    independently of tools/harness."""
    value = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if key in record:
                    value = record[key]
    return value


def _table(markdown, title):
    """{(row, column): text} of the table under ``## title``."""
    block = markdown.split(f'## {title}\n', 1)[1].strip().split('\n\n')[0]
    rows = [[c.strip() for c in line.strip('|').split('|')]
            for line in block.splitlines()]
    header, body = rows[0], rows[2:]
    return {(row[0], col): text for row in body
            for col, text in zip(header[1:], row[1:])}


def test_local_grid(shapes_cwd, tmp_path):
    work_root = str(tmp_path / 'grid')
    args = [TOOL, '--local', '--families', 'retinanet', '--batches', '4',
            '8', '--optims', 'sgd', 'agvm', '--batch-per-proc', '2',
            '--epochs', '1', '--work-root', work_root, '--jobs', '2',
            # untrained RetinaNet scores stay below the default 0.05: keep
            # every box so that COCO evaluation has detections to score
            '--train-args=--cfg-options model.test_cfg.score_thr=0.0']
    out = run_tool(args, cwd=str(shapes_cwd), timeout=600)
    assert out.count('start (') == 4 and 'ETA' in out
    progress = [line for line in out.splitlines()
                if line.startswith('[reproduce ')]
    # a start and an end line per cell; that --jobs 2 runs two cells at
    # once is test_jobs_run_cells_at_once's (here the lines' order would
    # depend on the threads' timing)
    assert len(progress) == 8
    markdown = open(osp.join(work_root, 'results.md')).read()
    # what each cell trained is listed under the table
    assert '* agvm b8: 1 x 2 x 4, 2 steps (1 epochs of 16 images)' \
        in markdown
    with open(osp.join(work_root, 'results.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    table = _table(markdown, 'RetinaNet: bbox mAP')
    assert set(table) == {(o, b) for o in ('SGD', 'SGD + AGVM')
                          for b in ('b4', 'b8')}
    losses = _table(markdown, 'RetinaNet: final train loss')
    for optim, title in (('sgd', 'SGD'), ('agvm', 'SGD + AGVM')):
        for batch in (4, 8):
            work_dir = osp.join(work_root, 'retinanet', f'{optim}-b{batch}')
            value = _logged_metric(work_dir, 'coco/bbox_mAP')
            assert value is not None, work_dir
            assert table[title, f'b{batch}'] == f'{value * 100:.1f}'
            # the last logged training loss, next to the metric
            loss = _logged_metric(work_dir, 'loss')
            assert losses[title, f'b{batch}'] == f'{loss:.2f}'
            # the recipe: batch = 2 x K on one process, same epochs
            config = glob.glob(osp.join(work_dir, R.CONFIG_SUBDIR, '*.py'))
            text = open(config[0]).read()
            assert f"'accumulative_counts': {batch // 2}" in text
            assert "'max_iters': 8" in text  # 16 images / 2 per micro-batch
    results = json.load(open(osp.join(work_root, 'results.json')))
    by_cell = {(c['optim'], c['batch']): c for c in results['cells']}
    assert by_cell['agvm', 8]['info']['accumulation'] == 4
    recipe = Config.fromfile(
        osp.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_sgd.py'))
    base_lr = recipe.optim_wrapper.optimizer.lr  # at batch 16
    assert by_cell['sgd', 8]['info']['lr'] == pytest.approx(base_lr *
                                                           0.5**0.5)
    assert all(c['status'] == 'done' for c in results['cells'])

    # resumable: a second call finds every cell finished
    out = run_tool(args, cwd=str(shapes_cwd), timeout=300)
    assert out.count('already finished, skipped') == 4
    assert 'start (' not in out

    # a finished cell asked for with other settings is run again; the old
    # run is kept aside, and the table never mixes the two
    changed = [a if a != '1' else '2' for a in args]  # --epochs 2
    out = run_tool(changed[:9] + changed[10:], cwd=str(shapes_cwd),  # SGD
                   timeout=300)
    assert out.count('settings changed, previous run moved to') == 2
    assert len(glob.glob(osp.join(work_root, 'retinanet', 'sgd-b4.old-*')))
    config = glob.glob(osp.join(work_root, 'retinanet', 'sgd-b4',
                                R.CONFIG_SUBDIR, '*.py'))
    assert "'max_iters': 16" in open(config[0]).read()


def test_jobs_run_cells_at_once(tmp_path, monkeypatch):
    """``jobs=2`` runs two cells at the same time. Each stand-in cell waits
    at a barrier of 2 that only two cells running at once can pass, so no
    cell ends before the second has started, whatever the timing (the
    barrier's timeout only ends a run that would otherwise hang, as one
    cell at a time would)."""
    from tools.harness import launch
    cells = R.plan_cluster(['retinanet'], [256, 512], ['sgd', 'agvm'],
                           R.ClusterOptions('pytorch',
                                            work_root=str(tmp_path)))
    assert sum(not c.reason for c in cells) == 4
    barrier = threading.Barrier(2, timeout=600)

    def stand_in(cell, *args):
        barrier.wait()
        return CellResult('failed', reason='stand-in')

    monkeypatch.setattr(launch, 'run_cell', stand_in)
    lines = []
    R.run_grid(cells, jobs=2, echo=lines.append)
    progress = [line.split(': ', 1)[1][:6] for line in lines
                if line.startswith('[reproduce ')]
    assert progress[:2] == ['start ', 'start ']
    assert sorted(progress) == ['failed'] * 4 + ['start '] * 4


def test_an_interrupted_cell_resumes_from_its_last_checkpoint(shapes_cwd,
                                                             tmp_path):
    """A cell saves a checkpoint every ~10 % of its steps, on a step
    boundary; a cell interrupted after step 4 of 8 (what Ctrl-C or a
    killed session leaves: its checkpoints up to there, state 'failed,
    interrupted') resumes from it and ends bit for bit where the
    uninterrupted run did."""
    work_root = str(tmp_path / 'resume')
    args = [TOOL, '--local', '--families', 'retinanet', '--batches', '4',
            '--optims', 'agvm', '--batch-per-proc', '2', '--epochs', '2',
            '--work-root', work_root,
            '--train-args=--cfg-options model.test_cfg.score_thr=0.0 '
            'default_hooks.checkpoint.max_keep_ckpts=20']
    run_tool(args, cwd=str(shapes_cwd), timeout=600)
    work_dir = osp.join(work_root, 'retinanet', 'agvm-b4')
    saved = sorted(int(re.search(r'iter_(\d+)', p).group(1))
                   for p in glob.glob(osp.join(work_dir, 'iter_*.pth')))
    assert saved == [2, 4, 6, 8, 10, 12, 14, 16]  # 8 steps x 2 micro-batches
    final = torch.load(osp.join(work_dir, 'iter_16.pth'), map_location='cpu',
                       weights_only=False)

    for n in (10, 12, 14, 16):
        os.remove(osp.join(work_dir, f'iter_{n}.pth'))
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'iter_8.pth'))
    state = read_state(work_dir)
    write_state(work_dir, **dict(state, status='failed',
                                 reason='interrupted'))
    out = run_tool(args, cwd=str(shapes_cwd), timeout=600)
    assert 'already finished' not in out
    assert 'resumed epoch: 0, iter: 8' in open(
        osp.join(work_dir, R.TRAIN_LOG)).read()
    resumed = torch.load(osp.join(work_dir, 'iter_16.pth'),
                         map_location='cpu', weights_only=False)
    assert resumed['meta']['iter'] == final['meta']['iter'] == 16
    for key, value in final['state_dict'].items():
        assert torch.equal(resumed['state_dict'][key], value), key
    assert read_state(work_dir)['status'] == 'done'


def test_local_divergence_reported_as_nan(shapes_cwd, tmp_path):
    """A cell with an absurd lr diverges: stopped long before its 32
    iterations, marker written, exit 0, NaN in the table; an AGVM cell whose
    accumulation cannot be even is listed, not run."""
    work_root = str(tmp_path / 'nan')
    out = run_tool([TOOL, '--local', '--families', 'retinanet', '--batches',
                    '2', '--optims', 'sgd', 'agvm', '--batch-per-proc', '2',
                    '--epochs', '4', '--base-lr', 'sgd=1e12',
                    '--work-root', work_root], cwd=str(shapes_cwd),
                   timeout=300)
    work_dir = osp.join(work_root, 'retinanet', 'sgd-b2')
    with open(osp.join(work_dir, MARKER)) as f:
        marker = json.load(f)
    assert marker['iter'] < 32
    log = open(osp.join(work_dir, R.TRAIN_LOG)).read()
    assert 'DivergenceHook' in log and 'Iter(val)' not in log
    table = _table(open(osp.join(work_root, 'results.md')).read(),
                   'RetinaNet: bbox mAP')
    assert table['SGD', 'b2'] == 'NaN'
    assert table['SGD + AGVM', 'b2'] == R.DASH
    assert 'even accumulation' in out


def test_local_cell_without_detections_scores_zero(shapes_cwd, tmp_path):
    """A model that predicts nothing: mmdet's CocoMetric logs an error and
    returns no metric; the table shows mAP 0.0 and says why."""
    work_root = str(tmp_path / 'empty')
    run_tool([TOOL, '--local', '--families', 'retinanet', '--batches', '2',
              '--optims', 'sgd', '--batch-per-proc', '2', '--epochs', '1',
              '--work-root', work_root,
              '--train-args=--cfg-options model.test_cfg.score_thr=1.01'],
             cwd=str(shapes_cwd), timeout=300)
    work_dir = osp.join(work_root, 'retinanet', 'sgd-b2')
    assert _logged_metric(work_dir, 'coco/bbox_mAP') is None
    assert R.NO_DETECTIONS in open(osp.join(work_dir, R.TRAIN_LOG)).read()
    markdown = open(osp.join(work_root, 'results.md')).read()
    assert _table(markdown, 'RetinaNet: bbox mAP')['SGD', 'b2'] == '0.0'
    assert '* sgd b2: no detections on the whole val set' in markdown


def test_batch_effect_script_plans_the_grid(shapes_cwd, tmp_path,
                                            monkeypatch):
    """tools/benchmark_batch_effect.sh: the reference row at the small batch,
    every optimizer at the large ones, the baselines' base lrs."""
    script = osp.join(ROOT, 'tools', 'benchmark_batch_effect.sh')
    work_root = str(tmp_path / 'be')
    for key, value in dict(FAMILIES='retinanet', BATCHES='4:sgd 8',
                           EPOCHS='1', NUM_TRAIN='16',
                           WORK_ROOT=work_root).items():
        monkeypatch.setenv(key, value)
    out = run_tool([script, '--dry-run', '--batch-per-proc', '2'],
                   cwd=str(shapes_cwd), timeout=300)
    planned = re.findall(r'\[dry-run\] retinanet (\S+) b(\d+):', out)
    assert sorted(planned) == sorted(
        [('sgd', '4')] + [(o, '8') for o in ('sgd', 'agvm', 'lars', 'lamb',
                                             'pmd-lamb')])
    lars = glob.glob(osp.join(work_root, 'retinanet', 'lars-b8',
                              R.CONFIG_SUBDIR, '*.py'))
    # base lr 10 x the recipe's SGD lr at its batch 16, square-root scaling
    # to 8; LAMB from 10 x 1e-4
    recipe = Config.fromfile(
        osp.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_sgd.py'))
    lr = 10 * recipe.optim_wrapper.optimizer.lr * 0.5**0.5
    assert f"'lr': {lr!r}" in open(lars[0]).read()
    lamb = glob.glob(osp.join(work_root, 'retinanet', 'lamb-b8',
                              R.CONFIG_SUBDIR, '*.py'))
    assert f"'lr': {10 * 1e-4 * 0.5**0.5!r}" in open(lamb[0]).read()
    assert R.parse_base_lr('x3', 0.5) == 1.5
    assert R.parse_base_lr('0.25', 0.5) == 0.25
    with pytest.raises(ValueError, match='x10'):
        R.parse_base_lr('ten', 0.5)
