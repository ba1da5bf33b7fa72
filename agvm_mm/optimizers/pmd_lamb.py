"""PMD-LAMB: LAMB with periodical decay of its moment estimates."""
from typing import Any, Callable, Optional

import torch
from mmengine.registry import OPTIMIZERS
from torch.optim.optimizer import ParamsT

from .lamb import TimmLAMB


@OPTIMIZERS.register_module(name='PMDLAMB')
class PMDLAMB(TimmLAMB):
    """Periodical Moments Decay LAMB, registered in mmengine's root
    ``OPTIMIZERS`` as ``'PMDLAMB'``.

    PMD-LAMB is proposed in Wang et al., "Large Batch Optimization for
    Object Detection: Training COCO in 12 Minutes", ECCV 2020, "to
    effectively reduce the negative effects of the lagging historical
    gradients" (abstract). The paper's exact update rule and its
    hyper-parameters could not be retrieved (no public implementation was
    found either), so this class implements the rule as the name and the
    abstract describe it:

    Every step is the :class:`TimmLAMB` step (timm's LAMB, see there). In
    addition each parameter group counts its ``step()`` calls in
    ``group['pmd_step']``; right after the step with
    ``pmd_step % decay_period == 0`` the moment estimates of every parameter
    of the group are multiplied by ``decay_factor``::

        m <- decay_factor * m        # state['exp_avg']
        v <- decay_factor * v        # state['exp_avg_sq']

    so that the next step uses ``m = beta1 * decay_factor * m + (1 - beta1)
    * g`` (same for ``v``) and stale history weighs less. ``decay_factor=0``
    resets the moments. What is not changed: ``beta1``/``beta2``, and the
    bias-correction step count ``group['step']`` (it keeps counting from the
    start of training), so the Adam direction right after a decay is
    smaller; the per-layer trust ratio renormalises the update size of
    adapted (``weight_decay != 0``) groups, not of excluded bias/norm groups.
    See ``docs/optimizers.md`` for what was confirmed and what assumed.

    The counter is stored in the param groups, so it is part of
    ``state_dict()`` and a resumed run continues with the same period phase.
    Both ``decay_period`` and ``decay_factor`` have no default because the
    paper's values could not be confirmed; they may also be set per group.

    Args:
        params (iterable): Parameters or parameter-group dicts.
        lr (float): Learning rate. Defaults to 1e-3.
        decay_period (int): Decay the moments every ``decay_period``
            optimizer steps (>= 1).
        decay_factor (float): Multiplier of ``exp_avg`` and ``exp_avg_sq``
            at the period boundary, in ``[0, 1]``.
        **kwargs: The other :class:`TimmLAMB` arguments (``betas``, ``eps``,
            ``weight_decay``, ``max_grad_norm`` (default None), ...).

    Examples:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(
        ...         type='PMDLAMB', lr=2e-3, weight_decay=0.05,
        ...         decay_period=500, decay_factor=0.5),
        ...     paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
    """

    def __init__(self,
                 params: ParamsT,
                 lr: float = 1e-3,
                 *,
                 decay_period: int,
                 decay_factor: float,
                 **kwargs: Any) -> None:
        _check(decay_period, decay_factor)
        super().__init__(params, lr=lr, **kwargs)
        # Added after the timm constructor, which does not know these keys.
        self.defaults.update(
            decay_period=decay_period, decay_factor=decay_factor, pmd_step=0)
        for group in self.param_groups:
            for key in ('decay_period', 'decay_factor', 'pmd_step'):
                group.setdefault(key, self.defaults[key])
            _check(group['decay_period'], group['decay_factor'])

    @torch.no_grad()
    def step(self,
             closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """Perform one LAMB step, then decay the moments at a period end."""
        loss = _without_step_hooks(TimmLAMB.step)(self, closure)
        for group in self.param_groups:
            group['pmd_step'] = int(group.get('pmd_step', 0)) + 1
            if group['pmd_step'] % group['decay_period'] != 0:
                continue
            for p in group['params']:
                state = self.state.get(p)
                if state and 'exp_avg' in state:
                    state['exp_avg'].mul_(group['decay_factor'])
                    state['exp_avg_sq'].mul_(group['decay_factor'])
        return loss


def _without_step_hooks(step: Callable) -> Callable:
    """torch wraps each optimizer class's ``step`` in a runner of the step
    hooks (``Optimizer._patch_step_function``, marked ``hooked``); unwrap the
    parent's so that hooks run once per ``PMDLAMB.step()``, not twice."""
    while getattr(step, 'hooked', False):
        step = step.__wrapped__
    return step


def _check(decay_period: int, decay_factor: float) -> None:
    if int(decay_period) != decay_period or decay_period < 1:
        raise ValueError(
            f'decay_period must be a positive integer, got {decay_period}')
    if not 0.0 <= decay_factor <= 1.0:
        raise ValueError(f'decay_factor must be in [0, 1], got {decay_factor}')
