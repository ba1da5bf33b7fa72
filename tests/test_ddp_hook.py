"""The DDP communication hook of several processes (docs/algorithm.md §2):
DDP's default all-reduce bit for bit on ordinary steps, both halves from one
all-reduce per bucket on statistics steps, with the DDP settings users turn
on, under AMP, and composed with a hook the user registered first."""
import logging
from contextlib import contextmanager

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.logging import MMLogger
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from agvm_mm import AGVMOptimWrapper
from tests.float_bounds import (assert_factors_follow, fused_noise_bound,
                                 fused_phi_bound, gamma)
from tests.toy import (FASTER_RCNN, RETINANET, Toy, batches, make_optimizer,
                       reference_run, run_ranks)

DDP = nn.parallel.DistributedDataParallel


@contextmanager
def _log_messages():
    logger = MMLogger.get_current_instance()
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def _lockstep_worker(rank, world, data, out):
    """A plain DDP model and an AGVM one (measuring only) from the same
    state at every step: are their reduced gradients the same bits? And
    on every step within what two float32 sums of the same W terms
    ``g_r / W`` in any order may differ by: ``2 gamma(W) sum |g_r| / W``
    per element (the bound of tests/float_bounds.py)."""
    model, plain = Toy(), Toy()
    ddp, ddp_plain = DDP(model), DDP(plain)
    wrapper = AGVMOptimWrapper(
        make_optimizer('SGD', ddp.parameters()), accumulative_counts=1,
        agvm=dict(start_iter=0, interval=3, modulate=False))
    same = []
    for batch in data:
        plain.load_state_dict(model.state_dict())
        local = torch.autograd.grad(model(batch[rank]),
                                    list(model.parameters()))
        spread = [g.abs() for g in local]
        for t in spread:
            torch.distributed.all_reduce(t)
        with wrapper.optim_context(ddp):
            loss = ddp(batch[rank])
        wrapper.backward(loss)
        ddp_plain(batch[rank]).backward()
        same.append(all(torch.equal(p.grad, q.grad) for p, q in zip(
            model.parameters(), plain.parameters())))
        for p, q, t in zip(model.parameters(), plain.parameters(), spread):
            bound = 1.01 * 2 * gamma(world) * t / world
            assert ((p.grad - q.grad).abs() <= bound).all()
        wrapper.step()
        wrapper.zero_grad()
        plain.zero_grad()
    out[rank] = dict(same=same, steps=wrapper.agvm_steps,
                     hooked=wrapper.agvm_ddp_hooked)


@pytest.mark.parametrize('world', [2, 3])
def test_ordinary_steps_reduce_as_ddp_does_bit_for_bit(world):
    out = mp.Manager().dict()
    run_ranks(_lockstep_worker, (world, batches(7, world), out), world)
    for r in range(world):
        assert out[r]['hooked'] and out[r]['steps'] == 3  # steps 0, 3, 6
        same = out[r]['same']
        assert [same[i] for i in (1, 2, 4, 5)] == [True] * 4, same


@pytest.mark.parametrize('ddp_kwargs,counts', [
    (dict(), 2),  # DDP reduces at the cycle's last micro-batch
    (dict(find_unused_parameters=True), 1),
    (dict(gradient_as_bucket_view=True), 1),
    # (static_graph with accumulation fails inside torch's reducer with or
    # without AGVM: no_sync and a static graph do not go together)
    (dict(static_graph=True), 1),
])
def test_hook_with_ddp_settings_matches_reference(ddp_kwargs, counts):
    """Each statistics step's Phi within the worst-case rounding bound of
    Phi in float64 from the ranks' own gradients (tests/float_bounds.py),
    the same factors on every rank, within what their Phi allow of the
    reference's (``assert_factors_follow``), and the reference's parameters."""
    world, kind = 2, 'AdamW'
    data = batches(5, world * counts)
    agvm = dict(start_iter=0, interval=2)
    out = mp.Manager().dict()
    run_ranks(_history_worker, (world, kind, data, agvm, out, ddp_kwargs,
                                counts), world)
    ref = reference_run(FASTER_RCNN, kind, data, start=0, interval=2)
    got = out[0]
    assert got['hooked'] and len(got['history']) == 3
    assert out[1]['scales'] == got['scales']  # identical on all ranks
    _assert_within_bounds(out, world, kind)
    assert_factors_follow(got['scales'], got['history'], ref['scales'],
                          [h['phi'] for h in ref['history']], FASTER_RCNN)
    for p, q in zip(got['params'], ref['model'].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def _train(ddp, wrapper, data, rank, after_step=lambda: None):
    """This rank's micro-batch of each step, one optimizer step each."""
    for batch in data:
        with wrapper.optim_context(ddp):
            loss = ddp(batch[rank])
        wrapper.update_params(loss)
        after_step()


class WithUnusedHead(Toy):
    """bbox_head is in the model but never in the loss."""

    def forward(self, x):
        return (self.neck(self.backbone(x)) - 0.2).square().mean()


def _unused_worker(rank, world, data, out):
    model = WithUnusedHead()
    ddp = DDP(model, find_unused_parameters=True)
    wrapper = AGVMOptimWrapper(make_optimizer('SGD', ddp.parameters()),
                               accumulative_counts=1,
                               agvm=dict(start_iter=0, interval=1))

    def unused_stays_none():  # as DDP leaves a gradient unused everywhere
        assert all(p.grad is None for p in model.bbox_head.parameters())

    _train(ddp, wrapper, data, rank, unused_stays_none)
    out[rank] = dict(scales=wrapper.agvm_scales,
                     variances=wrapper.agvm_variances)


def test_a_module_unused_on_every_rank_keeps_its_factor():
    out = mp.Manager().dict()
    run_ranks(_unused_worker, (2, batches(3, 2), out), 2)
    assert out[0]['scales']['bbox_head'] == 1.0
    assert 'bbox_head' not in out[0]['variances']
    assert out[0]['scales']['neck'] != 1.0
    assert out[0]['scales'] == out[1]['scales']


def _amp_worker(rank, world, data, scale, out):
    from mmengine.optim.optimizer import amp_optimizer_wrapper

    from agvm_mm import AGVMAmpOptimWrapper
    amp_optimizer_wrapper.is_cuda_available = lambda: True  # CPU, bf16
    model = Toy(RETINANET)
    ddp = DDP(model)
    wrapper = AGVMAmpOptimWrapper(
        optimizer=make_optimizer('AdamW', ddp.parameters()),
        dtype='bfloat16', agvm=dict(start_iter=0, interval=1))
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=scale,
                                               growth_interval=10**6)
    _train(ddp, wrapper, data, rank)
    out[rank] = dict(hooked=wrapper.agvm_ddp_hooked,
                     steps=wrapper.agvm_steps,
                     variances=wrapper.agvm_variances,
                     noise=wrapper.agvm_gradient_noise)


def test_hook_under_amp_takes_statistics_of_unscaled_gradients():
    """The buckets hold loss-scaled gradients: with loss scales 1 and 2^12
    (powers of two scale exactly) the Adam rule's Phi and the raw
    |G|^2 and tr(Sigma) estimates are the same."""
    data = batches(3, 2)
    runs = {}
    for scale in (1.0, 2.0**12):
        out = mp.Manager().dict()
        run_ranks(_amp_worker, (2, data, scale, out), 2)
        assert out[0]['hooked'] and out[0]['steps'] == 3
        runs[scale] = out[0]
    one, big = runs[1.0], runs[2.0**12]
    # a power of two scales every float exactly (no overflow or underflow
    # here), and the mixing divides it out exactly: the same values
    assert big['variances'] == one['variances']
    assert big['noise'] == one['noise']


def _composed_worker(rank, world, data, out):
    model = Toy(RETINANET)
    ddp = DDP(model)
    ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    wrapper = AGVMOptimWrapper(make_optimizer('SGD', ddp.parameters()),
                               accumulative_counts=1,
                               agvm=dict(start_iter=0, interval=2))
    fp16 = []
    for batch in data:
        with wrapper.optim_context(ddp):
            loss = ddp(batch[rank])
        wrapper.backward(loss)
        # ordinary steps: the user's hook reduced in fp16
        fp16.append(all(torch.equal(p.grad, p.grad.half().float())
                        for p in model.parameters()))
        wrapper.step()
        wrapper.zero_grad()
    out[rank] = dict(hooked=wrapper.agvm_ddp_hooked, fp16=fp16,
                     steps=wrapper.agvm_steps,
                     variances=wrapper.agvm_variances)


def test_a_hook_registered_first_is_composed_with():
    out = mp.Manager().dict()
    run_ranks(_composed_worker, (2, batches(4, 2), out), 2)
    got = out[0]
    assert not got['hooked'] and got['steps'] == 2  # steps 0 and 2
    assert got['fp16'][1] and got['fp16'][3]  # its hook on ordinary steps
    assert set(got['variances']) == set(RETINANET)


def test_a_hook_registered_first_is_named_in_the_log():
    """The log line says which hook AGVM composes with (one process
    stands in for a rank: the hook check happens before any collective)."""
    import datetime
    import os

    import torch.distributed as dist

    from agvm_mm.optim.estimates import RankHalves
    from tests.toy import free_port
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    dist.init_process_group('gloo', rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=60))
    try:
        ddp = DDP(Toy())
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
        halves = RankHalves(2, 0)
        with _log_messages() as messages:
            halves.attach(ddp)
    finally:
        dist.destroy_process_group()
    assert not halves.hooked and halves.skips_ddp_reduction
    assert any('fp16_compress_hook' in m and 'composes' in m
               for m in messages), messages


def test_a_model_without_ddp_is_refused_with_the_config_key():
    from agvm_mm.optim.estimates import RankHalves
    with pytest.raises(TypeError, match='model_wrapper_cfg'):
        RankHalves(2, 0).attach(Toy())

    class FullyShardedDataParallel(nn.Module):

        def no_sync(self):
            pass

    with pytest.raises(TypeError, match='FullyShardedDataParallel'):
        RankHalves(2, 0).attach(FullyShardedDataParallel())


def _group_worker(rank, world, data, out):
    """DDP built with a process group of its own: of all ranks (the hook
    reduces in it), and of rank 0 only (refused)."""
    import torch.distributed as dist

    from agvm_mm.optim.estimates import RankHalves
    runs = {}
    for name, group in (('default', None),
                        ('own', dist.new_group(list(range(world))))):
        model = Toy()
        ddp = DDP(model, process_group=group)
        wrapper = AGVMOptimWrapper(make_optimizer('SGD', ddp.parameters()),
                                   accumulative_counts=1,
                                   agvm=dict(start_iter=0, interval=1))
        _train(ddp, wrapper, data, rank)
        runs[name] = (wrapper.agvm_ddp_hooked, wrapper.agvm_steps,
                      wrapper.agvm_scales)
    part = dist.new_group([0])

    class OnRankZero(nn.Module):
        process_group = part

        def no_sync(self):
            pass

    try:
        RankHalves(world, rank).attach(OnRankZero())
        refused = ''
    except ValueError as error:
        refused = str(error)
    out[rank] = dict(runs=runs, refused=refused)


def test_ddp_with_its_own_process_group():
    world = 2
    out = mp.Manager().dict()
    run_ranks(_group_worker, (world, batches(3, world), out), world)
    for r in range(world):
        runs = out[r]['runs']
        assert runs['own'][:2] == runs['default'][:2] == (True, 3)
        assert runs['own'][2] == pytest.approx(runs['default'][2],
                                               rel=1e-12)
        assert 'model_wrapper_cfg' in out[r]['refused']
        assert 'process_group=None' in out[r]['refused']


def _history_worker(rank, world, kind, data, agvm, out, ddp_kwargs=None,
                    counts=None):
    """Trains, and keeps what each statistics step's Phi was computed from:
    the optimizer's exp_avg_sq before the step and the float32 gradients
    the estimates were made of, as backward computes them (of the loss
    divided by the accumulation count, as mmengine scales it): with ranks,
    each rank's accumulated gradient (micro-batches ``rank * counts`` to
    ``rank * counts + counts - 1``, summed in order as ``.grad`` sums
    them); on one process, each micro-batch's."""
    model = Toy(FASTER_RCNN)
    ddp = DDP(model, **(ddp_kwargs or {})) if world > 1 else model
    counts = counts or (1 if world > 1 else len(data[0]))
    optimizer = make_optimizer(kind, ddp.parameters())
    wrapper = AGVMOptimWrapper(optimizer, accumulative_counts=counts,
                               agvm=agvm)
    params = list(model.parameters())
    history, inputs = [], []
    for batch in data:
        micro = batch[rank * counts:(rank + 1) * counts] if world > 1 \
            else batch
        grads = [torch.autograd.grad(model(x) / counts, params)
                 for x in micro]
        if world > 1:  # the rank's .grad at the cycle's end
            total = list(grads[0])
            for more in grads[1:]:
                total = [t + g for t, g in zip(total, more)]
            grads = [total]
        state = [optimizer.state.get(p, {}).get('exp_avg_sq') for p in params]
        state = [None if v is None else v.clone() for v in state]
        for x in micro:
            with wrapper.optim_context(ddp):
                loss = ddp(x)
            wrapper.update_params(loss)
        if wrapper.agvm_steps > len(history):
            history.append(wrapper.agvm_variances)
            inputs.append(dict(grads=grads, exp_avg_sq=state,
                               noise=wrapper.agvm_gradient_noise))
    out[rank] = dict(history=history, inputs=inputs,
                     hooked=wrapper.agvm_ddp_hooked,
                     scales=wrapper.agvm_scales,
                     params=[p.detach().clone() for p in model.parameters()])


def _module_grads(out, world, step):
    """module -> one flat gradient per contributor (the ranks, or the
    micro-batches of one process) of a statistics step, and its slice of
    the parameters."""
    inputs = [out[r]['inputs'][step] for r in range(world)]
    grads = (inputs[0]['grads'] if world == 1 else
             [i['grads'][0] for i in inputs])  # per contributor, per param
    per_module = len(grads[0]) // len(FASTER_RCNN)
    for m, name in enumerate(FASTER_RCNN):
        part = slice(m * per_module, (m + 1) * per_module)
        yield name, part, [torch.cat([t.reshape(-1) for t in g[part]])
                           for g in grads]


def _phi_bounds(out, world, kind, step):
    """Per module: Phi in float64 from what the step's statistics were
    computed from, and the float32 path's worst-case error
    (tests/float_bounds.py)."""
    inputs = [out[r]['inputs'][step] for r in range(world)]
    result = {}
    for name, part, flat in _module_grads(out, world, step):
        adam = None
        if kind != 'SGD':
            v = inputs[0]['exp_avg_sq'][part]
            v = None if v[0] is None else torch.cat(
                [t.reshape(-1) for t in v])
            adam = (v, 0.999, 1e-8)  # torch's AdamW defaults
        result[name] = fused_phi_bound(flat, ranks=world > 1, adam=adam)
    return result


def _assert_within_bounds(out, world, kind):
    """Rank 0's Phi and noise estimates (the ones every rank uses) of every
    statistics step within the float32 path's worst-case error of float64
    (the noise estimates hold the halves' shares of the batch)."""
    for step, phi in enumerate(out[0]['history']):
        for name, (ref, bound) in _phi_bounds(out, world, kind,
                                              step).items():
            assert abs(phi[name] - ref) <= bound, (step, name, phi[name],
                                                   ref, bound)
        noise = out[0]['inputs'][step]['noise']
        for name, _, flat in _module_grads(out, world, step):
            for got, (ref, bound) in zip(
                    noise[name], fused_noise_bound(flat, ranks=world > 1)):
                assert abs(got - ref) <= bound, (step, name, got, ref, bound)


@pytest.mark.parametrize('world', [1, 2, 3, 4])
@pytest.mark.parametrize('kind', ['SGD', 'AdamW'])
def test_fused_statistics_equal_float64_and_beat_the_per_tensor_path(
        world, kind):
    """1 process (4 accumulated micro-batches, halves of 2) and 2-4 ranks.

    - Every statistics step's Phi lies within the worst-case rounding bound
      of the float32 path (tests/float_bounds.py derives it from u = 2^-24,
      the number of ranks or micro-batches, the elements, and the
      conditioning of 1 - cos: the relative error may grow as
      1 / sqrt(Phi)) of Phi computed in float64 from the very gradients and
      exp_avg_sq that step used. No fixed tolerance: one of rel=1e-6 failed
      on another CPU (AdamW, 4 ranks, rpn_head, Phi 0.0113, off by 1.06e-6
      relative) while the code was right.
    - Against the independent float64 reference of the spec (its own
      trajectory, tests/toy.py), the fused path's largest relative error
      is no larger than that of the per-tensor path of agvm_mm <= 0.1
      (three float32 dot products per tensor, up to 1.5e-4 here).
    - The factors differ from the reference's by no more than their Phi
      do (``assert_factors_follow``); the parameters agree to rtol 1e-5 (168 u:
      6 float32 updates, each rounding the parameter and carrying the
      halves' and the factors' relative differences, which are below
      1e-5 here, times the learning rate).
    """
    data = batches(6, 4 if world == 1 else world)
    agvm = dict(start_iter=0, interval=2)
    if world == 1:
        out = {}
        _history_worker(0, 1, kind, data, agvm, out)
    else:
        out = mp.Manager().dict()
        run_ranks(_history_worker, (world, kind, data, agvm, out), world)
    got = out[0]
    exact, old = (reference_run(FASTER_RCNN, kind, data, start=0, interval=2,
                                float32_dots=f32) for f32 in (False, True))
    assert len(got['history']) == len(exact['history']) == 3
    _assert_within_bounds(out, world, kind)
    errors = {'fused': [], 'per tensor': []}
    for phi, ref, per_tensor in zip(got['history'], exact['history'],
                                    old['history']):
        for path, values in (('fused', phi), ('per tensor', per_tensor['phi'])):
            errors[path] += [abs(values[m] / ref['phi'][m] - 1) for m in phi]
    assert max(errors['fused']) <= max(errors['per tensor']), errors
    assert_factors_follow(got['scales'], got['history'], exact['scales'],
                          [h['phi'] for h in exact['history']], FASTER_RCNN)
    for p, q in zip(got['params'], exact['model'].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('world,counts', [(2, 2), (5, 1), (5, 2), (7, 1),
                                          (7, 2), (8, 1), (8, 2)])
def test_many_ranks_match_the_float64_reference(world, counts):
    """World sizes 2-8 with accumulation 1 and 2 (2 cores, a tiny model,
    3 steps, statistics at 0 and 2; the SGD rule without accumulation, the
    Adam rule with it). Odd sizes give unequal halves (ranks [0, W//2) and
    [W//2, W)): Phi and the noise estimates (which hold the halves' shares
    of the batch) within the worst-case rounding bound of float64 from the
    ranks' own gradients, every rank's factors the same and within what
    their Phi allow of the spec's reference, and its parameters."""
    kind = 'SGD' if counts == 1 else 'AdamW'
    data = batches(3, world * counts)
    agvm = dict(start_iter=0, interval=2)
    out = mp.Manager().dict()
    run_ranks(_history_worker, (world, kind, data, agvm, out, None, counts),
              world, timeout=600)
    ref = reference_run(FASTER_RCNN, kind, data, start=0, interval=2,
                        half_a=world // 2 * counts)
    got = out[0]
    assert got['hooked'] and len(got['history']) == 2
    assert all(out[r]['scales'] == got['scales'] for r in range(world))
    _assert_within_bounds(out, world, kind)
    assert_factors_follow(got['scales'], got['history'], ref['scales'],
                          [h['phi'] for h in ref['history']], FASTER_RCNN)
    for p, q in zip(got['params'], ref['model'].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
