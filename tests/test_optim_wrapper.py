"""AGVMOptimWrapper on one process (accumulation halves) and on 2-4 gloo
processes (rank halves), against the independent reference in toy.py."""
import copy
import time

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from agvm_mm import AGVMOptimWrapper
from tests.float_bounds import assert_factors_follow
from tests.toy import (FASTER_RCNN, RETINANET, Toy, batches, make_optimizer,
                       reference_run, run_ranks)

# Phi against the reference (max(1e-4 Phi, 1e-6)): both sides start from
# the same float32 gradients and differ by how they round the halves. For
# these data the worst-case rounding bound of each path (tests/
# float_bounds.py; the reference rounds its halves no more often than the
# fused path) adds up to at most 0.41 of that tolerance at the steps
# compared (one process, 2 ranks, and the last step for 3-4 ranks).
# The factors get no tolerance of their own (a fixed rel=1e-6 lies below
# the worst case of these roundings, up to 3e-6): they must follow from
# each step's Phi (assert_factors_follow). The parameters (rtol 1e-5, atol
# 1e-6): the runs differ only in the factors, ~1e-9 apart here, which
# mostly round to the same float32 lr * s: the parameters come out as the
# same bits; the tolerance leaves room for factors ~1e-7 apart at each of
# the <= 8 modulated steps (updates <= 0.083).


def phi_history(log):
    """Phi per module at each statistics step of a run_wrapper log."""
    return [v for i, (n, _, v) in enumerate(log)
            if n != (log[i - 1][0] if i else 0)]


def run_wrapper(names, kind, data, agvm, model=None, grouping='single',
                **kwargs):
    """Train ``Toy(names)`` under AGVMOptimWrapper. ``grouping``: one param
    group for everything (mmengine's default constructor), one per
    parameter (any paramwise_cfg), or one per module (our constructor)."""
    model = model or Toy(names)
    if grouping == 'single':
        groups = model.parameters()
    elif grouping == 'per_param':
        groups = [dict(params=[p]) for p in model.parameters()]
    else:
        groups = [dict(params=list(getattr(model, n).parameters()),
                       agvm_module=n) for n in names]
    wrapper = AGVMOptimWrapper(
        make_optimizer(kind, groups),
        accumulative_counts=len(data[0]), agvm=agvm, **kwargs)
    log = []
    for micro in data:
        for x in micro:
            with wrapper.optim_context(model):
                loss = model(x)
            wrapper.update_params(loss)
        log.append((wrapper.agvm_steps, wrapper.agvm_scales,
                    wrapper.agvm_variances))
    return model, wrapper, log


@pytest.mark.parametrize('names', [RETINANET, FASTER_RCNN])
@pytest.mark.parametrize('kind', ['SGD', 'AdamW'])
@pytest.mark.parametrize('micro,grouping', [(2, 'single'), (4, 'per_param'),
                                            (2, 'per_module')])
def test_single_process_matches_reference(names, kind, micro, grouping):
    data = batches(9, micro)
    agvm = dict(start_iter=1, interval=2)
    model, wrapper, log = run_wrapper(names, kind, data, agvm,
                                      grouping=grouping)
    ref = reference_run(names, kind, data, start=1, interval=2)
    assert wrapper.agvm_modules == list(names)
    assert wrapper.agvm_steps == len(ref['history']) == 4
    last = ref['history'][-1]
    assert wrapper.agvm_variances == pytest.approx(last['phi'], rel=1e-4,
                                                   abs=1e-6)
    assert_factors_follow(wrapper.agvm_scales, phi_history(log),
                          ref['scales'], [h['phi'] for h in ref['history']],
                          names)
    assert any(abs(s - 1) > 1e-4 for s in wrapper.agvm_scales.values())
    for p, q in zip(model.parameters(), ref['model'].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_refuses_single_process_without_two_estimates():
    opt = make_optimizer('SGD', Toy().parameters())
    with pytest.raises(ValueError, match='accumulative_counts'):
        AGVMOptimWrapper(opt)
    with pytest.raises(ValueError, match='even number'):
        AGVMOptimWrapper(opt, accumulative_counts=3)


def _lockstep(agvm, steps=6, micro=2):
    """Step an AGVM and a plain wrapper from identical states each step;
    return, per step, whether the parameters came out bit-identical."""
    model, plain_model = Toy(), Toy()
    agvm_w = AGVMOptimWrapper(make_optimizer('SGD', model.parameters()),
                              accumulative_counts=micro, agvm=agvm)
    plain = OptimWrapper(make_optimizer('SGD', plain_model.parameters()),
                         accumulative_counts=micro)
    same = []
    for batch in batches(steps, micro):
        plain_model.load_state_dict(model.state_dict())
        plain.optimizer.load_state_dict(
            copy.deepcopy(agvm_w.optimizer.state_dict()))
        for x in batch:
            for net, w in ((model, agvm_w), (plain_model, plain)):
                with w.optim_context(net):
                    loss = net(x)
                w.update_params(loss)
        same.append(all(torch.equal(p, q) for p, q in zip(
            model.parameters(), plain_model.parameters())))
    return same, agvm_w


def test_steps_outside_window_equal_optim_wrapper_bit_for_bit():
    same, wrapper = _lockstep(dict(start_iter=2, stop_iter=4, interval=1))
    # before start and after stop: identical; inside: modulated
    assert same[:2] == [True, True] and same[4:] == [True, True]
    assert same[2:4] == [False, False]
    assert wrapper.agvm_steps == 2


def test_measure_only_mode_equals_optim_wrapper():
    same, wrapper = _lockstep(dict(start_iter=0, interval=1, modulate=False))
    assert all(same) and wrapper.agvm_steps == 6
    assert any(s != 1.0 for s in wrapper.agvm_scales.values())


def test_start_stop_interval():
    data = batches(12, 2)
    _, _, log = run_wrapper(RETINANET, 'SGD', data,
                            dict(start_iter=3, stop_iter=10, interval=3))
    steps = [i for i, (n, *_) in enumerate(log)
             if n != (log[i - 1][0] if i else 0)]
    assert steps == [3, 6, 9]


def test_clip_grad_window():
    hub = MessageHub.get_current_instance()
    hub.log_scalars.pop('train/grad_norm', None)
    window = dict(start_iter=4, clip_grad_window=(1, 4))
    run_wrapper(RETINANET, 'SGD', batches(4, 2), window)
    # clipped (and logged) only on optimizer steps 1, 2, 3
    assert len(hub.get_scalar('train/grad_norm').data[0]) == 3
    # after the window no norm is taken: the logger would otherwise print
    # step 3's on every later iteration
    run_wrapper(RETINANET, 'SGD', batches(6, 2), window)
    assert 'train/grad_norm' not in hub.log_scalars


def test_each_statistics_step_is_published_once():
    """In the message hub from the micro-batch that ends it to the next
    backward: a hook's after_train_iter sees it in one iteration."""
    from agvm_mm.optim.published import published_statistics
    hub = MessageHub.get_current_instance()
    model = Toy()
    wrapper = AGVMOptimWrapper(make_optimizer('SGD', model.parameters()),
                               accumulative_counts=2,
                               agvm=dict(start_iter=0, interval=2))
    seen = []
    for micro in batches(4, 2):
        for x in micro:
            with wrapper.optim_context(model):
                loss = model(x)
            wrapper.update_params(loss)
            seen.append([s.step for s in published_statistics(hub)
                         if s.wrapper is wrapper])
    assert seen == [[], [0], [], [], [], [2], [], []]
    assert 'agvm_statistics' not in hub.state_dict()['runtime_info']


def test_state_dict_round_trip():
    data = batches(5, 2)
    _, wrapper, _ = run_wrapper(RETINANET, 'AdamW', data,
                                dict(start_iter=0, interval=2))
    state = wrapper.state_dict()
    assert state['agvm']['steps'] == 3
    fresh = AGVMOptimWrapper(
        make_optimizer('AdamW', Toy().parameters()), accumulative_counts=2,
        agvm=dict(start_iter=0, interval=2))
    fresh.load_state_dict(state)
    fresh.bind(Toy())
    assert fresh.agvm_scales == wrapper.agvm_scales
    assert fresh.agvm_steps == 3
    assert 'agvm' in state  # the caller's dict is not consumed


# ---------------------------------------------------------------- DDP ----
def _ddp_worker(rank, world, names, kind, data, agvm, out):
    model = Toy(names)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    wrapper = AGVMOptimWrapper(make_optimizer(kind, ddp.parameters()),
                               accumulative_counts=1, agvm=agvm)
    history = []
    for batch in data:  # batch = one micro-batch per rank
        with wrapper.optim_context(ddp):
            loss = ddp(batch[rank])
        wrapper.update_params(loss)
        if wrapper.agvm_steps > len(history):
            history.append(wrapper.agvm_variances)
    out[rank] = dict(
        scales=wrapper.agvm_scales,
        variances=wrapper.agvm_variances,
        history=history,
        steps=wrapper.agvm_steps,
        params=[p.detach().clone() for p in model.parameters()])


def run_ddp(world, names, kind, data, agvm):
    out = mp.Manager().dict()
    run_ranks(_ddp_worker, (world, names, kind, data, agvm, out), world)
    return [out[r] for r in range(world)]


STALL = 600  # seconds rank 1 sleeps


def _stall_rank_1(rank):
    if rank == 1:
        time.sleep(STALL)


def test_a_hung_rank_is_killed_at_the_deadline():
    """Every multi-process test runs through run_ranks: a hang fails that
    test in its own time and leaves no process behind (one left alive
    would keep pytest from exiting). Rank 1 stalls for STALL seconds (rank
    0 waits for it at the final barrier), so returning before STALL means
    run_ranks killed them at its deadline rather than waiting: how much
    sooner depends on the machine's load and is not asserted."""
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r'ranks \[0, 1\] of 2 did not'):
        run_ranks(_stall_rank_1, (), world=2, timeout=5)
    assert time.monotonic() - start < STALL
    assert not mp.active_children()


@pytest.mark.parametrize('kind', ['SGD', 'AdamW'])
def test_two_processes_equal_one_process_with_accumulation(kind):
    data = batches(7, 2)
    agvm = dict(start_iter=1, interval=2)
    ranks = run_ddp(2, FASTER_RCNN, kind, data, agvm)
    model, wrapper, log = run_wrapper(FASTER_RCNN, kind, data, agvm)
    for r in ranks:
        assert r['steps'] == wrapper.agvm_steps == 3
        assert_factors_follow(r['scales'], r['history'], wrapper.agvm_scales,
                              phi_history(log), FASTER_RCNN)
        # 1 - cos of nearly equal halves loses relative precision: abs too
        assert r['variances'] == pytest.approx(wrapper.agvm_variances,
                                               rel=1e-4, abs=1e-6)
        for p, q in zip(r['params'], model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # every rank holds identical factors and parameters
    assert ranks[0]['scales'] == ranks[1]['scales']
    assert all(torch.equal(p, q)
               for p, q in zip(ranks[0]['params'], ranks[1]['params']))


@pytest.mark.parametrize('world', [3, 4])
def test_odd_and_even_world_sizes(world):
    """Ranks [0, W//2) against the rest (1 vs 2 ranks for W=3): identical
    factors on every rank, equal to the reference; for W=4 also equal to
    one process accumulating 4 micro-batches."""
    data = batches(5, world)
    agvm = dict(start_iter=0, interval=2)
    ranks = run_ddp(world, RETINANET, 'AdamW', data, agvm)
    ref = reference_run(RETINANET, 'AdamW', data, start=0, interval=2)
    for r in ranks:
        assert r['scales'] == ranks[0]['scales']  # bit-identical
        assert r['variances'] == ranks[0]['variances']
        assert all(torch.equal(p, q)
                   for p, q in zip(r['params'], ranks[0]['params']))
    assert_factors_follow(ranks[0]['scales'], ranks[0]['history'],
                          ref['scales'], [h['phi'] for h in ref['history']],
                          RETINANET)
    assert ranks[0]['variances'] == pytest.approx(
        ref['history'][-1]['phi'], rel=1e-4, abs=1e-6)
    for p, q in zip(ranks[0]['params'], ref['model'].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    if world == 4:
        _, wrapper, log = run_wrapper(RETINANET, 'AdamW', data, agvm)
        assert_factors_follow(ranks[0]['scales'], ranks[0]['history'],
                              wrapper.agvm_scales, phi_history(log),
                              RETINANET)
