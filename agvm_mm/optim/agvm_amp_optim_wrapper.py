"""AGVM on top of mmengine's ``AmpOptimWrapper`` (fp16 / bf16)."""
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .agvm_optim_wrapper import AGVMOptimWrapperMixin


@OPTIM_WRAPPERS.register_module()
class AGVMAmpOptimWrapper(AGVMOptimWrapperMixin, AmpOptimWrapper):
    """:class:`AmpOptimWrapper` with AGVM. Statistics are taken on gradients
    divided by the loss scale (one unscale, done by ``AmpOptimWrapper``); a
    non-finite gradient discards that step's statistics and the loss scaler
    still decides whether the step is skipped. Needs an accelerator, like
    ``AmpOptimWrapper``.

    Args:
        agvm (dict, optional): See :class:`AGVMConfig`.
        **kwargs: As for :class:`AmpOptimWrapper` (``loss_scale``, ``dtype``,
            ``accumulative_counts``, ``clip_grad``, ...).

    Examples:
        >>> optim_wrapper = dict(
        ...     type='AGVMAmpOptimWrapper', loss_scale='dynamic',
        ...     optimizer=dict(type='SGD', lr=0.16, momentum=0.9),
        ...     agvm=dict(interval=10, start_iter=1020))
    """
