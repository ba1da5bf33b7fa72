"""Tests of agvm_mm.optimizers (TimmLARS, TimmLAMB, PMDLAMB).

The references below are written from the published update rules (LARS:
You et al. 2017 with timm's placement of lr; LAMB: You et al. 2019 with
Adam bias correction; PMD-LAMB: LAMB plus the moment decay documented in
``agvm_mm/optimizers/pmd_lamb.py``), independently of timm's code.
"""
import copy
import inspect
import io
from typing import Dict, List, Optional

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import OPTIMIZERS, DefaultScope

from agvm_mm.optimizers import PMDLAMB, TimmLAMB, TimmLARS
from agvm_mm.optimizers.lamb import Lamb
from agvm_mm.optimizers.lars import Lars

# float64 (u = 2**-53 = 1.1e-16) everywhere: a step is a few dozen
# roundings of well-conditioned terms, so optimizer and reference agree to
# ~1e-14 relative after 8 steps, 1e4 below the rtol 1e-9 / 1e-10 used here
# (and atol 1e-12 covers elements near 0, off by ~1e-16 absolutely)
DTYPE = torch.float64


def _foreach_values(cls: type) -> List[Optional[bool]]:
    """Test timm's single- and multi-tensor paths where it has both."""
    has = 'foreach' in inspect.signature(cls.__init__).parameters
    return [False, True] if has else [None]


def _make_params() -> List[nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [
        nn.Parameter(torch.randn(3, 4, generator=gen, dtype=DTYPE)),
        nn.Parameter(torch.randn(5, generator=gen, dtype=DTYPE)),
    ]


def _set_grads(params: List[torch.Tensor], step: int) -> None:
    """Deterministic gradients that also depend on the current weights."""
    gen = torch.Generator().manual_seed(100 + step)
    for p in params:
        noise = torch.randn(p.shape, generator=gen, dtype=DTYPE)
        p.grad = noise + 0.1 * p.detach()


def _kw(foreach: Optional[bool]) -> Dict[str, bool]:
    return {} if foreach is None else dict(foreach=foreach)


# --------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------
def lars_reference(w: torch.Tensor, g: torch.Tensor,
                   buf: Optional[torch.Tensor], lr: float, momentum: float,
                   wd: float, eta: float, eps: float = 1e-8):
    """One LARS step; lr applied to the update, not to the buffer."""
    if wd != 0:
        w_norm, g_norm = w.norm(), g.norm()
        ratio = eta * w_norm / (g_norm + wd * w_norm + eps)
        if w_norm == 0 or g_norm == 0:
            ratio = torch.ones_like(ratio)
        g = ratio * (g + wd * w)
    buf = g.clone() if buf is None else momentum * buf + g
    return w - lr * buf, buf


def lamb_reference(w: torch.Tensor, g: torch.Tensor, m: torch.Tensor,
                   v: torch.Tensor, t: int, lr: float, wd: float,
                   betas=(0.9, 0.999), eps: float = 1e-6):
    """One LAMB step with Adam bias correction and trust ratio |w|/|u|."""
    b1, b2 = betas
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    update = m_hat / (v_hat.sqrt() + eps) + wd * w
    if wd != 0:
        w_norm, u_norm = w.norm(), update.norm()
        if w_norm > 0 and u_norm > 0:
            update = update * (w_norm / u_norm)
    return w - lr * update, m, v


# --------------------------------------------------------------------------
# rules
# --------------------------------------------------------------------------
@pytest.mark.parametrize('foreach', _foreach_values(Lars))
@pytest.mark.parametrize('wd', [0.0, 0.05])
def test_lars_matches_reference(foreach, wd):
    params = _make_params()
    lr, mom, eta = 0.5, 0.9, 0.02
    opt = TimmLARS(
        params, lr=lr, momentum=mom, weight_decay=wd, trust_coeff=eta,
        **_kw(foreach))
    ref = [(p.detach().clone(), None) for p in params]
    for step in range(3):
        _set_grads(params, step)
        grads = [p.grad.clone() for p in params]
        opt.step()
        ref = [
            lars_reference(w, g, buf, lr, mom, wd, eta)
            for (w, buf), g in zip(ref, grads)
        ]
        for p, (w, buf) in zip(params, ref):
            torch.testing.assert_close(p.detach(), w, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(
                opt.state[p]['momentum_buffer'], buf, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('foreach', _foreach_values(Lamb))
@pytest.mark.parametrize('wd', [0.0, 0.01])
def test_lamb_matches_reference(foreach, wd):
    params = _make_params()
    lr = 0.05
    opt = TimmLAMB(params, lr=lr, weight_decay=wd, **_kw(foreach))
    assert opt.defaults['max_grad_norm'] is None
    ref = [(p.detach().clone(), torch.zeros_like(p), torch.zeros_like(p))
           for p in params]
    for step in range(3):
        _set_grads(params, step)
        grads = [p.grad.clone() for p in params]
        opt.step()
        ref = [
            lamb_reference(w, g, m, v, step + 1, lr, wd)
            for (w, m, v), g in zip(ref, grads)
        ]
        for p, (w, m, v) in zip(params, ref):
            torch.testing.assert_close(p.detach(), w, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(opt.state[p]['exp_avg'], m)
            torch.testing.assert_close(opt.state[p]['exp_avg_sq'], v)


def test_lamb_max_grad_norm_clips_global_norm():
    params = _make_params()
    lr, wd, max_norm = 0.05, 0.01, 0.5
    opt = TimmLAMB(params, lr=lr, weight_decay=wd, max_grad_norm=max_norm)
    _set_grads(params, 0)
    grads = [p.grad.clone() for p in params]
    total = torch.stack([g.norm() for g in grads]).norm()
    assert total > max_norm
    expected = [
        lamb_reference(p.detach().clone(), g * (max_norm / total),
                       torch.zeros_like(p), torch.zeros_like(p), 1, lr, wd)
        for p, g in zip(params, grads)
    ]
    opt.step()
    for p, (w, m, _) in zip(params, expected):
        torch.testing.assert_close(p.detach(), w)
        torch.testing.assert_close(opt.state[p]['exp_avg'], m)


@pytest.mark.parametrize('foreach', _foreach_values(Lamb))
def test_pmd_lamb_decays_moments_at_period_end(foreach):
    params = _make_params()
    lr, wd, period, factor = 0.05, 0.01, 2, 0.3
    opt = PMDLAMB(
        params, lr=lr, weight_decay=wd, decay_period=period,
        decay_factor=factor, **_kw(foreach))
    ref = [(p.detach().clone(), torch.zeros_like(p), torch.zeros_like(p))
           for p in params]
    for step in range(1, 6):
        _set_grads(params, step)
        grads = [p.grad.clone() for p in params]
        opt.step()
        ref = [
            lamb_reference(w, g, m, v, step, lr, wd)
            for (w, m, v), g in zip(ref, grads)
        ]
        if step % period == 0:  # decay after steps 2 and 4
            ref = [(w, factor * m, factor * v) for w, m, v in ref]
        assert opt.param_groups[0]['pmd_step'] == step
        for p, (w, m, v) in zip(params, ref):
            torch.testing.assert_close(p.detach(), w, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(opt.state[p]['exp_avg'], m)
            torch.testing.assert_close(opt.state[p]['exp_avg_sq'], v)


def test_pmd_lamb_runs_step_hooks_once():
    Lamb(_make_params())  # torch has now wrapped timm's step in a hook runner
    params = _make_params()
    opt = PMDLAMB(params, lr=0.1, decay_period=2, decay_factor=0.5)
    calls = []
    opt.register_step_pre_hook(lambda *args: calls.append('pre'))
    opt.register_step_post_hook(lambda *args: calls.append('post'))
    _set_grads(params, 0)
    opt.step()
    assert calls == ['pre', 'post']


def test_pmd_lamb_arguments():
    with pytest.raises(TypeError):
        PMDLAMB(_make_params(), lr=0.1)  # period and factor are required
    with pytest.raises(ValueError):
        PMDLAMB(_make_params(), lr=0.1, decay_period=0, decay_factor=0.5)
    with pytest.raises(ValueError):
        PMDLAMB(_make_params(), lr=0.1, decay_period=10, decay_factor=1.5)
    with pytest.raises(TypeError):
        TimmLARS(_make_params())  # lr is required


# --------------------------------------------------------------------------
# mmengine integration
# --------------------------------------------------------------------------
class _Net(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, bias=True)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x)).mean((2, 3))
        return self.fc(x)


def _net() -> _Net:
    torch.manual_seed(0)
    net = _Net().to(DTYPE)
    with torch.no_grad():  # non-trivial norm parameters
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.5, 0.5)
    return net


CFGS = {
    'TimmLARS':
    dict(type='TimmLARS', lr=0.5, momentum=0.9, weight_decay=0.05,
         trust_coeff=0.02),
    'TimmLAMB':
    dict(type='TimmLAMB', lr=0.05, weight_decay=0.01),
    'PMDLAMB':
    dict(type='PMDLAMB', lr=0.05, weight_decay=0.01, decay_period=2,
         decay_factor=0.5),
}
EXCLUDE = dict(norm_decay_mult=0., bias_decay_mult=0.)


def _wrapper(model: nn.Module, name: str, lr_scale: float = 1.0):
    cfg = copy.deepcopy(CFGS[name])
    cfg['lr'] *= lr_scale
    return build_optim_wrapper(
        model, dict(optimizer=cfg, paramwise_cfg=EXCLUDE))


def _backward(model: nn.Module, step: int) -> None:
    gen = torch.Generator().manual_seed(step)
    x = torch.randn(4, 2, 5, 5, generator=gen, dtype=DTYPE)
    model.zero_grad()
    model(x).square().sum().backward()


@pytest.mark.parametrize('name', list(CFGS))
def test_bias_and_norm_skip_decay_and_trust_ratio(name):
    model = _net()
    wrapper = _wrapper(model, name)
    cfg = CFGS[name]
    names = {id(p): n for n, p in model.named_parameters()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _backward(model, 0)
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    wrapper.step()

    decayed = set()
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            if group['weight_decay'] != 0:
                decayed.add(names[id(p)])
    assert decayed == {'conv.weight', 'fc.weight'}

    for n, p in model.named_parameters():
        wd = cfg['weight_decay'] if n in decayed else 0.0
        w, g = before[n], grads[n]
        if name == 'TimmLARS':
            expected, _ = lars_reference(w, g, None, cfg['lr'],
                                         cfg['momentum'], wd,
                                         cfg['trust_coeff'])
        else:
            zeros = torch.zeros_like(w)
            expected, _, _ = lamb_reference(w, g, zeros, zeros, 1, cfg['lr'],
                                            wd)
        torch.testing.assert_close(p.detach(), expected, msg=n)
        if wd == 0:  # no trust ratio: plain SGD / Adam first step
            plain = (w - cfg['lr'] * g if name == 'TimmLARS' else
                     w - cfg['lr'] * g / (g.abs() + 1e-6))
            torch.testing.assert_close(p.detach(), plain, msg=n)


def _snapshot(model: nn.Module) -> List[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _state(optimizer: torch.optim.Optimizer) -> List[torch.Tensor]:
    return [
        v.clone() for p in optimizer.state
        for v in optimizer.state[p].values()
        if isinstance(v, torch.Tensor) and v.dim() > 0
    ]


@pytest.mark.parametrize('name', list(CFGS))
def test_scaling_lr_for_one_step(name):
    """AGVM scales a group's lr for one step() and restores it: that step's
    update is s times the unscaled one and the state does not change."""
    s = 3.0
    model_ref, model_agvm = _net(), _net()
    wrapper_ref, wrapper_agvm = _wrapper(model_ref, name), _wrapper(
        model_agvm, name)
    groups = wrapper_agvm.optimizer.param_groups
    for step in range(3):
        _backward(model_ref, step)
        for p, q in zip(model_agvm.parameters(), model_ref.parameters()):
            p.grad = q.grad.clone()
        before = _snapshot(model_ref)
        wrapper_ref.step()
        lrs = [g['lr'] for g in groups]
        if step == 2:  # the AGVM step: scale one group, step, restore
            groups[0]['lr'] *= s
        wrapper_agvm.step()
        for g, lr in zip(groups, lrs):
            g['lr'] = lr
        in_group0 = {id(p) for p in groups[0]['params']}
        for p_ref, p, b in zip(model_ref.parameters(),
                               model_agvm.parameters(), before):
            scale = s if step == 2 and id(p) in in_group0 else 1.0
            # p - b is exact (Sterbenz); p and p_ref are rounded once each
            # (u |p|) and their updates <= 3 times (lr * s, the trust ratio,
            # the product): |error| <= u (|p| + s |p_ref| + 5 |p - b|), and
            # in group 0 (conv.weight) every update is >= 1e-3 |p|, so that
            # is below 1.5e-13 of s |p_ref - b| (u = 2**-53)
            torch.testing.assert_close(p - b, scale * (p_ref - b),
                                       rtol=1e-12, atol=0)
        for a, b in zip(_state(wrapper_ref.optimizer),
                        _state(wrapper_agvm.optimizer)):
            assert torch.equal(a, b)  # lr is not folded into the state


@pytest.mark.parametrize('name', list(CFGS))
def test_state_dict_round_trip_continues_identically(name):
    total, cut = 8, 3  # PMDLAMB period 2: decays after steps 4, 6, 8
    model_a = _net()
    wrapper_a = _wrapper(model_a, name)
    for step in range(total):
        _backward(model_a, step)
        wrapper_a.step()

    model_b = _net()
    wrapper_b = _wrapper(model_b, name)
    for step in range(cut):
        _backward(model_b, step)
        wrapper_b.step()
    buffer = io.BytesIO()
    torch.save(
        dict(model=model_b.state_dict(), optim=wrapper_b.state_dict()),
        buffer)
    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=False)

    model_c = _net()
    model_c.load_state_dict(ckpt['model'])
    wrapper_c = _wrapper(model_c, name)
    wrapper_c.load_state_dict(ckpt['optim'])
    if name == 'PMDLAMB':
        assert all(g['pmd_step'] == cut
                   for g in wrapper_c.optimizer.param_groups)
    for step in range(cut, total):
        _backward(model_c, step)
        wrapper_c.step()

    for p, q in zip(model_a.parameters(), model_c.parameters()):
        assert torch.equal(p, q)
    for a, b in zip(_state(wrapper_a.optimizer), _state(wrapper_c.optimizer)):
        assert torch.equal(a, b)
    if name == 'PMDLAMB':
        assert all(g['pmd_step'] == total
                   for g in wrapper_c.optimizer.param_groups)


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------
def test_registered_in_root_registry():
    assert OPTIMIZERS.get('TimmLARS') is TimmLARS
    assert OPTIMIZERS.get('TimmLAMB') is TimmLAMB
    assert OPTIMIZERS.get('PMDLAMB') is PMDLAMB


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_names_resolve_under_downstream_default_scope(scope):
    utils = pytest.importorskip(f'{scope}.utils')
    utils.register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(scope):
        assert DefaultScope.get_current_instance().scope_name == scope
        for name, cls in [('TimmLARS', TimmLARS), ('TimmLAMB', TimmLAMB),
                          ('PMDLAMB', PMDLAMB)]:
            wrapper = _wrapper(_net(), name)
            assert type(wrapper.optimizer) is cls


def test_without_timm_the_package_imports_and_the_config_key_is_named():
    """timm is an optional extra: without it ``import agvm_mm`` works and
    building one of its optimizers says which key and what to install (a
    fresh interpreter in which timm cannot be found)."""
    import subprocess
    import sys
    code = '''
import importlib.abc, sys
class NoTimm(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'timm':
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoTimm())
import importlib.util
find = importlib.util.find_spec
importlib.util.find_spec = lambda n, *a: (
    None if n.split('.')[0] == 'timm' else find(n, *a))
import torch
import agvm_mm
from mmengine.registry import OPTIMIZERS
try:
    OPTIMIZERS.build(dict(type='PMDLAMB', lr=0.1,
                          params=[torch.nn.Parameter(torch.zeros(1))]))
except ImportError as e:
    print(e)
'''
    done = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ("optim_wrapper.optimizer.type='PMDLAMB' needs timm"
            in done.stdout), done.stdout
    assert 'pip install --no-deps timm==1.0.31' in done.stdout
