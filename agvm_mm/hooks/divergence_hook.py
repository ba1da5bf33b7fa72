"""Stop a training run whose loss diverges, and leave a marker saying so."""
import json
import logging
import math
import os.path as osp
import time
from typing import Any, Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

MARKER = 'diverged.json'


def total_loss(outputs: Any) -> Optional[float]:
    """The loss of one train step: ``outputs['loss']`` if present, else the
    sum of the entries whose key contains ``'loss'`` (the loss dict), else
    None (nothing to check)."""
    if outputs is None:
        return None
    if isinstance(outputs, torch.Tensor):
        return float(outputs.detach().float().sum())
    if not isinstance(outputs, dict):
        return None
    if 'loss' in outputs:
        value = outputs['loss']
        values = value if isinstance(value, (list, tuple)) else [value]
    else:
        values = []
        for key, value in outputs.items():
            if 'loss' in key:
                values.extend(value if isinstance(value, (list, tuple))
                              else [value])
    if not values:
        return None
    total = 0.0
    for value in values:
        if isinstance(value, torch.Tensor):
            value = value.detach().float().sum()
        total += float(value)
    return total


class _StoppableSampler:
    """Wraps the sampler of an epoch-based train dataloader so that the
    running epoch can be cut short: once ``stopped``, its iterator ends (the
    DataLoader then delivers at most the batches it already prefetched)."""

    def __init__(self, sampler) -> None:
        self.sampler = sampler
        self.stopped = False

    def __iter__(self):
        for index in self.sampler:
            if self.stopped:
                return
            yield index

    def __len__(self) -> int:
        return len(self.sampler)

    def __getattr__(self, name: str):
        if name == 'sampler':  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.sampler, name)


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Detect a diverged run, record it and stop training cleanly.

    After every ``interval``-th train iteration the loss (``outputs['loss']``
    or the sum of the loss dict) is checked. If it is not finite, or above
    ``max_loss`` when given, the hook

    * writes ``diverged.json`` (iteration, epoch, loss, reason) into the
      work dir (main process),
    * logs an error,
    * stops the train loop after this iteration: ``train_loop.stop_training
      = True``. mmengine 0.10's ``IterBasedTrainLoop`` checks this flag
      before every iteration. ``EpochBasedTrainLoop`` checks it only between
      epochs, so the hook also ends the running epoch (its sampler stops
      yielding indices and the batches already prefetched are skipped),
    * with ``skip_val`` (default), skips the validation the loop would run
      on the diverged model,

    so the process exits normally (status 0) within an iteration or so.
    Under distributed training the decision is all-reduced, so every rank
    stops at the same iteration.

    Args:
        max_loss (float, optional): Also treat a finite loss above this as
            diverged. Defaults to None (only NaN / inf).
        interval (int): Check every ``interval`` iterations. Defaults to 1.
        skip_val (bool): Skip the validation after a divergence. Defaults
            to True.

    Examples:
        >>> custom_hooks = [dict(type='DivergenceHook', max_loss=1e4)]
    """
    priority = 'VERY_HIGH'  # decide before the other after_train_iter hooks

    def __init__(self, max_loss: Optional[float] = None, interval: int = 1,
                 skip_val: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'DivergenceHook: interval={interval} must be '
                             '>= 1.')
        self.max_loss = max_loss
        self.interval = interval
        self.skip_val = skip_val
        self.diverged: Optional[Dict[str, Any]] = None
        self._sampler: Optional[_StoppableSampler] = None

    def before_train(self, runner) -> None:
        self.diverged = None
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):  # iteration-based loop
            return
        batch_sampler = getattr(loop.dataloader, 'batch_sampler', None)
        sampler = getattr(batch_sampler, 'sampler', None)
        if sampler is None or isinstance(sampler, _StoppableSampler):
            self._sampler = sampler
            return
        self._sampler = _StoppableSampler(sampler)
        batch_sampler.sampler = self._sampler

    def divergence_reason(self, loss: Optional[float]) -> Optional[str]:
        """Why ``loss`` (:func:`total_loss`) counts as diverged (a
        non-finite loss, one above ``max_loss``), or None if it does not or
        there is none."""
        if loss is None:
            return None
        if not math.isfinite(loss):
            return 'non-finite loss'
        if self.max_loss is not None and loss > self.max_loss:
            return f'loss above max_loss={self.max_loss}'
        return None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self.diverged is not None or not self.every_n_train_iters(
                runner, self.interval):
            return
        loss = total_loss(outputs)
        reason = self.divergence_reason(loss)
        if get_world_size() > 1:  # every rank must stop at the same iter
            flag = torch.tensor([1.0 if reason else 0.0])
            all_reduce(flag, op='max')
            if flag.item() > 0 and reason is None:
                reason = 'diverged on another rank'
        if reason is None:
            return
        self.diverged = dict(
            iter=runner.iter + 1, epoch=runner.epoch,
            loss=loss if loss is None or math.isfinite(loss) else str(loss),
            reason=reason, time=time.strftime('%Y-%m-%d %H:%M:%S'))
        if is_main_process():
            with open(osp.join(runner.work_dir, MARKER), 'w') as f:
                json.dump(self.diverged, f, indent=1)
        print_log(
            f'DivergenceHook: {reason} ({loss}) at iteration {runner.iter + 1}'
            f'; training stopped, marker {osp.join(runner.work_dir, MARKER)}',
            'current', logging.ERROR)
        self._stop(runner)

    def _stop(self, runner) -> None:
        loop = runner.train_loop
        loop.stop_training = True
        if self.skip_val:
            loop.val_begin = math.inf  # both loops test `>= val_begin`
        if not hasattr(loop, 'dataloader_iterator'):  # epoch-based loop
            if self._sampler is not None:
                self._sampler.stopped = True
            loop.run_iter = lambda *args, **kwargs: None  # prefetched batches
