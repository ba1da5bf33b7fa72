"""Worst-case rounding bounds of AGVM's fused statistics, and of the
factors that follow from them, for the tests.

Given the float32 gradients that went into one statistics step (each
rank's, or each accumulated micro-batch's) and the optimizer's
``exp_avg_sq``, :func:`fused_phi_bound` returns a module's Phi computed in
float64 from them and a bound on how far the float32 path of agvm_mm
(docs/algorithm.md §2-3) may lie from it. The bound follows the arithmetic
(Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 2-4) with the
unit roundoff ``u = 2^-24`` and ``gamma(n) = n u / (1 - n u)``, element by
element, so it holds on any CPU, BLAS, summation order or thread count:

1. The two vectors the source hands the sink. Ranks: ``x = fl(sum g_r / W)``
   and ``y = fl(sum ±g_r / W)``, one division and ``W - 1`` additions in any
   order: ``|dx|, |dy| <= gamma(W) sum |g_r| / W``. One process: ``x``, half
   A's sum, and ``y``, the total, accumulated one micro-batch at a time:
   ``gamma(K/2 - 1) sum_A |g_j|`` and ``gamma(K - 1) sum |g_j|``.
2. The halves ``a = p x + q y``, ``b = r x + s y``: the SGD rule mixes exact
   float64 moments (no rounding of its own); the Adam rule forms them in
   float32, two more roundings: ``+ gamma(2) (|p x| + |q y|)``.
3. The Adam rule's ``u = g / (sqrt(beta2 v + (1 - beta2) g^2) + eps)``
   (:func:`agvm_mm.core.precondition`): its slope in ``g`` is
   ``(beta2 v / s + eps) / (s + eps)^2`` (``s`` the root), largest at the
   smallest ``|g|`` (up to ``1 / eps`` at ``g = v = 0``), so an error ``dg``
   moves ``u`` by at most the slope at ``max(|g| - dg, 0)`` times ``dg``;
   computing it rounds 8 times at most (a square, two products, a sum, a
   root, ``+ eps``, a division, and ``1 - beta2``): ``+ gamma(8) |u|``.
4. Phi of perturbed vectors: a vector perturbed by a relative ``e`` (in
   norm) turns by at most ``asin(e)``, so the angle between the halves
   moves by at most ``D = asin(e_A) + asin(e_B)`` and ``1 - cos`` by at most
   ``sin(theta) D + D^2 / 2``. Near ``Phi = 0`` this is ``sqrt(2 Phi) D``:
   the relative error grows as ``1 / sqrt(Phi)`` (the cancellation of
   ``1 - cos``), which is why no fixed relative tolerance is right.
5. ``<a, b>`` by polarization (:func:`agvm_mm.core.pair_moments`) takes
   ``|z|^2`` of a ``z`` rounded in float32 (two roundings for the SGD rule's
   ``alpha x + beta y``, one for the Adam rule's ``u_A - u_B``): the error of
   ``|z|^2`` times Phi's derivative in ``|z|^2``.
6. The float64 parts (norms of ``n`` elements, the 2x2 mixing, one cosine):
   ``64 n`` float64 roundings of the largest magnitude involved.

Terms 1-5 are first order in the relative errors; :func:`fused_phi_bound`
asserts these are below 1e-3, so the neglected second-order terms stay
below 0.1 % of the bound, and it returns the bound times 1.01.
"""
import math
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from agvm_mm.core import CLAMP, MOMENTUM, RATIO_EPS

U = 2.0**-24  # float32 unit roundoff
U64 = 2.0**-53


def gamma(n: int) -> float:
    return n * U / (1 - n * U)


def _halves(grads: Tensor, ranks: bool):
    """``x``, ``y``, their error bounds and the mixing of a source."""
    count = grads.shape[0]
    n_a, n_b = count // 2, count - count // 2
    if ranks:
        sign = torch.tensor([1.0] * n_a + [-1.0] * n_b,
                            dtype=grads.dtype)[:, None]
        x, y = grads.sum(0) / count, (sign * grads).sum(0) / count
        ex = ey = gamma(count) * grads.abs().sum(0) / count
        c_a, c_b = count / (2 * n_a), count / (2 * n_b)
        return x, y, ex, ey, ((c_a, c_a), (c_b, -c_b))
    x, y = grads[:n_a].sum(0), grads.sum(0)
    ex = gamma(n_a - 1) * grads[:n_a].abs().sum(0)
    ey = gamma(count - 1) * grads.abs().sum(0)
    return x, y, ex, ey, ((count / n_a, 0.0), (-count / n_b, count / n_b))


def _phi(ua: Tensor, ub: Tensor) -> float:
    return 1.0 - float(ua @ ub) / (float(ua.norm()) * float(ub.norm()))


def angle_bound(phi: float, e_a: float, e_b: float) -> float:
    """How far ``1 - cos`` of two vectors at ``Phi = phi`` may move when each
    is perturbed by a relative ``e_A``, ``e_B`` (in norm, below 1): each
    turns by at most ``asin(e)``, so ``sin(theta) D + D^2 / 2`` with ``D``
    the two turns (term 4 of the module docstring)."""
    turn = math.asin(e_a) + math.asin(e_b)
    sin = math.sqrt(max(0.0, 1.0 - (1.0 - phi)**2))
    return sin * turn + turn * turn / 2


def preconditioned(g: Tensor, v: Optional[Tensor], beta2: float,
                   eps: float) -> Tensor:
    """The Adam rule's ``g / (sqrt(beta2 v + (1 - beta2) g^2) + eps)`` in
    float64 (``v``, the optimizer's ``exp_avg_sq``, None: 0)."""
    g = g.double()
    v = 0.0 if v is None else beta2 * v.reshape(g.shape).double()
    return g / ((v + (1 - beta2) * g * g).sqrt() + eps)


class _RawPath(NamedTuple):
    """The SGD rule's (raw) path of one module: the halves, their error
    bounds element by element, and how the moments depend on the rounded
    ``|z|^2`` of the polarization (terms 1, 2 and 5 of the module
    docstring)."""
    a: Tensor
    b: Tensor
    da: Tensor
    db: Tensor
    moments: Tuple[float, float, float]  # |a|^2, |b|^2, <a, b>
    slopes: Tuple[float, float, float]  # their derivatives in |z|^2
    dzz: float  # the most |z|^2 is off by from z's own rounding
    float64_scale: float  # the largest magnitude of the float64 parts
    shares: Tuple[float, float]


def _raw_path(grads: Sequence[Tensor], ranks: bool) -> _RawPath:
    g = torch.stack([t.reshape(-1) for t in grads]).double()
    x, y, ex, ey, ((p, q), (r, s)) = _halves(g, ranks)
    a, b = p * x + q * y, r * x + s * y
    da, db = abs(p) * ex + abs(q) * ey, abs(r) * ex + abs(s) * ey
    # z along g_A - g_B, or g_A for equal halves (MomentSink's choice)
    alpha, beta = (p - r, q - s) if (p - r) * (q - s) else (p, q)
    dz = abs(alpha) * ex + abs(beta) * ey  # z's share of (dx, dy)
    z_rounding = gamma(2) * (abs(alpha) * (x.abs() + ex) +
                             abs(beta) * (y.abs() + ey))
    z = alpha * x + beta * y
    z_norm = float(z.norm() + dz.norm())  # >= |z| of (x + dx, y + dy)
    dzz = 2 * z_norm * float(z_rounding.norm()) + float(
        z_rounding.norm())**2
    # the moments as functions of |z|^2 through the polarization and mixing
    xx, yy, zz = float(x @ x), float(y @ y), float(z @ z)
    xy = (zz - alpha**2 * xx - beta**2 * yy) / (2 * alpha * beta)
    moments = (p * p * xx + 2 * p * q * xy + q * q * yy,
               r * r * xx + 2 * r * s * xy + s * s * yy,
               p * r * xx + (p * s + q * r) * xy + q * s * yy)
    slopes = (p * q / (alpha * beta), r * s / (alpha * beta),
              (p * s + q * r) / (2 * alpha * beta))
    float64_scale = (abs(p) + abs(q)) * (abs(r) + abs(s)) * (
        1 + (alpha**2 + beta**2) / abs(alpha * beta)) * max(
            xx, yy, z_norm**2) * g.shape[1] * 64 * U64
    count = g.shape[0]
    n_a = count // 2
    return _RawPath(a, b, da, db, moments, slopes, dzz, float64_scale,
                    (n_a / count, (count - n_a) / count))


def fused_noise_bound(grads: Sequence[Tensor], ranks: bool
                      ) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    """``((|G|^2, bound), (tr(Sigma) / B, bound))`` of one module: the one-
    step estimates ``<g_A, g_B>`` and ``f_A f_B |g_A - g_B|^2``
    (:func:`agvm_mm.core.gradient_noise`, the shares ``f`` of the halves)
    in float64 from ``grads`` (as :func:`fused_phi_bound` takes them), and
    the largest error of the float32 path: the halves' errors ``da``,
    ``db`` move ``<a, b>`` by at most ``|a| |db| + |b| |da| + |da| |db|``
    and ``|a - b|^2`` by at most ``2 |a - b| |da + db| + |da + db|^2``;
    z's rounding and the float64 parts as in the module docstring."""
    raw = _raw_path(grads, ranks)
    aa, bb, ab = raw.moments
    d_aa, d_bb, d_ab = raw.slopes
    na, nb = float(raw.a.norm()), float(raw.b.norm())
    ea, eb = float(raw.da.norm()), float(raw.db.norm())
    diff, ediff = float((raw.a - raw.b).norm()), float((raw.da + raw.db)
                                                       .norm())
    f_a, f_b = raw.shares
    gsq_bound = na * eb + nb * ea + ea * eb + abs(d_ab) * raw.dzz
    trace_bound = (2 * diff * ediff + ediff**2 +
                   abs(d_aa + d_bb - 2 * d_ab) * raw.dzz)
    return ((float(raw.a @ raw.b), 1.01 * (gsq_bound + raw.float64_scale)),
            (f_a * f_b * diff**2,
             1.01 * f_a * f_b * (trace_bound + 4 * raw.float64_scale)))


def fused_phi_bound(grads: Sequence[Tensor],
                    ranks: bool,
                    adam: Optional[Tuple[Optional[Tensor], float,
                                         float]] = None
                    ) -> Tuple[float, float]:
    """``(Phi, bound)`` of one module: Phi in float64 from ``grads`` and the
    largest ``|Phi_agvm_mm - Phi|`` the float32 path can give (the module
    docstring derives it).

    Args:
        grads: One flat float32 gradient of the module per contributor: the
            ranks in rank order (``ranks=True``, half A the first ``W // 2``)
            or the accumulated micro-batches in order (half A the first
            ``K // 2``), each as the backward computed it.
        ranks: Which of the two sources of docs/algorithm.md §2.
        adam: ``(exp_avg_sq or None, beta2, eps)`` for the Adam rule; None
            for the SGD rule.
    """
    if adam is None:
        raw = _raw_path(grads, ranks)
        phi = _phi(raw.a, raw.b)
        e_a = float(raw.da.norm() / raw.a.norm())
        e_b = float(raw.db.norm() / raw.b.norm())
        aa, bb, ab = raw.moments
        d_aa, d_bb, d_ab = raw.slopes
        slope = abs(-d_ab / math.sqrt(aa * bb) + ab * (d_aa * bb + aa * d_bb) /
                    (2 * (aa * bb)**1.5))
        z_term = slope * raw.dzz
        scale = raw.float64_scale / math.sqrt(aa * bb)
    else:
        g = torch.stack([t.reshape(-1) for t in grads]).double()
        x, y, ex, ey, ((p, q), (r, s)) = _halves(g, ranks)
        a, b = p * x + q * y, r * x + s * y
        v, beta2, eps = adam
        v = torch.zeros_like(a) if v is None else beta2 * v.reshape(-1).double()

        def steepest(t: Tensor) -> Tensor:  # the slope at |t|, t >= 0
            root = (v + (1 - beta2) * t * t).sqrt()
            ratio = torch.where(v > 0, v / root.clamp_min(1e-300),
                                torch.zeros_like(v))
            return (ratio + eps) / (root + eps)**2

        def rounded(t: Tensor, dt: Tensor) -> Tuple[Tensor, Tensor]:
            u = preconditioned(t, adam[0], beta2, eps)
            moved = steepest((t.abs() - dt).clamp_min(0)) * dt
            return u, moved + gamma(8) * (u.abs() + moved)

        da = (abs(p) * ex + abs(q) * ey + gamma(2) *
              (abs(p) * (x.abs() + ex) + abs(q) * (y.abs() + ey)))
        db = (abs(r) * ex + abs(s) * ey + gamma(2) *
              (abs(r) * (x.abs() + ex) + abs(s) * (y.abs() + ey)))
        (ua, dua), (ub, dub) = rounded(a, da), rounded(b, db)
        phi = _phi(ua, ub)
        e_a = float(dua.norm() / ua.norm())
        e_b = float(dub.norm() / ub.norm())
        # zz = |fl(u_A - u_B)|^2 within (1 +- u)^2; Phi's slope in it is
        # 1 / (2 |u_A| |u_B|)
        diff = float((ua - ub).norm() + dua.norm() + dub.norm())
        z_term = ((1 + U)**2 - 1) * diff**2 / (
            2 * float(ua.norm()) * (1 - e_a) * float(ub.norm()) * (1 - e_b))
        scale = 64 * g.shape[1] * U64 * (
            float(ua @ ua) + float(ub @ ub) + diff**2) / float(
                ua.norm() * ub.norm())
    assert max(e_a, e_b) < 1e-3, (e_a, e_b)  # first order is then enough
    bound = angle_bound(phi, e_a, e_b) + z_term + scale
    return phi, 1.01 * bound


def factor_bound(phis, bounds, names):
    """How far two runs' factors may lie apart when, at statistics step
    ``t``, their Phi of module ``m`` lie within ``bounds[t][m]`` of
    ``phis[t][m]``: ``mu = sqrt(clamp((Phi_a + eps) / (Phi_m + eps)))``
    rises with the anchor's Phi and falls with the module's, so it moves
    by at most its change to the interval's far ends; the EMA from 1 weighs
    step ``t`` of ``T`` by ``(1 - alpha) alpha^(T - 1 - t)``. Plus 1e-12
    for the float64 rounding of the EMA."""
    def mu(anchor, module):
        return math.sqrt(min(max((anchor + RATIO_EPS) / (module + RATIO_EPS),
                                 CLAMP[0]), CLAMP[1]))

    anchor, total = names[0], len(phis)
    out = dict.fromkeys(names[1:], 1e-12)
    for t, (phi, bound) in enumerate(zip(phis, bounds)):
        a_lo = max(phi[anchor] - bound[anchor], 0.0)
        a_hi = min(phi[anchor] + bound[anchor], 2.0)
        for m in names[1:]:
            m_lo, m_hi = max(phi[m] - bound[m], 0.0), min(phi[m] + bound[m],
                                                          2.0)
            mid = mu(phi[anchor], phi[m])
            out[m] += (1 - MOMENTUM) * MOMENTUM**(total - 1 - t) * max(
                mu(a_hi, m_lo) - mid, mid - mu(a_lo, m_hi))
    return out


def assert_factors_follow(scales, history, ref_scales, ref_history, names):
    """Two runs' factors differ by no more than their Phi at each
    statistics step (``history``, ``ref_history``) allow
    (:func:`factor_bound`); the anchor's are 1 in both."""
    assert len(history) == len(ref_history)
    apart = [{m: abs(h[m] - r[m]) for m in names}
             for h, r in zip(history, ref_history)]
    assert scales[names[0]] == ref_scales[names[0]] == 1.0
    for m, bound in factor_bound(ref_history, apart, names).items():
        assert abs(scales[m] - ref_scales[m]) <= bound, (m, bound)
