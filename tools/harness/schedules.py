"""The lr rules and the schedule rescaler the harness shares."""
import math
from typing import List, Optional, Union

from agvm_mm.optim.agvm_config import find_warmup

INF = int(1e9)  # mmengine's "no end" of a parameter scheduler
# positions of a scheduler, in its unit (iterations or epochs)
POSITIONS = ('begin', 'end', 'T_max', 'step_size')
# scheduler types that count iterations when by_epoch is not given
ITER_SCHEDULERS = ('ExpWarmupLR', 'ExpWarmupParamScheduler')
LR_RULES = ('none', 'sqrt', 'linear')  # powers 0, 1/2, 1 of the batch ratio


def lr_factor(batch: int, base_batch: Optional[int],
              rule: str = 'sqrt') -> float:
    """Factor on an lr set for ``base_batch`` when the batch is ``batch``:
    ``(batch / base_batch) ** p`` with p = 1 (``'linear'``), 1/2
    (``'sqrt'``) or 0 (``'none'``)."""
    if rule not in LR_RULES:
        raise ValueError(f'lr scaling must be none, sqrt or linear, not '
                         f'{rule!r}')
    if rule == 'none':
        return 1.0
    if not base_batch:
        raise ValueError(f'lr_scaling={rule!r} needs base_batch.')
    ratio = batch / base_batch
    return math.sqrt(ratio) if rule == 'sqrt' else ratio


def parse_base_lr(value, default: float) -> float:
    """A ``--base-lr`` value: an lr (``0.2``), or ``xM`` for M times the
    default rule's lr (``x10``), so one setting fits every family."""
    text = str(value).strip()
    try:
        if text.lower().startswith('x'):
            return float(text[1:]) * default
        return float(text)
    except ValueError:
        raise ValueError(f'--base-lr: {value!r} is not an lr (0.2) or a '
                         'multiple of the default lr (x10)') from None


def is_iteration_based(scheduler: dict) -> bool:
    """Whether a scheduler config counts runner iterations."""
    return not scheduler.get('by_epoch',
                             scheduler.get('type') not in ITER_SCHEDULERS)


def scale_schedulers(schedulers: Union[dict, list], new: float, old: float,
                     end: Optional[int] = None,
                     by_epoch: bool = False) -> Union[dict, list]:
    """The iteration-based schedulers of a run ``new / old`` times as many
    iterations long, so that the warm-up and the lr steps keep their place
    (the same optimizer steps under ``new / old`` times the accumulation,
    or the same fraction of a longer run); with ``by_epoch``, the
    epoch-based ones of a run ``new / old`` times as many epochs.

    Args:
        schedulers (dict | list): ``param_scheduler``: one scheduler, a
            list, or a dict of lists (several optimizers).
        new (int): The new length (or accumulation).
        old (int): The old one: positions ``p`` become ``p * new / old``.
        end (int, optional): The old run's length: a position at or past it
            ends the new run too. None: only mmengine's INF stays as it is.
        by_epoch (bool): Scale the epoch-based schedulers instead.

    Returns:
        The same structure, new dicts: positions and milestones rounded, 0
        stays 0, the others >= 1, and an iteration warm-up from 0 keeps >= 2
        iterations (mmengine's warm-ups never leave their start factor in
        one iteration). The schedulers of the other unit are unchanged.
    """
    if isinstance(schedulers, (list, tuple)):
        return [scale_schedulers(s, new, old, end, by_epoch)
                for s in schedulers]
    if 'type' not in schedulers:  # several optimizers: a dict of lists
        return {k: scale_schedulers(v, new, old, end, by_epoch)
                for k, v in schedulers.items()}
    sched = dict(schedulers)
    if is_iteration_based(sched) == by_epoch:
        return sched
    limit = INF if end is None else end
    new_end = INF if end is None else int(round(end * new / old))

    def scaled(value):
        if value >= limit:
            return value if end is None else new_end
        return max(1, int(round(value * new / old))) if value else 0

    for key in POSITIONS:
        if key in sched:
            sched[key] = scaled(sched[key])
    if not by_epoch and sched.get('begin', 0) == 0 and \
            sched.get('end', new_end) < 2:
        sched['end'] = min(2, new_end)
    if 'milestones' in sched:
        sched['milestones'] = [scaled(m) for m in sched['milestones']]
    return sched


def to_iterations(schedulers: List[dict], iters_per_epoch: Optional[int],
                  source: str) -> List[dict]:
    """Epoch-based schedulers (and those mmengine converts) as
    iteration-based ones with ``by_epoch=False``, for epochs of
    ``iters_per_epoch`` iterations; ``source`` names the config in
    errors."""
    out = []
    for sched in schedulers:
        sched = dict(sched)
        if sched.pop('by_epoch', True) or sched.pop('convert_to_iter_based',
                                                    False):
            if iters_per_epoch is None:
                raise ValueError(f'{source}: an epoch-based scheduler in an '
                                 'iteration-based recipe')
            for key in POSITIONS:
                if key in sched:
                    sched[key] = sched[key] * iters_per_epoch
            if 'milestones' in sched:
                sched['milestones'] = [m * iters_per_epoch
                                       for m in sched['milestones']]
        sched['by_epoch'] = False
        out.append(sched)
    return out


def warmup_end(schedulers: List[dict], total: int) -> Optional[int]:
    """End of the warm-up among iteration-based schedulers, by AGVM's own
    rule (:func:`agvm_mm.optim.agvm_config.find_warmup`, as ``AGVMHook``
    finds it)."""
    found = find_warmup(((s.get('begin', 0), s.get('end', total), False)
                         for s in schedulers), total)
    return None if found is None else found[1]
