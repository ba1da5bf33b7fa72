"""The AGVM window a config implies for its real run (start, stop, interval,
clipping window, in optimizer steps), read as :class:`AGVMHook` and the
wrapper would place it, and the problems found in it."""
import inspect
import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from mmengine.config import Config

from agvm_mm.hooks.agvm_hook import clip_window_around

INF = int(1e9)  # mmengine's "no end" of a scheduler


def type_name(node: Any) -> str:
    """A config node's ``type`` without its scope, '' if it has none."""
    kind = node.get('type', '') if isinstance(node, dict) else ''
    return kind.split('.')[-1] if isinstance(kind, str) else kind.__name__


@dataclass
class Window:
    """The AGVM window of the real run, in optimizer steps; ``None`` where
    the value depends on the epoch length and none was given."""
    accumulative_counts: int
    interval: int
    start: Optional[int]
    start_source: str
    stop: Optional[int]
    clip: Optional[Tuple[int, int]]
    clip_source: str
    total_steps: Optional[int]
    epochs: Optional[int] = None

    def lines(self) -> List[str]:
        k = self.accumulative_counts

        def at(step: Optional[int]) -> str:
            return ('unknown' if step is None else
                    f'optimizer step {step} = runner iteration {step * k}')

        clip = (self.clip_source if self.clip is None else
                f'optimizer steps [{self.clip[0]}, {self.clip[1]}) = runner '
                f'iterations [{self.clip[0] * k}, {self.clip[1] * k}) '
                f'({self.clip_source})')
        total = (f'{self.total_steps} optimizer steps' if self.total_steps
                 else f'{self.epochs} epochs (--iters-per-epoch N gives '
                 'the steps)')
        return [
            f'accumulative_counts {k}; training {total}',
            f'start     {at(self.start)} ({self.start_source})',
            f'stop      {at(self.stop) if self.stop is not None else "none"}'
            + ('' if self.stop is not None else ' (to the end of training)'),
            f'interval  every {self.interval} optimizer steps '
            f'(= {self.interval * k} runner iterations)',
            f'clip      {clip}',
        ]


def scheduler_by_epoch(sched: dict, scope: Optional[str]) -> bool:
    """``by_epoch`` of a scheduler config, with its class's default."""
    if 'by_epoch' in sched:
        return bool(sched['by_epoch'])
    from mmengine.registry import PARAM_SCHEDULERS
    with PARAM_SCHEDULERS.switch_scope_and_registry(scope) as registry:
        cls = registry.get(sched['type'])
    param = inspect.signature(cls).parameters.get('by_epoch') if cls else None
    return True if param is None else bool(param.default)


def _max_iters(cfg: Config,
               iters_per_epoch: Optional[int]) -> Optional[int]:
    loop = cfg.get('train_cfg') or {}
    if 'max_iters' in loop:
        return int(loop['max_iters'])
    if 'max_epochs' in loop and iters_per_epoch:
        return int(loop['max_epochs']) * iters_per_epoch
    return None


def warmup_end(cfg: Config, iters_per_epoch: Optional[int] = None
               ) -> Tuple[Optional[int], str, bool]:
    """Where the warm-up ends, by the rule :class:`AGVMHook` uses
    (:func:`~agvm_mm.optim.agvm_config.find_warmup`).

    Returns:
        tuple: the runner iteration (None: no warm-up, or one in epochs of
        unknown length), a description, and whether the epoch length was
        missing.
    """
    from agvm_mm.optim.agvm_config import find_warmup
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = ([schedulers] if 'type' in schedulers else
                      [s for group in schedulers.values() for s in group])
    max_iters = _max_iters(cfg, iters_per_epoch)
    max_epochs = (cfg.get('train_cfg') or {}).get('max_epochs')
    scope = cfg.get('default_scope')
    entries = []
    for sched in schedulers:
        begin, end = sched.get('begin', 0), sched.get('end', INF)
        by_epoch = begin == 0 and scheduler_by_epoch(sched, scope)
        if by_epoch and not iters_per_epoch and max_epochs is not None \
                and end >= max_epochs:
            # it lasts as long as training, whatever the epoch length, so
            # it is no warm-up (AGVMHook, knowing the length, compares
            # end * iters_per_epoch with max_iters): find_warmup skips it
            begin = INF
        entries.append((begin, end, by_epoch))
    found = find_warmup(entries, max_iters if max_iters is not None else INF,
                        iters_per_epoch)
    if found is None:
        return None, 'no warm-up scheduler', False
    sched = schedulers[found[0]]
    if found[1] is None:
        return None, (f'the warm-up {type_name(sched)} ends at epoch '
                      f'{sched.get("end", INF)}: give --iters-per-epoch'), True
    return found[1], (f'{type_name(sched)} ends at runner iteration '
                      f'{found[1]}'), False


def _start(agvm, hook: Optional[dict], warm: Optional[int], why: str,
           unknown: bool, problems: List[str]) -> Tuple[Optional[int], str]:
    """AGVM's first optimizer step and where it comes from."""
    if agvm.start_iter is not None:
        return agvm.start_iter, 'optim_wrapper.agvm.start_iter'
    if hook is None or not hook.get('start_after_warmup', True):
        if warm is not None:
            problems.append(
                f'optim_wrapper.agvm.start_iter: AGVM would start at step 0, '
                f'inside the warm-up ({why}). Add custom_hooks=[dict(type='
                "'AGVMHook')] (starts it when the warm-up ends) or set "
                'agvm.start_iter.')
        return (agvm.resolve_start(None),
                'agvm.start_iter is None and no AGVMHook sets it')
    offset = int(hook.get('start_offset', 0))
    if unknown:
        return None, f'AGVMHook: {why}'
    start = agvm.resolve_start(warm, offset)  # as AGVMHook fixes it
    if warm is None:
        return start, f'AGVMHook: {why}, so step {offset}'
    return start, (f'AGVMHook: {why} = optimizer step {warm}' +
                   (f', + start_offset {offset}' if offset else ''))


def _clip(agvm, wrapper: dict, hook: Optional[dict], warm: Optional[int],
          why: str, problems: List[str]
          ) -> Tuple[Optional[Tuple[int, int]], str]:
    """The clipping window (None: every step or never) and its source."""
    clip, source = agvm.clip_grad_window, 'optim_wrapper.agvm.' \
        'clip_grad_window'
    max_norm = (wrapper.get('clip_grad') or {}).get('max_norm')
    if clip is None and hook is not None and hook.get('clip_window'):
        if max_norm is None:
            problems.append(
                'optim_wrapper.clip_grad: AGVMHook.clip_window clips around '
                'the warm-up, but clip_grad is None; set optim_wrapper.'
                'clip_grad=dict(max_norm=1.0).')
        elif warm is None:
            problems.append(
                'custom_hooks AGVMHook.clip_window: it is placed around the '
                f'warm-up, but {why}. Set optim_wrapper.agvm.'
                'clip_grad_window instead.')
        else:
            clip = clip_window_around(warm, hook['clip_window'])
            source = 'AGVMHook.clip_window around the warm-up'
    if clip is not None:  # the wrapper's default max_norm is 1.0
        return clip, f'{source}, max_norm {max_norm or 1.0}'
    if max_norm is None:
        return None, 'none (optim_wrapper.clip_grad is None)'
    return None, (f'every optimizer step, max_norm {max_norm} '
                  '(optim_wrapper.clip_grad, no agvm.clip_grad_window)')


def agvm_window(cfg: Config, iters_per_epoch: Optional[int] = None
                ) -> Tuple[Window, List[str]]:
    """The AGVM window the config implies for its real run, and the problems
    found in it (each naming the config key to change).

    Args:
        cfg (Config): The config as it will be trained.
        iters_per_epoch (int, optional): Runner iterations per epoch of the
            real run, to place epoch-based warm-ups and ends.
    """
    from agvm_mm.optim import AGVMConfig
    wrapper = cfg.optim_wrapper
    k = int(wrapper.get('accumulative_counts', 1))
    agvm = AGVMConfig.build(wrapper.get('agvm'))
    hooks = [h for h in cfg.get('custom_hooks') or []
             if type_name(h) == 'AGVMHook']
    hook = dict(hooks[0]) if hooks else None
    end, why, unknown = warmup_end(cfg, iters_per_epoch)
    warm = None if end is None else math.ceil(end / k)
    max_iters = _max_iters(cfg, iters_per_epoch)
    total = None if max_iters is None else math.ceil(max_iters / k)
    problems: List[str] = []
    start, source = _start(agvm, hook, warm, why, unknown, problems)
    clip, clip_source = _clip(agvm, wrapper, hook, warm, why, problems)
    if start is not None and agvm.stop_iter is not None and \
            agvm.stop_iter <= start:
        problems.append(
            f'optim_wrapper.agvm.stop_iter={agvm.stop_iter}: the window '
            f'[{start}, {agvm.stop_iter}) is empty; use stop_iter > start '
            'or None.')
    if start is not None and total is not None and start >= total:
        problems.append(
            f'optim_wrapper.agvm.start_iter: AGVM starts at optimizer step '
            f'{start}, but training has only {total} steps; it never runs. '
            'Lower agvm.start_iter (optimizer steps = runner iterations / '
            'accumulative_counts).')
    return Window(k, agvm.interval, start, source, agvm.stop_iter, clip,
                  clip_source, total,
                  (cfg.get('train_cfg') or {}).get('max_epochs')), problems
