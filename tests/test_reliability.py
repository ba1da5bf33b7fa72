"""Bad configs fail at build time with the key and the fix; NaN/inf and
unused modules never corrupt the factors; AMP statistics are unscaled."""
import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper

from agvm_mm import AGVMAmpOptimWrapper, AGVMOptimWrapper
from tests.test_optim_wrapper import run_wrapper
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


def test_amp_statistics_are_unscaled_and_match_fp32(cpu_amp):
    """bf16 autocast (mmengine allows only bf16 on CPU; fp16 takes the same
    path on a GPU) with a loss scaler. The Adam-type statistics are not
    scale-invariant, yet a loss scale of 2**14 gives the same values as no
    scaling (powers of two scale exactly), and both match fp32 up to bf16's
    precision."""
    data = batches(4, 2)
    _, fp32, _ = run_wrapper(RETINANET, 'AdamW', data,
                             dict(start_iter=0, interval=1))
    runs = {}
    for init_scale in (2.0**14, 1.0):
        model = Toy()
        amp = cpu_amp(model, 'bfloat16', init_scale)
        for micro in data:
            for x in micro:
                with amp.optim_context(model):
                    loss = model(x)
                amp.update_params(loss)
        assert amp.loss_scaler.get_scale() == init_scale  # no overflow
        assert amp.agvm_steps == fp32.agvm_steps == 4
        runs[init_scale] = amp
    scaled, unscaled = runs[2.0**14], runs[1.0]
    assert scaled.agvm_variances == pytest.approx(unscaled.agvm_variances,
                                                  rel=1e-6)
    assert scaled.agvm_scales == pytest.approx(unscaled.agvm_scales, rel=1e-9)
    assert scaled.agvm_variances == pytest.approx(fp32.agvm_variances,
                                                  rel=0.1)
    assert scaled.agvm_scales == pytest.approx(fp32.agvm_scales, rel=1e-2)


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
