"""The ``agvm=dict(...)`` block of ``optim_wrapper``, checked at build time."""
from dataclasses import dataclass, fields
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..core import CLAMP, MOMENTUM, RATIO_EPS

RULES = ('auto', 'sgd', 'adam')


def find_warmup(schedulers: Iterable[Tuple[float, float, bool]],
                max_iters: float, iters_per_epoch: Optional[int] = None
                ) -> Optional[Tuple[int, Optional[int]]]:
    """The warm-up rule of docs/algorithm.md §6, for built schedulers
    (:class:`AGVMHook`) and scheduler configs (the check tool) alike: the
    first scheduler that begins at 0 and ends before training does.

    Args:
        schedulers: ``(begin, end, by_epoch)`` of each scheduler, in order.
        max_iters (float): Runner iterations of the run (INF: unknown).
        iters_per_epoch (int, optional): Runner iterations per epoch, to
            place epoch-based schedulers.

    Returns:
        tuple, optional: The warm-up's index and its end in runner
        iterations (None: epoch-based and ``iters_per_epoch`` unknown);
        None if there is no warm-up.
    """
    for index, (begin, end, by_epoch) in enumerate(schedulers):
        if begin != 0:
            continue
        if by_epoch:
            if not iters_per_epoch:
                return index, None
            end = end * iters_per_epoch
        if end < max_iters:
            return index, int(end)
    return None


@dataclass
class AGVMConfig:
    """Settings of AGVM; iteration counts are optimizer steps.

    Args:
        interval (int): Take statistics every ``interval`` optimizer steps.
        start_iter (int, optional): First optimizer step of the AGVM window.
            None: fixed by :meth:`resolve_start` (:class:`AGVMHook`: at the
            end of the warm-up scheduler; else 0).
        stop_iter (int, optional): First step after the window (None: never).
        momentum (float): EMA momentum of the running factors, in [0, 1).
        clamp (tuple[float, float]): Bounds ``(lo, hi)`` of the variance
            ratio, ``0 < lo <= hi``.
        anchor (str): Module whose variance the others are matched to.
        modules (list[str], optional): Parameter-name prefixes forming the
            modules; None: the default partition.
        clip_grad_window (tuple[int, int], optional): Clip gradients (with
            ``clip_grad``, default ``max_norm=1.0``) only on optimizer steps
            in ``[begin, end)``; None: ``clip_grad`` applies on every step.
        rule (str): Variance rule: ``'sgd'`` (raw gradients), ``'adam'``
            (gradients preconditioned by ``exp_avg_sq``), or ``'auto'``
            (from the optimizer's class).
        lr_mult (dict[str, float], optional): Per-module lr multipliers,
            applied by :class:`AGVMOptimWrapperConstructor`.
        eps (float): eps of the variance ratio.
        modulate (bool): Apply the factors to the learning rates. False
            only measures (Phi and s are still computed and logged), for
            analysing a model's gradient variance without changing its
            training.
    """
    interval: int = 10
    start_iter: Optional[int] = None
    stop_iter: Optional[int] = None
    momentum: float = MOMENTUM
    clamp: Tuple[float, float] = CLAMP
    anchor: str = 'backbone'
    modules: Optional[List[str]] = None
    clip_grad_window: Optional[Tuple[int, int]] = None
    rule: str = 'auto'
    lr_mult: Optional[Dict[str, float]] = None
    eps: float = RATIO_EPS
    modulate: bool = True

    @classmethod
    def build(cls, cfg: Optional[dict]) -> 'AGVMConfig':
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise KeyError(f'optim_wrapper.agvm: unknown keys {unknown}; '
                           f'valid keys are {sorted(known)}.')
        self = cls(**cfg)
        self.check()
        return self

    def check(self) -> None:
        def bad(key: str, why: str) -> None:
            raise ValueError(f'optim_wrapper.agvm.{key}={getattr(self, key)!r}'
                             f' is invalid: {why}.')

        if not isinstance(self.interval, int) or self.interval < 1:
            bad('interval', 'use an integer >= 1 (optimizer steps between '
                'two AGVM statistics steps)')
        if not 0.0 <= self.momentum < 1.0:
            bad('momentum', 'use a value in [0, 1), e.g. 0.97')
        if (not isinstance(self.clamp, Sequence) or len(self.clamp) != 2
                or not 0 < self.clamp[0] <= self.clamp[1]):
            bad('clamp', 'use (lo, hi) with 0 < lo <= hi, e.g. (0.5, 10.0)')
        self.clamp = (float(self.clamp[0]), float(self.clamp[1]))
        for key in ('start_iter', 'stop_iter'):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 0):
                bad(key, 'use None or an integer >= 0 (an optimizer step)')
        if (self.start_iter is not None and self.stop_iter is not None
                and self.start_iter > self.stop_iter):
            bad('start_iter', f'it is after stop_iter={self.stop_iter}; '
                'use start_iter <= stop_iter')
        if self.modules is not None and (isinstance(self.modules, str) or
                                         not len(self.modules)):
            bad('modules', 'use None or a non-empty list of parameter-name '
                "prefixes, e.g. ['backbone', 'neck', 'bbox_head']")
        if self.clip_grad_window is not None:
            window = self.clip_grad_window
            if (not isinstance(window, Sequence) or len(window) != 2
                    or not 0 <= window[0] <= window[1]):
                bad('clip_grad_window', 'use (begin, end) optimizer steps '
                    'with 0 <= begin <= end, or None')
            self.clip_grad_window = (int(window[0]), int(window[1]))
        if self.rule not in RULES:
            bad('rule', f'use one of {RULES}')
        if not self.eps > 0:
            bad('eps', 'use a small positive number, e.g. 1e-6')

    def resolve_start(self, warmup_end_step: Optional[int],
                      offset: int = 0) -> int:
        """Fix ``start_iter`` if it is None (docs/algorithm.md §6):
        ``offset`` optimizer steps after the warm-up's end at optimizer step
        ``warmup_end_step``, or at ``offset`` without a warm-up (None).

        Returns:
            int: ``start_iter``, as given or as fixed here.
        """
        if self.start_iter is None:
            self.start_iter = (warmup_end_step or 0) + offset
        return self.start_iter

    @property
    def start(self) -> int:
        return self.start_iter or 0

    def in_window(self, step: int) -> bool:
        """Whether optimizer step ``step`` (0-based) is modulated."""
        return step >= self.start and (self.stop_iter is None
                                       or step < self.stop_iter)

    def is_stats_step(self, step: int) -> bool:
        """Whether optimizer step ``step`` takes AGVM statistics."""
        return self.in_window(step) and (step - self.start) % self.interval == 0

    def clips(self, step: int) -> bool:
        """Whether ``clip_grad`` applies on optimizer step ``step``."""
        window = self.clip_grad_window
        return window is None or window[0] <= step < window[1]
