"""AGVM as three small transformations (docs/algorithm.md §3-§5), each
testable alone:

1. :func:`pair_moments` and :func:`mix_moments`: per-module dot products
   of two gradient estimates (optionally Adam-preconditioned by
   :func:`precondition`), from flat gradients in a few kernels;
2. :func:`compute_factors`: variances ``Phi = 1 - cos`` and the running
   factors ``s``;
3. :func:`scaled_lr`: step any optimizer as if each module's learning rate
   were multiplied by its factor, then restore;

and, from the same moments, each module's critical batch
(:func:`gradient_noise`, :func:`noise_scale`; docs/algorithm.md §9) and
what it says of a larger batch's learning rate and training length
(:func:`large_batch_plan`, §10).
"""
import math
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.optim import Optimizer

# The defaults of docs/algorithm.md §4, the one copy: ``AGVMConfig`` takes
# its defaults from here.
#: eps of the variance ratio.
RATIO_EPS = 1e-6
#: EMA momentum alpha of the running factors.
MOMENTUM = 0.97
#: bounds ``(lo, hi)`` of the variance ratio.
CLAMP = (0.5, 10.0)


def precondition(grad: Tensor, exp_avg_sq: Optional[Tensor], beta2: float,
                 eps: float) -> Tensor:
    """Adam-type preconditioning of one gradient (docs/algorithm.md §3):
    ``g / (sqrt(beta2 * v + (1 - beta2) * g^2) + eps)``, with ``v`` the
    optimizer's current ``exp_avg_sq`` (None: before its first step)."""
    v = grad.square().mul_(1.0 - beta2)
    if exp_avg_sq is not None:
        v.add_(exp_avg_sq, alpha=beta2)
    return grad / v.sqrt_().add_(eps)


def pair_moments(x: Tensor,
                 y: Tensor,
                 sizes: Sequence[int],
                 combo: Tuple[float, float] = (1.0, 1.0),
                 consume: str = '') -> Tensor:
    """``[<x, y>, |x|^2, |y|^2]`` of each segment of two flat vectors.

    Computed from the norms of ``x``, ``y`` and ``z = alpha x + beta y`` of
    each segment, ``<x, y> = (|z|^2 - alpha^2 |x|^2 - beta^2 |y|^2) /
    (2 alpha beta)``, accumulated by fused (foreach) kernels: the number of
    kernels does not grow with the number of segments, and a segment's sums
    do not depend on where it lies in the vectors (so the statistics are as
    reproducible as the gradients, whatever DDP's bucket layout). ``z``
    carries its elements' rounding, so pick ``combo`` along the difference of
    the two estimates (docs/algorithm.md §3).

    Args:
        x (Tensor): 1-D.
        y (Tensor): 1-D, as long as ``x``.
        sizes (Sequence[int]): Segment lengths (parameter sizes), summing to
            the vectors' length.
        combo (tuple[float, float]): ``(alpha, beta)``, both non-zero.
        consume (str): ``'x'`` or ``'y'``: that vector is not needed
            afterwards and ``z`` is formed in it (no temporary); ``''``:
            neither is changed.

    Returns:
        Tensor: float64 of shape ``(len(sizes), 3)``, on the vectors' device.
    """
    alpha, beta = combo
    sizes = list(sizes)

    def norms(v: Tensor) -> List[Tensor]:
        return torch._foreach_norm(v.split(sizes), 2, dtype=torch.float64)

    nx, ny = norms(x), norms(y)
    if consume == 'x':
        z = x.mul_(alpha).add_(y, alpha=beta)
    elif consume == 'y':
        z = y.mul_(beta).add_(x, alpha=alpha)
    else:
        z = torch.mul(x, alpha).add_(y, alpha=beta)
    xx, yy, zz = torch.stack(nx + ny + norms(z)).view(
        3, len(sizes)).square().unbind(0)
    xy = (zz - alpha * alpha * xx - beta * beta * yy) / (2 * alpha * beta)
    return torch.stack([xy, xx, yy], -1)


def mix_moments(moments: Tensor,
                mixing: Sequence[Sequence[float]]) -> Tensor:
    """The moments ``[<a, b>, |a|^2, |b|^2]`` of ``(a, b) = mixing @ (x, y)``
    from those of ``(x, y)`` (:func:`pair_moments`), without forming ``a``
    and ``b`` (docs/algorithm.md §3). With several processes, for example,
    ``x`` and ``y`` are the reduced sum and half-signed sum of the ranks'
    gradients, ``a`` and ``b`` the two halves' means, and
    ``<S + D, S - D> = |S|^2 - |D|^2``.

    Args:
        moments (Tensor): ``(..., 3)``, ``[<x, y>, |x|^2, |y|^2]``.
        mixing (Sequence[Sequence[float]]): ``((p, q), (r, s))``:
            ``a = p x + q y``, ``b = r x + s y``.

    Returns:
        Tensor: float64 of the shape of ``moments``.
    """
    xy, xx, yy = moments.double().unbind(-1)
    (p, q), (r, s) = mixing
    ab = p * r * xx + (p * s + q * r) * xy + q * s * yy
    aa = p * p * xx + 2 * p * q * xy + q * q * yy
    bb = r * r * xx + 2 * r * s * xy + s * s * yy
    return torch.stack([ab, aa, bb], -1)


def compute_factors(stats: Tensor,
                    scales: Tensor,
                    anchor: int,
                    momentum: float = MOMENTUM,
                    clamp: Tuple[float, float] = CLAMP,
                    eps: float = RATIO_EPS) -> Tuple[Tensor, Tensor, Tensor]:
    """Variances and running factors from the statistics
    (docs/algorithm.md §4).

    ``Phi_m = 1 - cos(u_A, u_B)``,
    ``mu_m = sqrt(clamp((Phi_a + eps) / (Phi_m + eps), lo, hi))`` (1 for the
    anchor), ``s_m <- momentum * s_m + (1 - momentum) * mu_m``. A module
    whose statistics are not usable (a zero or non-finite gradient) keeps its
    factor; if the anchor's are not usable every factor is kept.

    Args:
        stats (Tensor): ``(M, 3)``, ``[<u_A, u_B>, |u_A|^2, |u_B|^2]`` per
            module (:func:`mix_moments`).
        scales (Tensor): ``(M,)`` running factors before this step.
        anchor (int): Index of the anchor module.
        momentum (float): EMA momentum alpha.
        clamp (tuple[float, float]): Bounds ``(lo, hi)`` of the ratio.
        eps (float): Added to both variances of the ratio.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``(phi, valid, new_scales)``; ``phi``
        is NaN where ``valid`` is False.
    """
    stats = stats.double()
    dot, sq_a, sq_b = stats.unbind(-1)
    cos = dot / (sq_a.sqrt() * sq_b.sqrt())
    phi = (1.0 - cos).clamp(0.0, 2.0)
    valid = torch.isfinite(stats).all(-1) & (sq_a > 0) & (sq_b > 0)
    phi = torch.where(valid, phi, torch.full_like(phi, float('nan')))
    if not bool(valid[anchor]):
        return phi, valid, scales.clone()
    mu = ((phi[anchor] + eps) / (phi + eps)).clamp(*clamp).sqrt()
    mu[anchor] = 1.0
    updated = momentum * scales.double() + (1.0 - momentum) * mu
    new_scales = torch.where(valid, updated, scales.double())
    return phi, valid, new_scales.to(scales.dtype)


def gradient_noise(stats: Tensor, shares: Tuple[float, float],
                   samples: float = 1.0) -> Tensor:
    """Per module, one step's unbiased estimates of ``|G|^2``, the squared
    true gradient, and of ``tr(Sigma)``, the trace of the per-sample
    gradient covariance, for a global batch of ``samples`` (McCandlish et
    al. 2018, appendix A; docs/algorithm.md §9). With the default
    ``samples=1`` the second is ``tr(Sigma) / B``, what a caller that does
    not know the batch can keep.

    The two halves' mean gradients ``g_A``, ``g_B`` are independent, from the
    shares ``f_A``, ``f_B`` of the batch: ``E<g_A, g_B> = |G|^2`` and
    ``E|g_A - g_B|^2 = tr(Sigma) (1 / B_A + 1 / B_B) = tr(Sigma) /
    (f_A f_B B)``.

    Args:
        stats (Tensor): ``(M, 3)`` raw (not preconditioned) moments
            ``[<g_A, g_B>, |g_A|^2, |g_B|^2]`` per module.
        shares (tuple[float, float]): ``(f_A, f_B)``, summing to 1.
        samples (float): The global batch ``B``, in samples.

    Returns:
        Tensor: float64 ``(M, 2)``, ``[|G|^2, tr(Sigma) / B * samples]`` per
        module.
    """
    ab, aa, bb = stats.double().unbind(-1)
    f_a, f_b = shares
    return torch.stack([ab, samples * f_a * f_b * (aa + bb - 2 * ab)], -1)


def noise_scale(averages: Tensor, samples: float) -> Tensor:
    """The simple noise scale ``B_noise = tr(Sigma) / |G|^2`` in samples,
    the batch beyond which a larger batch brings little more progress per
    step (docs/algorithm.md §9).

    Args:
        averages (Tensor): ``(M, 2)`` averages of :func:`gradient_noise`'s
            two estimates, each averaged on its own over steps (a mean of
            ratios would be biased); NaN where there is none.
        samples (float): Samples (images) per optimizer step, ``B``.

    Returns:
        Tensor: float64 ``(M,)``; NaN without an estimate, ``inf`` where the
        ``|G|^2`` estimate is not positive (noise-dominated: far beyond the
        batch).
    """
    gsq, trace = averages.double().unbind(-1)
    value = samples * trace / gsq
    value = torch.where(gsq > 0, value, torch.full_like(value, math.inf))
    return torch.where(torch.isfinite(averages).all(-1), value,
                       torch.full_like(value, math.nan))


def large_batch_plan(batch: float, lr: float, noise_scale: float,
                     target_batch: float) -> dict:
    """The learning rate and training length at ``target_batch`` from a
    base run at ``batch`` with a good learning rate ``lr``, given the
    gradient noise scale ``B_noise`` measured in it (McCandlish et al.
    2018, §2.2-2.3; docs/algorithm.md §10).

    The best step size at batch ``B`` is ``eps_max / (1 + B_noise / B)``,
    and steps and samples trade off as ``(S / S_min - 1) (E / E_min - 1) =
    1``, so relative to the base run::

        lr     = lr_b (1 + B_noise / b) / (1 + B_noise / B)
        steps  = (1 + B_noise / B) / (1 + B_noise / b)
        epochs = (1 + B / B_noise) / (1 + b / B_noise)

    Linear scaling well below ``B_noise``, saturating above it. A smaller
    target batch is the same formula.

    Args:
        batch (float): The base run's global batch ``b``, in samples.
        lr (float): Its (tuned) learning rate ``lr_b``.
        noise_scale (float): ``B_noise`` in samples (:func:`noise_scale`),
            finite and positive.
        target_batch (float): The batch ``B`` to plan for, in samples.

    Returns:
        dict: ``lr`` (the planned learning rate), ``steps`` and ``epochs``
        (multipliers of the base run's optimizer steps and epochs).

    Examples:
        >>> large_batch_plan(8, 0.01, noise_scale=13.0, target_batch=128)
        {'lr': 0.0238..., 'steps': 0.4196..., 'epochs': 6.714...}
    """
    if not (math.isfinite(noise_scale) and noise_scale > 0):
        raise ValueError(
            f'large_batch_plan: no plan without a finite positive noise '
            f'scale (got B_noise={noise_scale}): a NaN means no estimate '
            'yet, inf a noise-dominated gradient; measure later in '
            'training or over more steps.')
    for name, value in (('batch', batch), ('target_batch', target_batch)):
        if not value >= 1:
            raise ValueError(f'large_batch_plan: {name} must be >= 1 '
                             f'sample, got {value}.')
    steps = (1 + noise_scale / target_batch) / (1 + noise_scale / batch)
    return dict(lr=lr / steps, steps=steps,
                epochs=steps * target_batch / batch)


@contextmanager
def scaled_lr(optimizer: Optimizer,
              scale_of: Callable[[Tensor], float]) -> Iterator[None]:
    """Within the context, ``optimizer.step()`` acts as if every parameter's
    group learning rate were multiplied by ``scale_of(param)``.

    Each group is viewed as sub-groups of equal scale (shallow copies that
    share every setting but ``params`` and ``lr``); after the context the
    original groups come back with their own ``lr``, and anything the
    optimizer wrote into the views (e.g. a per-group step count) is copied
    back. Parameter state is keyed by parameter, so it is unaffected. This
    works for groups of one module, of one parameter, or of several modules,
    and leaves schedulers, logged lr and ``state_dict`` untouched.

    Examples:
        >>> with scaled_lr(optimizer, lambda p: factor[p]):
        ...     optimizer.step()
    """
    original = optimizer.param_groups
    views = []
    for group in original:
        buckets: dict = {}
        for param in group['params']:
            buckets.setdefault(float(scale_of(param)), []).append(param)
        for scale, params in buckets.items():
            view = dict(group, params=params, lr=group['lr'] * scale)
            views.append((group, view))
    optimizer.param_groups = [view for _, view in views]
    try:
        yield
    finally:
        optimizer.param_groups = original
        for group, view in views:
            for key, value in view.items():
                if key not in ('params', 'lr'):
                    group[key] = value
