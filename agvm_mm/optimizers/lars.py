"""LARS for mmengine: a thin wrapper of :class:`timm.optim.Lars`."""
from typing import Any

from mmengine.registry import OPTIMIZERS
from torch.optim.optimizer import ParamsT

from ._timm import timm_optim_module

Lars = timm_optim_module('lars').Lars


@OPTIMIZERS.register_module(name='TimmLARS')
class TimmLARS(Lars):
    """LARS (You et al., 2017, https://arxiv.org/abs/1708.03888) from timm,
    registered in mmengine's root ``OPTIMIZERS`` as ``'TimmLARS'``.

    The update of one parameter tensor ``w`` with gradient ``g`` is (timm)::

        if weight_decay != 0 or always_adapt:
            ratio = trust_coeff * |w| / (|g| + weight_decay * |w| + eps)
            # ratio = 1 where |w| == 0 or |g| == 0
            if trust_clip:  # LARC
                ratio = min(ratio / lr, 1)
            g = ratio * (g + weight_decay * w)
        buf = g                                # first step
        buf = momentum * buf + (1 - dampening) * g   # later steps
        w = w - lr * buf      # nesterov: w - lr * (g + momentum * buf)

    ``lr`` multiplies the whole update at step time and is *not* folded into
    the momentum buffer (unlike the paper's Algorithm 1 and mmpretrain's
    ``LARS``), so scaling a group's ``lr`` for one ``step()`` (AGVM) scales
    exactly that step's update and leaves the state untouched.

    A group with ``weight_decay == 0`` is not adapted (plain SGD with
    momentum) unless ``always_adapt=True``. With mmengine's
    ``paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.)`` this
    excludes norm and bias parameters from both weight decay and the trust
    ratio, as in the AGVM paper (mmengine then requires ``weight_decay`` in
    the optimizer config). Mind that the default ``weight_decay=0`` turns
    LARS into plain SGD with momentum for every group.

    Args:
        params (iterable): Parameters or parameter-group dicts.
        lr (float): Global learning rate. Required (timm defaults to 1.0).
        momentum (float): Momentum factor. Defaults to 0 (timm default).
        dampening (float): Momentum dampening. Defaults to 0.
        weight_decay (float): L2 weight decay inside the trust ratio.
            Defaults to 0.
        nesterov (bool): Nesterov momentum. Defaults to False.
        trust_coeff (float): Trust coefficient ``eta``. Defaults to 0.001.
        eps (float): Added to the trust-ratio denominator. Defaults to 1e-8.
        trust_clip (bool): LARC clipping ``min(ratio / lr, 1)``. Note that
            the update is then not proportional to ``lr``. Defaults to False.
        always_adapt (bool): Adapt groups with zero weight decay as well.
            Defaults to False.
        **kwargs: Passed on to :class:`timm.optim.Lars` (e.g. ``foreach`` in
            timm versions that have it).

    Examples:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(
        ...         type='TimmLARS', lr=0.2, momentum=0.9,
        ...         weight_decay=1e-4, trust_coeff=0.001),
        ...     paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
    """

    def __init__(self, params: ParamsT, lr: float, **kwargs: Any) -> None:
        # lr is required (timm's default 1.0 is never what a detector
        # wants); the other defaults are timm's, listed above
        super().__init__(params, lr=lr, **kwargs)
