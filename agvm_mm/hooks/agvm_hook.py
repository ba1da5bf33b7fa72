"""Hook that logs AGVM's per-module statistics and can start AGVM after the
warm-up."""
import math
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS


def _wrappers(runner) -> List:
    """The AGVM wrappers of the runner (an OptimWrapperDict may hold
    several)."""
    wrapper = runner.optim_wrapper
    candidates = (wrapper.values()
                  if hasattr(wrapper, 'optim_wrappers') else [wrapper])
    return [w for w in candidates if hasattr(w, 'agvm_cfg')]


def warmup_end_iter(runner) -> Optional[int]:
    """Runner iteration at which the warm-up scheduler ends: the first
    parameter scheduler that begins at 0 and ends before training does."""
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    for scheduler in schedulers:
        end = scheduler.end
        if scheduler.by_epoch:
            end = end * len(runner.train_dataloader)
        if scheduler.begin == 0 and end < runner.max_iters:
            return int(end)
    return None


@HOOKS.register_module()
class AGVMHook(Hook):
    """Puts each module's variance ``Phi_m`` and factor ``s_m`` into the
    message hub at every AGVM statistics step (as ``train/agvm_phi/<m>`` and
    ``train/agvm_scale/<m>``), so the logger prints them and every
    visualizer backend stores them.

    Args:
        start_after_warmup (bool): If ``agvm.start_iter`` is None, start
            AGVM at the optimizer step where the warm-up scheduler ends.
            Defaults to True.

    Examples:
        >>> custom_hooks = [dict(type='AGVMHook')]
    """
    priority = 'NORMAL'  # before LoggerHook reads the message hub

    def __init__(self, start_after_warmup: bool = True) -> None:
        self.start_after_warmup = start_after_warmup
        self._seen = {}

    def before_train(self, runner) -> None:
        wrappers = _wrappers(runner)
        if not wrappers:
            print_log('AGVMHook: no AGVM optim wrapper; nothing to log.',
                      'current')
        for wrapper in wrappers:
            self._seen[id(wrapper)] = wrapper.agvm_steps
            cfg = wrapper.agvm_cfg
            if cfg.start_iter is not None or not self.start_after_warmup:
                continue
            end = warmup_end_iter(runner)
            cfg.start_iter = (0 if end is None else math.ceil(
                end / wrapper._accumulative_counts))
            print_log(
                f'AGVMHook: AGVM starts at optimizer step {cfg.start_iter} '
                f'(warm-up ends at iteration {end}).', 'current')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        for wrapper in _wrappers(runner):
            if wrapper.agvm_steps == self._seen.get(id(wrapper)):
                continue
            self._seen[id(wrapper)] = wrapper.agvm_steps
            hub = runner.message_hub
            for name, phi in wrapper.agvm_variances.items():
                hub.update_scalar(f'train/agvm_phi/{name}', phi)
            for name, scale in wrapper.agvm_scales.items():
                hub.update_scalar(f'train/agvm_scale/{name}', scale)
