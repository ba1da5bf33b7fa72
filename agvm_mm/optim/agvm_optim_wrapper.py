"""AGVM optimizer wrapper: a mixin over mmengine's ``OptimWrapper``."""
import logging
from contextlib import contextmanager, nullcontext
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import Tensor

from ..core import compute_factors, scaled_lr
from ..partition import check_partition, partition_modules
from .agvm_config import AGVMConfig
from .critical_batch import CriticalBatch
from .estimates import build_estimates
from .layout import ModuleLayout
from .moments import MomentSink, chunk_size
from .published import StatisticsStep, publish, withdraw

# Optimizer classes (matched along the MRO) whose variance rule is known.
SGD_TYPES = ('SGD', 'Lars', 'LARS', 'LARC')
ADAM_TYPES = ('Adam', 'AdamW', 'NAdam', 'RAdam', 'Lamb', 'LAMB', 'Adan')


def variance_rule(optimizer: torch.optim.Optimizer, rule: str = 'auto') -> str:
    """``'sgd'`` or ``'adam'`` for ``optimizer`` (docs/algorithm.md §3)."""
    if rule != 'auto':
        return rule
    for cls in type(optimizer).__mro__:
        if cls.__name__ in SGD_TYPES:
            return 'sgd'
        if cls.__name__ in ADAM_TYPES:
            return 'adam'
    raise ValueError(
        f'optim_wrapper.agvm.rule: AGVM does not know whether '
        f'{type(optimizer).__name__} is SGD-type or Adam-type. Set '
        "agvm.rule='sgd' (variance of the raw gradient) or agvm.rule='adam' "
        "(variance of the gradient preconditioned by the optimizer's "
        "exp_avg_sq, betas[1] and eps).")


class AGVMOptimWrapperMixin:
    """Adds AGVM to an mmengine optimizer wrapper through cooperative
    ``super()`` calls, so it slots in front of ``OptimWrapper`` or
    ``AmpOptimWrapper``.

    On a statistics step two estimates of the step's gradient are taken
    (docs/algorithm.md §2), from the two halves of the ranks with ``W >= 2``
    processes (:class:`~agvm_mm.optim.estimates.RankHalves`) or of the
    accumulated micro-batches on one process
    (:class:`~agvm_mm.optim.estimates.MicroBatchHalves`); the step itself
    uses the usual global mean gradient. Each statistics step is published
    to the message hub until the next backward
    (:mod:`~agvm_mm.optim.published`), for the hooks that log it. On other
    steps nothing differs from the wrapped class, except that inside the
    AGVM window each module's learning rate is scaled by its factor (§5).
    """

    def __init__(self, *args, agvm: Optional[dict] = None, **kwargs) -> None:
        self.agvm_cfg = AGVMConfig.build(agvm)
        if (self.agvm_cfg.clip_grad_window is not None
                and kwargs.get('clip_grad') is None):
            kwargs['clip_grad'] = dict(max_norm=1.0, norm_type=2)
        super().__init__(*args, **kwargs)
        self._estimates = build_estimates(get_world_size(), get_rank(),
                                          self._accumulative_counts)
        self._rule = variance_rule(self.optimizer, self.agvm_cfg.rule)
        if not isinstance(getattr(self.optimizer, 'param_groups', None),
                          list) or 'ZeroRedundancy' in type(
                              self.optimizer).__name__:
            raise TypeError(
                f'optim_wrapper.optimizer: AGVM scales learning rates per '
                f'module by stepping each parameter group as sub-groups, '
                f'which {type(self.optimizer).__name__} (sharded or without '
                'a param_groups list) does not allow. Use a torch optimizer '
                '(SGD, AdamW, TimmLARS, TimmLAMB, ...).')
        if self._rule == 'adam':
            _check_adam_groups(self.optimizer)
        self._layout = ModuleLayout()  # set by bind
        self._scales: Dict[str, float] = {}
        self._variances: Dict[str, float] = {}
        self._critical = CriticalBatch(self.agvm_cfg.momentum)  # §9
        self._agvm_steps = 0
        self._announced = False  # the partition is logged once per run
        # set by load_state_dict when a mid-accumulation checkpoint brought
        # back the gradients gathered so far (one process only)
        self._restored_pending = False

    # ------------------------------------------------------------ public
    @property
    def agvm_modules(self) -> List[str]:
        """Module names, in model order."""
        return list(self._layout.modules)

    @property
    def agvm_scales(self) -> Dict[str, float]:
        """Running factor ``s_m`` of each module."""
        return {m: self._scales.get(m, 1.0) for m in self._layout.modules}

    @property
    def agvm_variances(self) -> Dict[str, float]:
        """``Phi_m`` of each module at the last statistics step."""
        return dict(self._variances)

    @property
    def agvm_gradient_noise(self) -> Dict[str, Tuple[float, float]]:
        """``(|G|^2, tr(Sigma) / B)`` of each module at the last statistics
        step: one step's estimates of the squared true gradient and of the
        per-sample gradient covariance's trace over the global batch ``B``,
        from the raw gradients whatever the rule (docs/algorithm.md §9)."""
        return dict(self._critical.last)

    def agvm_noise_scale(self, samples_per_step: float) -> Dict[str, float]:
        """Each module's simple noise scale ``B_noise`` (its critical batch,
        in samples) from the running averages of the two estimates of
        :attr:`agvm_gradient_noise` (docs/algorithm.md §9).

        Args:
            samples_per_step (float): The global batch ``B`` of an optimizer
                step: samples per process x processes x accumulative_counts.

        Returns:
            dict[str, float]: module -> ``B_noise``; NaN without an estimate
            (no statistics step yet, or no usable gradient), ``inf`` where
            the averaged ``|G|^2`` is not positive (noise-dominated: far
            beyond the batch).

        Examples:
            >>> wrapper.agvm_noise_scale(samples_per_step=16 * 8)
            {'backbone': 17.2, 'neck': 5.1, 'bbox_head': 9.8}
        """
        return self._critical.scale(self._layout.modules, samples_per_step)

    def agvm_model_noise_scale(self, samples_per_step: float) -> float:
        """The whole model's ``B_noise``, what plans the batch
        (:func:`agvm_mm.large_batch_plan`): the modules' two averaged
        estimates summed before the ratio. NaN until every module has an
        estimate, ``inf`` where the summed ``|G|^2`` is not positive.

        Args:
            samples_per_step (float): As :meth:`agvm_noise_scale`.
        """
        return self._critical.whole_model(self._layout.modules,
                                          samples_per_step)

    @property
    def agvm_rule(self) -> str:
        """Variance rule in use: ``'sgd'`` or ``'adam'``."""
        return self._rule

    @property
    def agvm_source(self) -> str:
        """Where the two gradient estimates come from, as the log says:
        e.g. ``"2 processes (reduced inside DDP's buckets during
        backward)"`` or ``'2 accumulated micro-batches'`` (docs/algorithm.md
        §2)."""
        return self._estimates.describe()

    @property
    def agvm_ddp_hooked(self) -> bool:
        """Whether AGVM's DDP communication hook is registered on the model,
        so that a statistics step is reduced inside DDP's buckets during
        backward; False on one process, before the first ``optim_context``,
        and where AGVM reduces after backward (a hook of the user's, a
        wrapper that is not DDP)."""
        return self._estimates.hooked

    @property
    def agvm_steps(self) -> int:
        """Number of statistics steps taken so far."""
        return self._agvm_steps

    @property
    def accumulative_counts(self) -> int:
        """Micro-batches (runner iterations) per optimizer step."""
        return self._accumulative_counts

    @property
    def optimizer_step(self) -> int:
        """0-based optimizer step the latest backward contributed to: the
        step ``step()`` takes, and after ``update_params`` the one just
        taken. AGVM's window counts these steps (docs/algorithm.md §6)."""
        return self._step_of(max(self._inner_count - 1, 0))

    def bind(self, model: nn.Module,
             parts: Optional[Dict[str, List[nn.Parameter]]] = None) -> None:
        """Take ``model``'s module partition (docs/algorithm.md §1).

        Done by the constructor (which passes the ``parts`` it grouped the
        parameters by, already checked), else by ``initialize_count_status``
        or the first ``optim_context``.
        """
        if parts is None:
            parts = partition_modules(model, self.agvm_cfg.modules)
            check_partition(model, parts, self.agvm_cfg.anchor,
                            self.agvm_cfg.lr_mult)
        self._layout = ModuleLayout.from_parts(parts, self._params())
        self._estimates.set_layout(self._layout)
        self._scales = {m: self._scales.get(m, 1.0) for m in parts}

    # ------------------------------------------------ mmengine interface
    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        offset = init_counts % self._accumulative_counts
        if not (self._restored_pending and offset):
            super().initialize_count_status(model, init_counts, max_counts)
        else:
            # mmengine warns that the gradients of the unfinished cycle are
            # lost; here they came back with the checkpoint, so count from
            # the cycle's start (no warning) and then move to init_counts
            super().initialize_count_status(model, init_counts - offset,
                                            max_counts)
            self._inner_count = init_counts
            print_log(
                f'AGVM: resumed at iteration {init_counts}, {offset} of '
                f'{self._accumulative_counts} micro-batches into an '
                'accumulation cycle; their gradients were restored from the '
                'checkpoint, so the step is exact.', 'current')
        if not self._layout.modules:
            self.bind(model)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        if not self._layout.modules:
            self.bind(model)
        if not self._announced:
            self._estimates.attach(model)
            print_log(
                f'AGVM: modules {self.agvm_modules}, anchor '
                f'{self.agvm_cfg.anchor!r}, {self._rule.upper()}-type '
                f'variance rule for {type(self.optimizer).__name__}, two '
                f'estimates from {self.agvm_source}', 'current')
            self._announced = True
        with super().optim_context(model):
            yield

    def should_sync(self) -> bool:
        # called before backward: the coming micro-batch is _inner_count
        if (self._estimates.skips_ddp_reduction
                and self._stats_step(self._step_of(self._inner_count))):
            return False  # DDP must not reduce: step() does (§2)
        return super().should_sync()

    def backward(self, loss: Tensor, **kwargs) -> None:
        withdraw(self.message_hub, self)  # a step published before
        step = self._step_of(self._inner_count)  # the coming micro-batch's
        stats = self._stats_step(step)
        if stats and self._estimates.sink is None:
            self._estimates.sink = self._new_sink(self._cycle(step)[1])
        super().backward(loss, **kwargs)
        if stats:
            begin, size = self._cycle(step)
            self._estimates.after_backward(self._inner_count - begin, size)

    def step(self, **kwargs) -> None:
        step = self.optimizer_step
        if self.agvm_cfg.start_iter is None:
            print_log(
                'agvm.start_iter is None and no AGVMHook set it from the '
                'warm-up: AGVM starts at optimizer step 0.', 'current',
                logging.WARNING)
            self.agvm_cfg.resolve_start(None)
        if self._stats_step(step):
            self._take_statistics(step)
        self._estimates.clear()
        clip = (nullcontext()
                if self.agvm_cfg.clips(step) else self._no_clip())
        layout = self._layout
        if (self.agvm_cfg.modulate and self.agvm_cfg.in_window(step)
                and layout.modules):
            scales = [self._scales[m] for m in layout.modules]
            modulate = scaled_lr(
                self.optimizer, lambda p: scales[layout.module_of[id(p)]]
                if id(p) in layout.module_of else 1.0)
        else:
            modulate = nullcontext()
        with clip, modulate:
            super().step(**kwargs)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state['agvm'] = dict(
            scales=(self.agvm_scales if self._layout.modules else
                    dict(self._scales)),
            variances=dict(self._variances),
            noise={m: list(v) for m, v in self._critical.averages.items()},
            steps=self._agvm_steps)
        pending = (self._estimates.pending_state(self._params())
                   if self._inner_count % self._accumulative_counts else None)
        if pending is not None:  # saved mid-accumulation (docs §7)
            state['agvm']['pending'] = pending
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        agvm = state_dict.pop('agvm', None)
        if agvm is not None:
            self._scales.update(agvm['scales'])
            self._variances = dict(agvm['variances'])
            self._critical.averages = {
                m: list(v) for m, v in agvm.get('noise', {}).items()}
            self._agvm_steps = int(agvm['steps'])
            pending = agvm.get('pending')
            if pending is not None and self._estimates.load_pending(
                    self._params(), pending):
                self._restored_pending = True
        super().load_state_dict(state_dict)

    # ----------------------------------------------------------- helpers
    def _params(self) -> List[nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g['params']]

    def _step_of(self, micro_batch: int) -> int:
        """Optimizer step that 0-based micro-batch ``micro_batch`` is in."""
        return micro_batch // self._accumulative_counts

    def _cycle(self, step: int) -> Tuple[int, int]:
        """First micro-batch count and size of optimizer step ``step``'s
        accumulation cycle (the last one may be shorter)."""
        begin = step * self._accumulative_counts
        size = self._accumulative_counts
        if self._max_counts > 0:
            size = min(size, self._max_counts - begin)
        return begin, size

    def _stats_step(self, step: int) -> bool:
        return (self.agvm_cfg.is_stats_step(step) and
                self._estimates.can_take_statistics(self._cycle(step)[1]))

    @contextmanager
    def _no_clip(self) -> Iterator[None]:
        # mmengine's logger prints the hub's last grad_norm on every later
        # iteration: outside the clip window no norm is taken, so none shows
        self.message_hub.log_scalars.pop('train/grad_norm', None)
        saved, self.clip_grad_kwargs = self.clip_grad_kwargs, {}
        try:
            yield
        finally:
            self.clip_grad_kwargs = saved

    def _grad_scale(self) -> float:
        """Loss scale the gradients carry (AMP); 1 otherwise."""
        scaler = getattr(self, 'loss_scaler', None)
        return float(scaler.get_scale()) if scaler is not None else 1.0

    def _new_sink(self, size: int) -> MomentSink:
        """The sink of a statistics step's moments: the source's mixing with
        the loss scale (AMP) divided out, and the Adam rule's view of the
        optimizer."""
        inv = 1.0 / self._grad_scale()
        mixing = tuple((p * inv, q * inv)
                       for p, q in self._estimates.halves(size).mixing)
        sink = dict(layout=self._layout, mixing=mixing)
        if self._rule == 'sgd':
            return MomentSink(**sink)
        groups = {id(p): g for g in self.optimizer.param_groups
                  for p in g['params']}
        state = self.optimizer.state

        def adam_state(param):
            group = groups[id(param)]
            return (state.get(param, {}).get('exp_avg_sq'),
                    group['betas'][1], group['eps'])

        return MomentSink(**sink, adam_state=adam_state, chunk=chunk_size(
            sum(p.numel() for p in self._layout.params)))

    def _take_statistics(self, step: int) -> None:
        modules = self._layout.modules
        if not modules:
            raise RuntimeError(
                'AGVMOptimWrapper has no model: run it through an mmengine '
                'Runner, call optim_context(model), or call bind(model).')
        size = self._cycle(step)[1]
        if self._estimates.sink is None:  # no backward through backward()
            self._estimates.sink = self._new_sink(size)
        sink = self._estimates.sink
        self._estimates.collect(size)
        raw, rule = sink.result()
        # one transfer: the rule's moments, then the raw ones (§9)
        stats = self._estimates.agree(torch.cat([rule, raw], 1),
                                      self._params()[0].device)
        if not torch.isfinite(stats).all():
            print_log(
                f'AGVM: non-finite gradient at optimizer step {step}; its '
                'statistics are discarded and the factors held.', 'current',
                logging.WARNING)
            return
        scales = torch.tensor([self._scales[m] for m in modules],
                              dtype=torch.float64)
        cfg = self.agvm_cfg
        phi, valid, scales = compute_factors(
            stats[:, :3], scales, anchor=modules.index(cfg.anchor),
            momentum=cfg.momentum, clamp=cfg.clamp, eps=cfg.eps)
        self._scales = dict(zip(modules, scales.tolist()))
        # a module without a usable gradient this step keeps its last Phi
        self._variances.update((m, float(v)) for m, v, ok in zip(
            modules, phi.tolist(), valid.tolist()) if ok)
        self._critical.update(modules, stats[:, 3:],
                              self._estimates.halves(size).shares)
        self._agvm_steps += 1
        publish(self.message_hub, StatisticsStep(
            self, step, self.agvm_variances, self.agvm_scales,
            self.agvm_gradient_noise))


def _check_adam_groups(optimizer: torch.optim.Optimizer) -> None:
    """The Adam-type rule reads ``betas[1]`` and ``eps`` of every group."""
    for index, group in enumerate(optimizer.param_groups):
        missing = [key for key in ('betas', 'eps') if key not in group]
        if missing:
            raise ValueError(
                f"optim_wrapper.agvm.rule='adam' needs each parameter "
                f"group's betas (beta2) and eps, but param group {index} of "
                f'{type(optimizer).__name__} has no {missing}. Use '
                "agvm.rule='sgd' for this optimizer, or an Adam-type "
                'optimizer (Adam, AdamW, TimmLAMB, ...).')


@OPTIM_WRAPPERS.register_module()
class AGVMOptimWrapper(AGVMOptimWrapperMixin, OptimWrapper):
    """mmengine's :class:`OptimWrapper` with AGVM (Adaptive Gradient Variance
    Modulator, Xue et al., NeurIPS 2022).

    Args:
        optimizer (Optimizer): Built by the optim wrapper constructor.
        accumulative_counts (int): Micro-batches per optimizer step; with
            one process it must be even and >= 2.
        clip_grad (dict, optional): As for ``OptimWrapper``; with
            ``agvm.clip_grad_window`` it only applies inside the window.
        agvm (dict, optional): See :class:`AGVMConfig`.

    Examples:
        >>> custom_imports = dict(imports=['agvm_mm'],
        ...                       allow_failed_imports=False)
        >>> optim_wrapper = dict(
        ...     type='AGVMOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.16, momentum=0.9,
        ...                    weight_decay=1e-4),
        ...     agvm=dict(interval=10, start_iter=1020, momentum=0.97,
        ...               clamp=(0.5, 10.0), clip_grad_window=(820, 1020)))
        >>> custom_hooks = [dict(type='AGVMHook')]
    """
