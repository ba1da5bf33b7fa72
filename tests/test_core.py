"""The three pure AGVM transformations against the spec's formulas."""
import math

import pytest
import torch

from agvm_mm.core import (compute_factors, gradient_noise, mix_moments,
                          noise_scale, pair_moments, precondition, scaled_lr)


def test_precondition_formula():
    g = torch.tensor([0.5, -2.0, 0.0])
    v = torch.tensor([0.25, 1.0, 4.0])
    u = precondition(g, v, beta2=0.9, eps=1e-8)
    expected = [
        0.5 / (math.sqrt(0.9 * 0.25 + 0.1 * 0.25) + 1e-8),
        -2.0 / (math.sqrt(0.9 * 1.0 + 0.1 * 4.0) + 1e-8), 0.0
    ]
    # float32 against float64: at most 8 roundings of u = 2**-24 (beta2,
    # 1 - beta2, a square, two products, a sum, a root, + eps, a division;
    # the root halves its argument's), so within 8u = 4.8e-7 < 1e-6
    assert u.tolist() == pytest.approx(expected, rel=1e-6)
    # before the optimizer's first step v counts as 0 (eps is 6e-7 of the
    # denominator here: it belongs in the expected value, not the tolerance)
    u0 = precondition(g, None, beta2=0.999, eps=1e-8)
    assert u0[:2].tolist() == pytest.approx(
        [0.5 / (math.sqrt(0.001) * 0.5 + 1e-8),
         -2.0 / (math.sqrt(0.001) * 2.0 + 1e-8)], rel=1e-6)


def test_pair_moments_per_segment():
    torch.manual_seed(0)
    x, y = torch.randn(12), torch.randn(12)
    moments = pair_moments(x, y, [7, 5])
    assert moments.dtype == torch.float64 and moments.shape == (2, 3)
    for row, (a, b) in zip(moments, ((x[:7], y[:7]), (x[7:], y[7:]))):
        a, b = a.double(), b.double()
        # norms: exact squares of float32 values summed in float64, a few
        # roundings of 2**-53, far below 1e-12
        assert row[1:].tolist() == pytest.approx(
            [float(a @ a), float(b @ b)], rel=1e-12)
        # <x, y> = (|z|^2 - |x|^2 - |y|^2) / 2 with z = fl(x + y): each
        # z_i^2 is off by at most (2u + u^2) z_i^2 (u = 2**-24), so <x, y>
        # by (u + u^2 / 2) |z|^2; 1 % more covers that and the float64 sums
        z = a + b
        assert float(row[0]) == pytest.approx(
            float(a @ b), abs=1.01 * 2.0**-24 * float(z @ z))


def test_pair_moments_do_not_depend_on_where_a_segment_lies():
    """A segment's sums are the same bits wherever it sits in the vectors
    (DDP rebuilds its buckets after the first iteration, so a resumed run
    sees other offsets than the uninterrupted one); BLAS dot products of
    misaligned slices are not."""
    torch.manual_seed(0)
    x, y = torch.randn(100_013), torch.randn(100_013)
    segment = pair_moments(x[:60_000], y[:60_000], [60_000])
    for shift in range(1, 9):
        xs, ys = torch.randn(60_000 + shift), torch.randn(60_000 + shift)
        xs[shift:], ys[shift:] = x[:60_000], y[:60_000]
        moved = pair_moments(xs, ys, [shift, 60_000])[1]
        assert torch.equal(moved, segment[0])


@pytest.mark.parametrize('mixing', [((1.5, 1.5), (3.0, -3.0)),
                                    ((2.0, 0.0), (-2.0, 2.0)),
                                    ((0.3, -1.2), (0.7, 0.4))])
def test_mix_moments_equal_the_moments_of_the_mixed_vectors(mixing):
    """<S + D, S - D> = |S|^2 - |D|^2 and |S +- D|^2 = |S|^2 +- 2<S,D> +
    |D|^2, for any mixing: the same as forming a and b."""
    torch.manual_seed(1)
    x, y = torch.randn(50, dtype=torch.float64), torch.randn(
        50, dtype=torch.float64)
    (p, q), (r, s) = mixing
    a, b = p * x + q * y, r * x + s * y
    mixed = mix_moments(pair_moments(x, y, [50])[0], mixing)
    # all float64 (u = 2**-53): <x, y> from |z|^2 - |x|^2 - |y|^2 loses a
    # factor ~20 (137 - 59 - 66 = 12), the mixing at most ~10 more (its
    # terms against the smallest result, |<a, b>| = 23.5): ~1e-13 at worst
    assert mixed.tolist() == pytest.approx(
        [float(a @ b), float(a @ a), float(b @ b)], rel=1e-10)
    # per-module rows mix alike
    rows = pair_moments(torch.cat([x, y]), torch.cat([y, x]), [50, 50])
    assert mix_moments(rows, mixing)[1].tolist() == pytest.approx(
        mix_moments(pair_moments(y, x, [50])[0], mixing).tolist())


def reference_factors(cos, scales, anchor, alpha=0.97, lo=0.5, hi=10.0):
    phi = [1 - c for c in cos]
    new = []
    for m, (p, s) in enumerate(zip(phi, scales)):
        mu = 1.0 if m == anchor else math.sqrt(
            min(max((phi[anchor] + 1e-6) / (p + 1e-6), lo), hi))
        new.append(alpha * s + (1 - alpha) * mu)
    return phi, new


def stats_for(cos):
    # unit vectors with the wanted cosine: dot = cos, norms 1
    return torch.tensor([[c, 1.0, 1.0] for c in cos], dtype=torch.float64)


@pytest.mark.parametrize('cos', [[0.2, 0.9, 0.99], [0.5, 0.1, -0.3],
                                 [0.9, 0.95, 0.2, 0.7]])
def test_compute_factors_matches_spec(cos):
    scales = torch.tensor([1.0, 1.3, 0.8, 1.1][:len(cos)],
                          dtype=torch.float64)
    phi, valid, new = compute_factors(stats_for(cos), scales, anchor=0)
    ref_phi, ref_new = reference_factors(cos, scales.tolist(), 0)
    assert valid.all()
    # float64 on both sides, values <= 10, a dozen operations: ~1e-14
    assert phi.tolist() == pytest.approx(ref_phi, abs=1e-12)
    assert new.tolist() == pytest.approx(ref_new, abs=1e-12)
    assert new[0] == 1.0  # the anchor stays at 1


def test_compute_factors_clamps_and_uses_momentum():
    # module 1 has a tiny variance -> ratio capped at hi; module 2 a huge
    # one -> ratio floored at lo
    stats = stats_for([0.5, 0.999999, -1.0])
    phi, _, new = compute_factors(stats, torch.ones(3, dtype=torch.float64),
                                  anchor=0, momentum=0.5, clamp=(0.5, 10.0))
    assert new.tolist() == pytest.approx(
        [1.0, 0.5 + 0.5 * math.sqrt(10.0), 0.5 + 0.5 * math.sqrt(0.5)])


def test_compute_factors_holds_unusable_modules():
    stats = stats_for([0.5, 0.2, 0.3])
    stats[1] = torch.tensor([0.0, 0.0, 0.0])  # all-zero gradient
    stats[2, 0] = float('nan')
    scales = torch.tensor([1.0, 1.7, 0.9], dtype=torch.float64)
    phi, valid, new = compute_factors(stats, scales, anchor=0)
    assert valid.tolist() == [True, False, False]
    assert math.isnan(phi[1]) and math.isnan(phi[2])
    assert new.tolist() == [1.0, 1.7, 0.9]
    # an unusable anchor holds everything
    stats[0] = 0.0
    _, _, held = compute_factors(stats, scales, anchor=0)
    assert held.tolist() == scales.tolist()


def _model():
    torch.manual_seed(0)
    return torch.nn.ModuleDict(
        dict(backbone=torch.nn.Linear(4, 4), head=torch.nn.Linear(4, 2)))


@pytest.mark.parametrize('opt_type', ['SGD', 'AdamW'])
@pytest.mark.parametrize('grouping', ['single', 'per_param', 'per_module'])
def test_scaled_lr_equals_per_module_lr(opt_type, grouping):
    """Any grouping, stepped under scaled_lr, equals one group per module
    with lr multiplied by its factor; lr and state_dict come back."""
    factor = {'backbone': 1.0, 'head': 2.5}
    kwargs = dict(lr=0.1, weight_decay=0.01)
    if opt_type == 'SGD':
        kwargs['momentum'] = 0.9
    cls = getattr(torch.optim, opt_type)
    model, ref = _model(), _model()
    if grouping == 'single':
        groups = [dict(params=list(model.parameters()))]
    elif grouping == 'per_param':
        groups = [dict(params=[p]) for p in model.parameters()]
    else:
        groups = [
            dict(params=list(m.parameters())) for m in model.values()
        ]
    opt = cls(groups, **kwargs)
    ref_opt = cls([
        dict(params=list(m.parameters()), lr=0.1 * factor[n])
        for n, m in ref.items()
    ], **kwargs)
    module = {p: n for n, m in model.items() for p in m.parameters()}
    for step in range(3):
        x = torch.randn(3, 4)
        for net, optimizer in ((model, opt), (ref, ref_opt)):
            optimizer.zero_grad()
            net['head'](net['backbone'](x)).square().sum().backward()
        with scaled_lr(opt, lambda p: factor[module[p]]):
            opt.step()
        ref_opt.step()
        assert [g['lr'] for g in opt.param_groups] == [0.1] * len(groups)
    # the same per-parameter float32 kernels with the same lr (0.1 * 2.5
    # either way) on the same values: the grouping changes which list a
    # tensor is in, not its arithmetic, so the results are the same bits
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)
    state = opt.state_dict()
    assert len(state['param_groups']) == len(groups)
    cls(groups, **kwargs).load_state_dict(state)


def test_scaled_lr_copies_back_group_keys():
    """Settings an optimizer writes into its groups (timm's Lamb keeps a
    per-group 'step') survive the temporary views."""

    class Counting(torch.optim.SGD):

        def step(self, closure=None):
            for group in self.param_groups:
                group['step'] = group.get('step', 0) + 1
            return super().step(closure)

    model = _model()
    opt = Counting(model.parameters(), lr=0.1)
    for _ in range(2):
        with scaled_lr(opt, lambda p: 2.0 if p.dim() == 1 else 1.0):
            opt.step()
    assert opt.param_groups[0]['step'] == 2
    assert opt.param_groups[0]['lr'] == 0.1


def test_gradient_noise_and_noise_scale():
    """Equal halves with |g_A|^2 = |g_B|^2 = 2 and <g_A, g_B> = 1:
    |G|^2 = 1 and tr(Sigma) = B |g_A - g_B|^2 / 4 = B * 2 / 4; the noise
    scale is their ratio, absent (NaN) without averages, inf where the
    |G|^2 average is not positive."""
    stats = torch.tensor([[1.0, 2.0, 2.0], [-1.0, 2.0, 2.0]])
    terms = gradient_noise(stats, (0.5, 0.5), samples=32)
    assert terms[0].tolist() == pytest.approx([1.0, 32 * 2.0 / 4])
    per_batch = gradient_noise(stats, (0.5, 0.5))  # tr(Sigma) / B
    assert per_batch[0].tolist() == pytest.approx([1.0, 0.5])
    averages = torch.cat([per_batch, torch.full((1, 2), math.nan)])
    scale = noise_scale(averages, 32).tolist()
    assert scale[0] == pytest.approx(16.0)
    assert math.isinf(scale[1]) and math.isnan(scale[2])
