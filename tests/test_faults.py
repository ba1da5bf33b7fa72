"""Faults at cluster scale (docs/faults.md): a worker killed mid-run under
torchrun's restarts, a checkpoint whose writer is killed, two nodes against
one, and one rank's non-finite loss. Real launcher (tools/dist_train.sh,
torch.distributed.run), real gloo process groups, the shapes RetinaNet;
the faults come from tests/faults.py. Many ranks against a float64
reference: tests/test_ddp_hook.py (test_many_ranks_match_...)."""
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from agvm_mm import AGVMOptimWrapper
from tests.conftest import ROOT, assert_same_training_state, run_tool
from tests.toy import (RETINANET, Toy, batches, free_port, make_optimizer,
                       run_ranks)

CONFIG = os.path.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_agvm.py')
LAUNCH = os.path.join(ROOT, 'tools/dist_train.sh')
ITERS = 8
# 2 images per process and step, AGVM every 3 steps from step 0 (0, 3, 6),
# a checkpoint every 3 iterations, one kept (the case a kill can cost most)
OPTIONS = [
    'train_dataloader.batch_size=2', 'model.test_cfg.score_thr=0.0',
    'default_hooks.logger.interval=1', 'log_processor.window_size=1',
    'optim_wrapper.accumulative_counts=1', 'optim_wrapper.agvm.start_iter=0',
    'optim_wrapper.agvm.interval=3', 'default_hooks.checkpoint.interval=3',
    'default_hooks.checkpoint.max_keep_ckpts=1',
    f'train_cfg.max_iters={ITERS}', 'train_cfg.val_interval=1000'
]


def fault_config(path, *hooks: str, checkpoint: str = '') -> str:
    """CONFIG with tests/faults.py imported and ``hooks`` (config text)
    added; ``checkpoint``: another checkpoint hook type."""
    text = (f"_base_ = '{CONFIG}'\n"
            "custom_imports = dict(imports=['agvm_mm', 'agvm_mm.datasets', "
            "'tests.faults'], allow_failed_imports=False)\n"
            f"custom_hooks = [dict(type='AGVMHook'), {', '.join(hooks)}]\n")
    if checkpoint:
        text += f"default_hooks = dict(checkpoint=dict(type='{checkpoint}'))\n"
    path.write_text(text)
    return str(path)


def launch(cwd, config, work_dir, nproc=2, restarts=0, expect=0, **env):
    """tools/dist_train.sh as a user runs it, with ``--resume`` (auto)."""
    env = {'PORT': str(free_port()), 'MAX_RESTARTS': str(restarts), **env}
    return run_tool([LAUNCH, config, str(nproc), '--work-dir', str(work_dir),
                     '--resume', '--cfg-options'] + OPTIONS, cwd,
                    expect=expect, env=env)


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_identical(path_a, path_b):
    """The same training state, bit for bit; AGVM took statistics steps
    0, 3 and 6."""
    assert assert_same_training_state(path_a, path_b)[
        'optimizer']['agvm']['steps'] == 3


@pytest.fixture(scope='module')
def uninterrupted(shapes_cwd, tmp_path_factory):
    """The run no fault touches, with the same checkpoints."""
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    launch(shapes_cwd, CONFIG, work_dir)
    return work_dir / f'iter_{ITERS}.pth'


def test_killed_worker_restarts_the_group_and_resumes_bit_for_bit(
        shapes_cwd, tmp_path, uninterrupted):
    """Rank 1 is SIGKILLed after iteration 4 (0-based): inside the interval
    [3, 6) that began with statistics step 3, after the checkpoint of
    iteration 3. torchrun restarts both workers, which resume from
    iter_3.pth and finish: the same weights and AGVM state as the run
    without the fault."""
    config = fault_config(tmp_path / 'kill.py',
                          "dict(type='KillWorkerHook', after_iter=4, rank=1)")
    out = launch(shapes_cwd, config, tmp_path / 'wd', restarts=1)
    assert 'failed (exitcode: -9) local_rank: 1' in out  # torchrun saw it
    assert 'resumed epoch: 0, iter: 3' in out
    assert_identical(tmp_path / 'wd' / f'iter_{ITERS}.pth', uninterrupted)


def test_worker_killed_mid_save_leaves_a_checkpoint_to_resume(
        shapes_cwd, tmp_path, uninterrupted):
    """Rank 0 is SIGKILLed with half of iter_6.pth written. tools/train.py's
    AtomicCheckpointHook writes iter_6.pth.partial and removes iter_3.pth
    only after the rename, so the restart resumes from iter_3.pth and ends
    bit for bit as the run without the fault."""
    config = fault_config(tmp_path / 'save.py',
                          "dict(type='KillDuringSaveHook', name='iter_6')")
    out = launch(shapes_cwd, config, tmp_path / 'wd', restarts=1)
    assert 'failed (exitcode: -9) local_rank: 0' in out
    assert 'resumed epoch: 0, iter: 3' in out
    assert_identical(tmp_path / 'wd' / f'iter_{ITERS}.pth', uninterrupted)
    assert sorted(p.name for p in (tmp_path / 'wd').glob('iter_*')) == [
        f'iter_{ITERS}.pth']  # the .partial was overwritten and renamed


def test_stock_checkpoint_hook_loses_the_run_when_killed_mid_save(
        shapes_cwd, tmp_path):
    """The contrast, mmengine's CheckpointHook: it removed iter_3.pth
    before writing iter_6.pth, the kill left iter_6.pth half written and
    last_checkpoint naming iter_3.pth, so the restart cannot resume (and
    with max_keep_ckpts=1 nothing is left to resume from)."""
    config = fault_config(tmp_path / 'stock.py',
                          "dict(type='KillDuringSaveHook', name='iter_6')",
                          checkpoint='StockCheckpointHook')
    launch(shapes_cwd, config, tmp_path / 'wd', restarts=1, expect=1)
    work_dir = tmp_path / 'wd'
    assert not (work_dir / 'iter_3.pth').exists()
    assert (work_dir / 'last_checkpoint').read_text().endswith('iter_3.pth')
    with pytest.raises(Exception):
        load(work_dir / 'iter_6.pth')  # truncated


def test_two_nodes_train_as_one_node_of_four(shapes_cwd, tmp_path):
    """Two torchrun agents of 2 processes (NNODES=2, NODE_RANK=0/1, one
    rendezvous on localhost) against one agent of 4: the same 4 ranks, the
    same halves (ranks 0-1, node 0; ranks 2-3, node 1), the same gloo
    reductions, so the same bits."""
    one = tmp_path / 'one'
    out = launch(shapes_cwd, CONFIG, one, nproc=4)
    assert '4 processes (halves: ranks 0-1 and 2-3;' in out
    two = tmp_path / 'two'
    port = str(free_port())
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(launch, shapes_cwd, CONFIG, two, nproc=2,
                            NNODES='2', NODE_RANK=str(node), PORT=port)
                for node in (0, 1)]
        outs = [r.result() for r in runs]
    assert '4 processes (halves: ranks 0-1 and 2-3;' in outs[0]
    assert_identical(two / f'iter_{ITERS}.pth', one / f'iter_{ITERS}.pth')


def test_one_ranks_nan_loss_stops_every_rank_with_the_message(
        shapes_cwd, tmp_path):
    """Rank 1's gradient turns inf at iteration 3, a statistics step, in
    fp32 (no loss scaler): the statistics are discarded, the factors kept,
    the inf reaches the weights on both ranks as it would without AGVM,
    and DivergenceHook stops both ranks at the next iteration, whose loss
    is NaN, with its message and diverged.json."""
    config = fault_config(
        tmp_path / 'nan.py',
        "dict(type='PoisonGradientHook', at_iter=3, rank=1)",
        "dict(type='DivergenceHook')")
    out = launch(shapes_cwd, config, tmp_path / 'wd')
    assert ('AGVM: non-finite gradient at optimizer step 3; its statistics '
            'are discarded and the factors held.') in out
    assert 'DivergenceHook: non-finite loss (nan) at iteration 5' in out
    diverged = json.loads((tmp_path / 'wd' / 'diverged.json').read_text())
    assert diverged['iter'] == 5 and diverged['reason'] == 'non-finite loss'
    # the checkpoint to go back to is from before the bad step
    assert [p.name for p in (tmp_path / 'wd').glob('iter_*')] == [
        'iter_3.pth']


# ------------------------------------------- one rank's bad batch (toy) --
def _nan_worker(rank, world, amp, bad_step, out):
    from mmengine.optim.optimizer import amp_optimizer_wrapper

    from agvm_mm import AGVMAmpOptimWrapper
    model = Toy(RETINANET)
    ddp = nn.parallel.DistributedDataParallel(model)
    agvm = dict(start_iter=0, interval=2)  # statistics at steps 0, 2, 4
    if amp:
        amp_optimizer_wrapper.is_cuda_available = lambda: True  # CPU, bf16
        wrapper = AGVMAmpOptimWrapper(
            optimizer=make_optimizer('AdamW', ddp.parameters()),
            dtype='bfloat16', agvm=agvm)
        wrapper.loss_scaler = torch.amp.GradScaler(
            'cpu', init_scale=2.0**10, growth_interval=10**6)
    else:
        wrapper = AGVMOptimWrapper(make_optimizer('SGD', ddp.parameters()),
                                   agvm=agvm)
    history = []
    for step, batch in enumerate(batches(6, world)):
        with wrapper.optim_context(ddp):
            loss = ddp(batch[rank])
        if step == bad_step and rank == world - 1:
            loss = loss * float('nan')
        wrapper.update_params(loss)
        history.append(dict(
            scales=wrapper.agvm_scales, steps=wrapper.agvm_steps,
            noise=wrapper.agvm_noise_scale(4 * world),
            loss_scale=wrapper.loss_scaler.get_scale() if amp else None,
            params=[p.detach().clone() for p in model.parameters()]))
    out[rank] = history


@pytest.mark.parametrize('world', [2, 3])
@pytest.mark.parametrize('amp', [False, True])
@pytest.mark.parametrize('bad_step,kind', [(2, 'statistics'),
                                           (1, 'ordinary')])
def test_one_ranks_nan_loss_same_decision_on_every_rank(world, amp, bad_step,
                                                        kind):
    """The last rank's loss is NaN at one step (a statistics step or an
    ordinary one). DDP's reduction carries it to every rank, so every rank
    decides alike: no rank hangs; every rank holds the same factors,
    statistics count, running averages (and loss scale) at every step;
    none of them is ever NaN. With AMP the loss scaler skips the step on
    every rank (weights unchanged, scale halved) and training goes on,
    statistics included. In fp32 the NaN reaches the weights on every rank
    (what mmengine's OptimWrapper does), AGVM discards the statistics of
    that step and of every later one, and keeps its factors."""
    out = mp.Manager().dict()
    run_ranks(_nan_worker, (world, amp, bad_step, out), world)
    ranks = [out[r] for r in range(world)]
    for step in range(6):
        first = ranks[0][step]
        for other in ranks[1:]:
            mine = other[step]
            assert mine['scales'] == first['scales']
            assert mine['steps'] == first['steps']
            assert mine['noise'] == first['noise']
            assert mine['loss_scale'] == first['loss_scale']
            for p, q in zip(mine['params'], first['params']):
                assert torch.equal(p.isnan(), q.isnan())
                assert torch.equal(p.nan_to_num(), q.nan_to_num())
        assert all(math.isfinite(s) for s in first['scales'].values())
        assert all(math.isfinite(v) for v in first['noise'].values())
    history = ranks[0]
    before, bad = history[bad_step - 1], history[bad_step]
    assert bad['scales'] == before['scales']
    assert bad['steps'] == before['steps']  # the bad step's statistics: none
    assert bad['noise'] == before['noise']
    finite = [all(torch.isfinite(p).all() for p in h['params'])
              for h in history]
    if amp:
        assert bad['loss_scale'] == before['loss_scale'] / 2
        assert all(torch.equal(p, q)
                   for p, q in zip(bad['params'], before['params']))
        assert all(finite)
        # statistics at steps 0 and 4, and at 2 unless it was the bad one
        assert history[-1]['steps'] == (2 if kind == 'statistics' else 3)
    else:
        assert finite[:bad_step] == [True] * bad_step
        assert not any(finite[bad_step:])
        assert history[-1]['steps'] == history[bad_step]['steps']
        assert history[-1]['scales'] == before['scales']
