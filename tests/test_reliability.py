"""Bad configs fail at build time with the key and the fix; NaN/inf and
unused modules never corrupt the factors; AMP statistics are unscaled."""
import contextlib
import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper

from agvm_mm import AGVMAmpOptimWrapper, AGVMOptimWrapper
from tests.float_bounds import (angle_bound, factor_bound, fused_phi_bound,
                                preconditioned)
from tests.toy import RETINANET, Toy, batches, make_optimizer
from tools.runner_setup import enable_amp


def build(agvm=None, counts=2, optimizer=None, model=None):
    model = model or Toy()
    wrapper = AGVMOptimWrapper(
        optimizer or make_optimizer('SGD', model.parameters()),
        accumulative_counts=counts, agvm=agvm or {})
    return wrapper, model


@pytest.mark.parametrize('agvm,match', [
    (dict(interval=0), r'agvm.interval=0 .*integer >= 1'),
    (dict(momentum=1.0), r'agvm.momentum=1.0 .*\[0, 1\)'),
    (dict(momentum=-0.1), r'agvm.momentum'),
    (dict(clamp=(0.0, 10.0)), r'agvm.clamp=.*0 < lo <= hi'),
    (dict(clamp=(2.0, 1.0)), r'agvm.clamp'),
    (dict(start_iter=10, stop_iter=5), r'agvm.start_iter=10 .*stop_iter=5'),
    (dict(start_iter=-1), r'agvm.start_iter'),
    (dict(clip_grad_window=(5, 2)), r'agvm.clip_grad_window'),
    (dict(rule='lamb'), r'agvm.rule'),
    (dict(modules='backbone'), r'agvm.modules'),
    (dict(intervall=3), r"unknown keys \['intervall'\]"),
])
def test_bad_agvm_values_are_refused(agvm, match):
    with pytest.raises((ValueError, KeyError), match=match):
        build(agvm)


def test_bad_module_names_and_anchor_are_refused():
    wrapper, model = build(dict(modules=['backbone', 'decode_head']))
    with pytest.raises(ValueError, match=r"agvm.modules: \['decode_head'\]"):
        wrapper.bind(model)
    wrapper, model = build(dict(anchor='rpn_head'))
    with pytest.raises(ValueError, match=r"agvm.anchor='rpn_head'.*"
                       r"\['backbone', 'neck', 'bbox_head'\]"):
        wrapper.bind(model)
    model = Toy()
    model.backbone.requires_grad_(False)  # anchor without trainable params
    wrapper, _ = build(model=model)
    with pytest.raises(ValueError, match='agvm.anchor'):
        wrapper.bind(model)


def test_one_process_needs_even_accumulation():
    with pytest.raises(ValueError, match='accumulative_counts=1.*>= 2 '
                       r'processes.*even number'):
        build(counts=1)
    with pytest.raises(ValueError, match='accumulative_counts=3'):
        build(counts=3)


def test_unknown_optimizer_rule_is_refused_unless_set():

    class Fancy(torch.optim.Optimizer):

        def __init__(self, params):
            super().__init__(params, dict(lr=0.1))

        def step(self, closure=None):
            pass

    params = list(Toy().parameters())
    with pytest.raises(ValueError, match=r"agvm.rule.*Fancy.*rule='sgd'"):
        build(optimizer=Fancy(params))
    build(dict(rule='sgd'), optimizer=Fancy(params))


def test_sharded_optimizer_is_refused():

    class ZeroRedundancyOptimizer(torch.optim.SGD):
        pass

    with pytest.raises(TypeError, match='optim_wrapper.optimizer'):
        build(optimizer=ZeroRedundancyOptimizer(Toy().parameters(), lr=0.1))


def test_amp_flag_maps_to_agvm_amp_wrapper():
    from mmengine.config import Config
    cfg = Config(dict(optim_wrapper=dict(type='AGVMOptimWrapper')))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AGVMAmpOptimWrapper'
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match='--amp'):
        enable_amp(Config(dict(optim_wrapper=dict(type='Custom'))))


# ------------------------------------------------------------- numerics --
def test_non_finite_gradient_discards_statistics():
    data = batches(4, 2)
    model = Toy()
    wrapper, _ = build(dict(start_iter=0, interval=1), model=model)
    poison = {'on': False}
    model.bbox_head[2].weight.register_hook(
        lambda g: g * float('inf') if poison['on'] else g)
    for step, micro in enumerate(data):
        poison['on'] = step == 2
        for x in micro:
            with wrapper.optim_context(model):
                loss = model(x)
            wrapper.update_params(loss)
        if step == 1:
            held = (wrapper.agvm_scales, wrapper.agvm_variances,
                    wrapper.agvm_steps)
        if step == 2:
            assert (wrapper.agvm_scales, wrapper.agvm_variances,
                    wrapper.agvm_steps) == held
    # fp32 has no loss scaler: the inf reaches the parameters as it would
    # with OptimWrapper, but the factors never take a non-finite value
    assert wrapper.agvm_steps == held[2]
    assert all(math.isfinite(v) for v in wrapper.agvm_scales.values())


def test_unused_module_keeps_its_factor_without_nan():

    class SometimesUnused(Toy):
        use_head = True

        def forward(self, x):
            feat = self.neck(self.backbone(x))
            out = (feat - 1).square().mean()
            if self.use_head:
                out = out + (self.bbox_head(feat) - 0.5).square().mean()
            return out

    model = SometimesUnused()
    wrapper, _ = build(dict(start_iter=0, interval=1), model=model)
    for step, micro in enumerate(batches(4, 2)):
        model.use_head = step != 2
        if step == 2:
            held = wrapper.agvm_scales['bbox_head']
            phi = wrapper.agvm_variances['bbox_head']
        for x in micro:
            with wrapper.optim_context(model):
                loss = model(x)
            wrapper.update_params(loss)
        if step == 2:
            assert wrapper.agvm_scales['bbox_head'] == held
            assert wrapper.agvm_variances['bbox_head'] == phi
            assert wrapper.agvm_scales['neck'] != 1.0
    for value in [*wrapper.agvm_scales.values(),
                  *wrapper.agvm_variances.values()]:
        assert math.isfinite(value)


@pytest.fixture
def cpu_amp(monkeypatch):
    """AmpOptimWrapper insists on an accelerator; on CPU let it build and
    give it torch's CPU GradScaler, so the unscale logic runs for real."""
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)

    def make(model, dtype, init_scale=2.0**14):
        wrapper = AGVMAmpOptimWrapper(
            optimizer=make_optimizer('AdamW', model.parameters()),
            accumulative_counts=2, dtype=dtype,
            agvm=dict(start_iter=0, interval=1))
        wrapper.loss_scaler = torch.amp.GradScaler('cpu',
                                                   init_scale=init_scale)
        return wrapper

    return make


def train_recorded(model, wrapper, data):
    """Train ``model`` under ``wrapper`` (2 micro-batches a step, Phi at
    every step) and keep, per step, its Phi and what they were computed
    from: each micro-batch's gradient as the wrapper's backward computes it
    (of the loss over the accumulation count, in the wrapper's autocast,
    through its loss scale and back, which is exact for a power of 2) and
    the optimizer's exp_avg_sq before the step."""
    from mmengine.runner.amp import autocast
    params = list(model.parameters())
    scaler = getattr(wrapper, 'loss_scaler', None)
    steps = []
    for micro in data:
        grads = []
        for x in micro:
            with (autocast(dtype=wrapper.cast_dtype) if scaler is not None
                  else contextlib.nullcontext()):
                loss = model(x)
            loss = loss / len(micro)
            if scaler is None:
                grads.append(torch.autograd.grad(loss, params))
            else:
                scale = scaler.get_scale()
                grads.append([g / scale for g in torch.autograd.grad(
                    scaler.scale(loss), params)])
        state = [wrapper.optimizer.state.get(p, {}).get('exp_avg_sq')
                 for p in params]
        steps.append(dict(
            grads=[[g.detach().cpu() for g in gs] for gs in grads],
            state=[None if v is None else v.detach().cpu().clone()
                   for v in state]))
        for x in micro:
            with wrapper.optim_context(model):
                loss = model(x)
            wrapper.update_params(loss)
        steps[-1]['phi'] = wrapper.agvm_variances
    return steps


def _module_inputs(step, model, name):
    """One module's flat gradient per micro-batch and flat exp_avg_sq."""
    index = {id(p): i for i, p in enumerate(model.parameters())}
    ids = [index[id(p)] for p in getattr(model, name).parameters()]
    v = [step['state'][i] for i in ids]
    return ([torch.cat([gs[i].reshape(-1) for i in ids])
             for gs in step['grads']],
            None if v[0] is None else torch.cat([t.reshape(-1) for t in v]))


def _preconditioned_halves(grads, v, beta2=0.999, eps=1e-8):
    """In float64, the Adam rule's halves of 2 micro-batches (torch's AdamW
    defaults): half A is 2 x the first micro-batch's gradient of the loss
    over 2, half B the second's (docs/algorithm.md §2-3)."""
    return [preconditioned(2 * g.double(), v, beta2, eps) for g in grads]


def amp_phi_bounds(model, fp32_step, amp_step, names):
    """Per module, for one statistics step of an fp32 and an AMP run:

    - ``own``: ``(Phi, bound)``: Phi in float64 from the AMP run's own
      gradients and exp_avg_sq, and how far the float32 path may lie from
      it (tests/float_bounds.py);
    - ``apart``: how far the two runs' Phi may lie apart: each one's
      ``own`` bound, plus how far the float64 Phi of the two runs' halves
      can differ. Each AMP half lies within a relative ``e`` (in norm) of
      the fp32 one, so it points within ``asin(e)`` of it: the angle
      between the halves moves by at most ``D = asin(e_A) + asin(e_B)``,
      ``1 - cos`` by at most ``sin(theta) D + D^2 / 2``; ``e`` is measured
      on the two runs' halves side by side (autocast's rounding and the
      trajectories the runs took), not assumed. Plus 1e-12 for the float64
      rounding of these halves (~100 u of 2**-53 at most).
    """
    out = {}
    for name in names:
        g32, v32 = _module_inputs(fp32_step, model, name)
        g16, v16 = _module_inputs(amp_step, model, name)
        phi32, bound32 = fused_phi_bound(g32, ranks=False,
                                         adam=(v32, 0.999, 1e-8))
        phi16, bound16 = fused_phi_bound(g16, ranks=False,
                                         adam=(v16, 0.999, 1e-8))
        e_a, e_b = (float((u16 - u32).norm() / u32.norm())
                    for u32, u16 in zip(_preconditioned_halves(g32, v32),
                                        _preconditioned_halves(g16, v16)))
        assert max(e_a, e_b) < 1, (name, e_a, e_b)
        out[name] = dict(own=(phi16, bound16),
                         apart=bound32 + bound16 +
                         angle_bound(phi32, e_a, e_b) + 1e-12)
    return out


def check_amp_against_fp32(model, fp32_steps, fp32_scales, amp_steps,
                           amp_scales, names):
    """The AMP run's Phi at every step within the float32 rounding bound of
    Phi from its own (unscaled) gradients; its Phi and factors within what
    the two runs' gradients allow of the fp32 run's (:func:`amp_phi_bounds`,
    :func:`~tests.float_bounds.factor_bound`).
    ``model``: either run's model (for the module of each parameter)."""
    apart = []
    for f_step, a_step in zip(fp32_steps, amp_steps):
        bounds = amp_phi_bounds(model, f_step, a_step, names)
        for name, bound in bounds.items():
            phi, own = bound['own']
            assert abs(a_step['phi'][name] - phi) <= own, (name, own)
            assert abs(a_step['phi'][name] - f_step['phi'][name]) <= \
                bound['apart'], (name, bound['apart'])
        apart.append({n: b['apart'] for n, b in bounds.items()})
    allowed = factor_bound([s['phi'] for s in fp32_steps], apart, names)
    assert amp_scales[names[0]] == fp32_scales[names[0]] == 1.0
    for name, bound in allowed.items():
        assert abs(amp_scales[name] - fp32_scales[name]) <= bound, name


def test_amp_statistics_are_unscaled_and_match_fp32(cpu_amp):
    """bf16 autocast (mmengine allows only bf16 on CPU; fp16 takes the same
    path on a GPU) with a loss scaler. The Adam-type statistics are not
    scale-invariant, yet a loss scale of 2**14 gives the same bits as no
    scaling (every product by a power of two, and by its inverse, is exact
    while nothing overflows), and they match fp32 as closely as the
    arithmetic allows: each step's Phi within the float32 rounding bound of
    Phi from the AMP run's own gradients, and within that plus what the two
    runs' gradients differ by of the fp32 run's Phi, the factors
    accordingly (:func:`check_amp_against_fp32`: no fixed tolerance, which
    a CPU with other bf16 kernels could break)."""
    data = batches(4, 2)
    model = Toy()
    fp32_wrapper = AGVMOptimWrapper(
        make_optimizer('AdamW', model.parameters()), accumulative_counts=2,
        agvm=dict(start_iter=0, interval=1))
    fp32 = train_recorded(model, fp32_wrapper, data)
    runs = {}
    for init_scale in (2.0**14, 1.0):
        model = Toy()
        amp = cpu_amp(model, 'bfloat16', init_scale)
        steps = train_recorded(model, amp, data)
        assert amp.loss_scaler.get_scale() == init_scale  # no overflow
        assert amp.agvm_steps == fp32_wrapper.agvm_steps == 4
        runs[init_scale] = (model, amp, steps)
    (model, scaled, steps), (_, unscaled, _) = runs[2.0**14], runs[1.0]
    assert scaled.agvm_variances == unscaled.agvm_variances
    assert scaled.agvm_scales == unscaled.agvm_scales
    check_amp_against_fp32(model, fp32, fp32_wrapper.agvm_scales, steps,
                           scaled.agvm_scales, list(RETINANET))


def test_amp_overflow_step_skipped_by_scaler_and_factors_held(cpu_amp):
    model = Toy()
    amp = cpu_amp(model, 'bfloat16', init_scale=2.0**14)
    data = batches(3, 2)
    for step, micro in enumerate(data):
        if step == 2:
            held = amp.agvm_scales
            before = [p.detach().clone() for p in model.parameters()]
            scale = amp.loss_scaler.get_scale()
            handle = model.neck[0].weight.register_hook(
                lambda g: g * float('inf'))
        for x in micro:
            with amp.optim_context(model):
                loss = model(x)
            amp.update_params(loss)
    handle.remove()
    assert amp.agvm_scales == held
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert amp.loss_scaler.get_scale() == scale / 2  # the scaler backed off
