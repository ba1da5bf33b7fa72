"""Hook that logs AGVM's per-module statistics and can start AGVM after the
warm-up."""
import math
from typing import List, Optional, Sequence, Tuple

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..optim.agvm_config import find_warmup
from ..optim.published import StatisticsStep, published_statistics

# the key of the whole model's B_noise among the modules' in the log
WHOLE_MODEL = 'model'


def agvm_wrappers(runner) -> List:
    """The AGVM wrappers of the runner (an OptimWrapperDict may hold
    several)."""
    wrapper = runner.optim_wrapper
    candidates = (wrapper.values()
                  if hasattr(wrapper, 'optim_wrappers') else [wrapper])
    return [w for w in candidates if hasattr(w, 'agvm_cfg')]


def statistics_steps(runner) -> List[StatisticsStep]:
    """The statistics steps the runner's AGVM wrappers published in this
    iteration (:mod:`~agvm_mm.optim.published`): usually none or one."""
    wrappers = agvm_wrappers(runner)
    return [s for s in published_statistics(runner.message_hub)
            if any(s.wrapper is w for w in wrappers)]


def samples_per_step(runner, wrapper) -> int:
    """Samples (images) per optimizer step of the run: the dataloader's batch
    x processes x ``accumulative_counts``."""
    return (runner.train_dataloader.batch_size * get_world_size() *
            wrapper.accumulative_counts)


def warmup_end_iter(runner) -> Optional[int]:
    """Runner iteration at which the runner's warm-up scheduler ends
    (:func:`~agvm_mm.optim.agvm_config.find_warmup`), None without one."""
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    per_epoch = (len(runner.train_dataloader)
                 if any(s.by_epoch for s in schedulers) else None)
    found = find_warmup([(s.begin, s.end, s.by_epoch) for s in schedulers],
                        runner.max_iters, per_epoch)
    return None if found is None else found[1]


def clip_window_around(warm: int,
                       clip_window: Sequence[int]) -> Tuple[int, int]:
    """The optimizer steps ``[warm - before, warm + after)`` (from 0 at the
    earliest) of ``clip_window = (before, after)`` around the warm-up's end
    at optimizer step ``warm``."""
    before, after = clip_window
    return (max(0, warm - before), warm + after)


@HOOKS.register_module()
class AGVMHook(Hook):
    """Puts each module's variance ``Phi_m``, factor ``s_m`` and critical
    batch ``B_noise`` (the gradient noise scale in images, NaN while there is
    no estimate or the gradient is noise-dominated; docs/algorithm.md §9)
    into the message hub at every AGVM statistics step the wrapper published
    (as ``train/agvm_phi/<m>``, ``train/agvm_scale/<m>`` and
    ``train/agvm_bnoise/<m>``, and the whole model's ``B_noise`` as
    ``train/agvm_bnoise/model``, the one that plans the batch:
    :func:`agvm_mm.large_batch_plan`), so the logger prints them and every
    visualizer backend stores them; places the AGVM window relative to the
    warm-up, as the authors' configs do (AGVM from 100 steps after the
    warm-up ends, gradient clipping from 100 steps before to 100 after it).

    Args:
        start_after_warmup (bool): If ``agvm.start_iter`` is None, start
            AGVM ``start_offset`` optimizer steps after the warm-up
            scheduler ends. Defaults to True.
        start_offset (int): Optimizer steps between the end of the warm-up
            and AGVM's start. Defaults to 0.
        clip_window (tuple[int, int], optional): ``(before, after)``: if
            ``agvm.clip_grad_window`` is None, clip gradients (with the
            wrapper's ``clip_grad``) only on the optimizer steps
            ``[end - before, end + after)`` around the warm-up's end.
            None: leave ``clip_grad_window`` as configured.

    Examples:
        >>> custom_hooks = [dict(type='AGVMHook')]
        >>> # the authors' schedule shape
        >>> custom_hooks = [dict(type='AGVMHook', start_offset=100,
        ...                      clip_window=(100, 100))]
    """
    priority = 'NORMAL'  # before LoggerHook reads the message hub

    def __init__(self, start_after_warmup: bool = True,
                 start_offset: int = 0,
                 clip_window: Optional[Sequence[int]] = None) -> None:
        if not isinstance(start_offset, int) or start_offset < 0:
            raise ValueError(f'AGVMHook.start_offset={start_offset!r}: use '
                             'an integer >= 0 (optimizer steps).')
        if clip_window is not None and (
                len(clip_window) != 2
                or not all(isinstance(v, int) and v >= 0
                           for v in clip_window)):
            raise ValueError(f'AGVMHook.clip_window={clip_window!r}: use '
                             '(before, after), integers >= 0 (optimizer '
                             'steps around the end of the warm-up), or None.')
        self.start_after_warmup = start_after_warmup
        self.start_offset = start_offset
        self.clip_window = None if clip_window is None else tuple(clip_window)

    def before_train(self, runner) -> None:
        wrappers = agvm_wrappers(runner)
        if not wrappers:
            print_log('AGVMHook: no AGVM optim wrapper; nothing to log.',
                      'current')
        end = warmup_end_iter(runner)
        for wrapper in wrappers:
            cfg = wrapper.agvm_cfg
            # optimizer step of the warm-up's end
            warm = (None if end is None else math.ceil(
                end / wrapper.accumulative_counts))
            if cfg.start_iter is None and self.start_after_warmup:
                self._set_start(cfg, end, warm)
            if self.clip_window is not None and cfg.clip_grad_window is None:
                self._set_clip_window(wrapper, warm)

    def _set_start(self, cfg, end: Optional[int], warm: Optional[int]) -> None:
        start = cfg.resolve_start(warm, self.start_offset)
        offset = f' + start_offset {self.start_offset}' \
            if self.start_offset else ''
        if warm is None:
            print_log(
                f'AGVMHook: AGVM starts at optimizer step {start}: '
                'agvm.start_iter is None and no warm-up scheduler was found '
                '(none begins at iteration 0 and ends before training does),'
                f' so the start is step 0{offset}.', 'current')
            return
        print_log(
            f'AGVMHook: AGVM starts at optimizer step {start}: the '
            f'warm-up ends at runner iteration {end} = optimizer step '
            f'{warm}{offset}.', 'current')

    def _set_clip_window(self, wrapper, warm: Optional[int]) -> None:
        if warm is None:
            raise ValueError(
                'AGVMHook.clip_window is placed around the end of the '
                'warm-up, but no warm-up scheduler was found. Add one to '
                'param_scheduler, or set optim_wrapper.agvm.clip_grad_window'
                '=(begin, end) and drop clip_window.')
        if not wrapper.clip_grad_kwargs:
            raise ValueError(
                'AGVMHook.clip_window clips gradients around the warm-up, '
                'but the optim wrapper has no clip_grad: set optim_wrapper.'
                'clip_grad=dict(max_norm=1.0) (the authors\' setting).')
        cfg = wrapper.agvm_cfg
        cfg.clip_grad_window = clip_window_around(warm, self.clip_window)
        cfg.check()
        print_log(
            f'AGVMHook: gradients clipped ({wrapper.clip_grad_kwargs}) only '
            f'on optimizer steps [{cfg.clip_grad_window[0]}, '
            f'{cfg.clip_grad_window[1]}) around the warm-up\'s end at step '
            f'{warm}.', 'current')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        hub = runner.message_hub
        for stats in statistics_steps(runner):
            for name, phi in stats.variances.items():
                hub.update_scalar(f'train/agvm_phi/{name}', phi)
            for name, scale in stats.scales.items():
                hub.update_scalar(f'train/agvm_scale/{name}', scale)
            wrapper = stats.wrapper
            samples = samples_per_step(runner, wrapper)
            noise = wrapper.agvm_noise_scale(samples)
            noise[WHOLE_MODEL] = wrapper.agvm_model_noise_scale(samples)
            for name, value in noise.items():  # inf: noise-dominated
                hub.update_scalar(f'train/agvm_bnoise/{name}',
                                  value if math.isfinite(value) else math.nan)
