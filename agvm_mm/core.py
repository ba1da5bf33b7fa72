"""AGVM as three small transformations (docs/algorithm.md §3-§5), each
testable alone:

1. :func:`gather_statistics`: per-module dot products of two gradient
   estimates (optionally Adam-preconditioned by :func:`precondition`);
2. :func:`compute_factors`: variances ``Phi = 1 - cos`` and the running
   factors ``s``;
3. :func:`scaled_lr`: step any optimizer as if each module's learning rate
   were multiplied by its factor, then restore.
"""
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence, Tuple

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


def gather_statistics(pairs: Sequence[Tuple[int, Tensor, Tensor]],
                      num_modules: int) -> Tensor:
    """Sum ``<u_A, u_B>``, ``|u_A|^2`` and ``|u_B|^2`` per module.

    Args:
        pairs: ``(module_index, u_A, u_B)`` for each parameter; the module's
            vectors are the concatenation of its parameters' tensors.
        num_modules (int): Number of modules.

    Returns:
        Tensor: float64 of shape ``(num_modules, 3)``, on the CPU.
    """
    stats = None
    for index, u_a, u_b in pairs:
        a, b = u_a.detach().float().flatten(), u_b.detach().float().flatten()
        row = torch.stack([a @ b, a @ a, b @ b]).double()
        if stats is None:  # accumulate on the gradients' device: one sync
            stats = torch.zeros(num_modules, 3, dtype=torch.float64,
                                device=row.device)
        stats[index] += row
    if stats is None:
        return torch.zeros(num_modules, 3, dtype=torch.float64)
    return stats.cpu()


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
        stats (Tensor): ``(M, 3)`` from :func:`gather_statistics`.
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
