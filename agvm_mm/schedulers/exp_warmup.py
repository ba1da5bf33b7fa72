"""Exponential warm-up, as mmcv 1.x's ``warmup='exp'`` that the AGVM authors'
configs use (mmengine only ships linear and constant warm-up)."""
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class ExpWarmupParamScheduler(_ParamScheduler):
    """Raises the parameter geometrically from ``start_factor`` x its value
    to its value over ``[begin, end)``: at step ``t`` of the window the factor
    is ``start_factor ** (1 - t / T)`` with ``T = end - begin - 1``, so it is
    ``start_factor`` on the first step and 1 on the last one (the same end
    convention as mmengine's ``LinearLR``, so it is a drop-in replacement).
    Chainable: each step multiplies the value by the constant
    ``start_factor ** (-1 / T)``, so it composes with, e.g., ``MultiStepLR``.

    Args:
        optimizer (Optimizer or OptimWrapper): The wrapped optimizer.
        param_name (str): The parameter to schedule, e.g. ``'lr'``.
        start_factor (float): Factor on the first step, in (0, 1].
            Defaults to 0.001 (the authors' ``warmup_ratio``).
        begin (int): First step of the warm-up. Defaults to 0.
        end (int): First step after the warm-up. Defaults to INF.
        last_step (int): Index of the last step (for resume without a state
            dict). Defaults to -1.
        by_epoch (bool): Whether ``begin``/``end`` count epochs. Defaults to
            False (warm-ups count iterations).
        verbose (bool): Print the value on each update. Defaults to False.
    """

    def __init__(self,
                 optimizer,
                 param_name: str,
                 start_factor: float = 0.001,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False):
        if not 0 < start_factor <= 1:
            raise ValueError('ExpWarmup: start_factor must be in (0, 1], '
                             f'got {start_factor}.')
        if end == INF:
            raise ValueError('ExpWarmup: set `end`, the step where the '
                             'warm-up ends.')
        self.start_factor = start_factor
        self.total_iters = end - begin - 1
        super().__init__(
            optimizer,
            param_name=param_name,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True,
                              epoch_length=None, **kwargs):
        """Build an iteration-based instance from an epoch-based config."""
        assert by_epoch, 'Only epoch-based kwargs can be converted.'
        assert epoch_length is not None and epoch_length > 0
        begin = int(begin * epoch_length)
        if end != INF:
            end = int(end * epoch_length)
        return cls(*args, begin=begin, end=end, by_epoch=False, **kwargs)

    def _factor(self, step: int) -> float:
        if self.total_iters <= 0:
            return 1.0
        step = min(max(step, 0), self.total_iters)
        return self.start_factor**(1.0 - step / self.total_iters)

    def _get_value(self):
        """Chainable form: scale the current value by the factor's change."""
        if self.last_step == 0:
            ratio = self._factor(0)
        else:
            ratio = self._factor(self.last_step) / self._factor(
                self.last_step - 1)
        return [
            group[self.param_name] * ratio
            for group in self.optimizer.param_groups
        ]

    def _get_closed_form_value(self):
        return [
            base * self._factor(self.last_step) for base in self.base_values
        ]


@PARAM_SCHEDULERS.register_module()
class ExpWarmupLR(LRSchedulerMixin, ExpWarmupParamScheduler):
    """Exponential learning-rate warm-up (mmcv 1.x ``warmup='exp'``).

    Examples:
        >>> param_scheduler = [
        ...     dict(type='ExpWarmupLR', start_factor=0.001, by_epoch=False,
        ...          begin=0, end=920),
        ...     dict(type='MultiStepLR', begin=0, end=16, by_epoch=True,
        ...          milestones=[12, 14], gamma=0.1)]
    """
