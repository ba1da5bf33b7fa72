"""LAMB for mmengine: a thin wrapper of :class:`timm.optim.Lamb`."""
from typing import Any, Optional

from mmengine.registry import OPTIMIZERS
from torch.optim.optimizer import ParamsT

from ._timm import timm_optim_module

Lamb = timm_optim_module('lamb').Lamb


@OPTIMIZERS.register_module(name='TimmLAMB')
class TimmLAMB(Lamb):
    """LAMB (You et al., 2019, https://arxiv.org/abs/1904.00962) from timm
    (NVIDIA FusedLAMB / NVLAMB variant), registered in mmengine's root
    ``OPTIMIZERS`` as ``'TimmLAMB'``.

    The update of one parameter tensor ``w`` with gradient ``g`` at the
    group's step ``t`` (counted in ``group['step']``) is (timm, defaults)::

        g = g / max(1, global_grad_norm / max_grad_norm)   # if not None
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        r = (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)
        u = r + weight_decay * w
        if weight_decay != 0 or always_adapt:
            u = u * |w| / |u|          # 1 where |w| == 0 or |u| == 0
        w = w - lr * u

    ``lr`` multiplies the whole update at step time (the state ``m``, ``v``
    does not depend on it), so scaling a group's ``lr`` for one ``step()``
    (AGVM) scales exactly that step's update.

    A group with ``weight_decay == 0`` skips the trust ratio (it gets the
    Adam update) unless ``always_adapt=True``. With mmengine's
    ``paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.)`` this
    excludes norm and bias parameters from both weight decay and the trust
    ratio, as in the AGVM paper (mmengine then requires ``weight_decay`` in
    the optimizer config).

    Differences from timm's defaults: ``max_grad_norm`` defaults to None, so
    gradient clipping is left to mmengine's ``optim_wrapper.clip_grad``
    instead of being stacked on it (timm clips the global norm to 1.0 by
    default). ``max_grad_norm`` is read from the optimizer defaults, not per
    group.

    Args:
        params (iterable): Parameters or parameter-group dicts.
        lr (float): Learning rate. Defaults to 1e-3.
        bias_correction (bool): Adam bias correction. Defaults to True.
        betas (tuple[float, float]): ``(beta1, beta2)``.
            Defaults to (0.9, 0.999).
        eps (float): Added to ``sqrt(v_hat)``. Defaults to 1e-6.
        weight_decay (float): L2 weight decay added to the Adam direction
            before the trust ratio. Defaults to 0.01.
        grad_averaging (bool): Use ``(1 - beta1)`` on ``g`` in ``m``.
            Defaults to True.
        max_grad_norm (float, optional): Clip the global gradient norm
            inside the optimizer. Defaults to None (off).
        trust_clip (bool): LAMBC, clip the trust ratio at 1.
            Defaults to False.
        always_adapt (bool): Adapt groups with zero weight decay as well.
            Defaults to False.
        **kwargs: Passed on to :class:`timm.optim.Lamb` (``caution``,
            ``decoupled_decay``, ``corrected_weight_decay``, ``foreach``
            where the installed timm has them).

    Examples:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(type='TimmLAMB', lr=2e-3, weight_decay=0.05),
        ...     paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
        ...     clip_grad=dict(max_norm=1.0))
    """

    def __init__(self,
                 params: ParamsT,
                 lr: float = 1e-3,
                 max_grad_norm: Optional[float] = None,
                 **kwargs: Any) -> None:
        # the other defaults are timm's (listed above); a config's list
        # ``betas`` becomes the tuple timm stores
        if 'betas' in kwargs:
            kwargs['betas'] = tuple(kwargs['betas'])
        super().__init__(params, lr=lr, max_grad_norm=max_grad_norm, **kwargs)
