"""AGVM optimizer wrapper: a mixin over mmengine's ``OptimWrapper``."""
import logging
from contextlib import contextmanager, nullcontext
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import (all_reduce_params, broadcast, get_rank,
                           get_world_size)
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import Tensor

from ..core import compute_factors, gather_statistics, precondition, scaled_lr
from ..partition import partition_modules, unwrap
from .agvm_config import AGVMConfig

# Optimizer classes (matched along the MRO) whose variance rule is known.
SGD_TYPES = ('SGD', 'Lars', 'LARS', 'LARC')
ADAM_TYPES = ('Adam', 'AdamW', 'NAdam', 'RAdam', 'Lamb', 'LAMB', 'Adan')
BUCKET_MB = 25  # DDP's default bucket size


def variance_rule(optimizer: torch.optim.Optimizer, rule: str = 'auto') -> str:
    """``'sgd'`` or ``'adam'`` for ``optimizer`` (spec section 3)."""
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

    On a statistics step two estimates of the step's gradient are taken:
    with ``W >= 2`` processes the mean gradients of ranks ``[0, W//2)`` and
    of the others (DDP's own reduction is skipped on that step and replaced
    by one all-reduce of the local and the half-signed local gradients);
    with one process, the first and second half of the accumulated
    micro-batches. The step itself uses the usual global mean gradient. On
    other steps nothing differs from the wrapped class, except that inside
    the AGVM window each module's learning rate is scaled by its factor.
    """

    def __init__(self, *args, agvm: Optional[dict] = None, **kwargs) -> None:
        self.agvm_cfg = AGVMConfig.build(agvm)
        if (self.agvm_cfg.clip_grad_window is not None
                and kwargs.get('clip_grad') is None):
            kwargs['clip_grad'] = dict(max_norm=1.0, norm_type=2)
        super().__init__(*args, **kwargs)
        self._world, self._rank = get_world_size(), get_rank()
        count = self._accumulative_counts
        if self._world < 2 and (count < 2 or count % 2):
            raise ValueError(
                'AGVMOptimWrapper needs two independent gradient estimates '
                f'per step, but this run has 1 process and optim_wrapper.'
                f'accumulative_counts={count}. Launch >= 2 processes '
                '(tools/dist_train.sh) or set optim_wrapper.'
                'accumulative_counts to an even number >= 2.')
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
        self._modules: List[str] = []
        self._module_of: Dict[int, int] = {}  # id(param) -> module index
        self._scales: Dict[str, float] = {}
        self._variances: Dict[str, float] = {}
        self._agvm_steps = 0
        self._half_a: Optional[List[Optional[Tensor]]] = None
        # set by load_state_dict when a mid-accumulation checkpoint brought
        # back the gradients gathered so far (one process only)
        self._restored_pending = False

    # ------------------------------------------------------------ public
    @property
    def agvm_modules(self) -> List[str]:
        """Module names, in model order."""
        return list(self._modules)

    @property
    def agvm_scales(self) -> Dict[str, float]:
        """Running factor ``s_m`` of each module."""
        return {m: self._scales.get(m, 1.0) for m in self._modules}

    @property
    def agvm_variances(self) -> Dict[str, float]:
        """``Phi_m`` of each module at the last statistics step."""
        return dict(self._variances)

    @property
    def agvm_rule(self) -> str:
        """Variance rule in use: ``'sgd'`` or ``'adam'``."""
        return self._rule

    @property
    def agvm_steps(self) -> int:
        """Number of statistics steps taken so far."""
        return self._agvm_steps

    def bind(self, model: nn.Module) -> None:
        """Partition ``model`` into modules; done by the constructor, by
        ``initialize_count_status`` or on the first ``optim_context``."""
        parts = partition_modules(model, self.agvm_cfg.modules)
        anchor = self.agvm_cfg.anchor
        if anchor not in parts:
            under = [p for n, p in unwrap(model).named_parameters()
                     if n == anchor or n.startswith(anchor + '.')]
            if under and not any(p.requires_grad for p in under):
                why = (f'is frozen: all its {len(under)} parameter tensors '
                       'have requires_grad=False (e.g. by model.backbone.'
                       'frozen_stages). Unfreeze it, or pick')
            else:
                why = 'is not a module with trainable parameters. Pick'
            raise ValueError(
                f'optim_wrapper.agvm.anchor={anchor!r} {why} one of the '
                f'modules {list(parts)} (the paper uses the backbone) or '
                'change agvm.modules.')
        self._modules = list(parts)
        self._module_of = {
            id(p): i
            for i, params in enumerate(parts.values()) for p in params
        }
        self._scales = {m: self._scales.get(m, 1.0) for m in self._modules}
        print_log(
            f'AGVM: modules {self._modules}, anchor {self.agvm_cfg.anchor!r}, '
            f'{self._rule.upper()}-type variance rule for '
            f'{type(self.optimizer).__name__}, two estimates from '
            + (f'{self._world} processes' if self._world > 1 else
               f'{self._accumulative_counts} accumulated micro-batches'),
            'current')
        lr_mult = self.agvm_cfg.lr_mult or {}
        if set(lr_mult) - set(self._modules):
            raise ValueError(
                f'optim_wrapper.agvm.lr_mult names {sorted(lr_mult)} but the '
                f'modules are {self._modules}.')

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
        self.bind(model)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        if not self._modules:
            self.bind(model)
        if self._world > 1 and not hasattr(model, 'no_sync'):
            raise TypeError(
                'AGVMOptimWrapper with several processes needs the model '
                'wrapped in DistributedDataParallel (the Runner does this; '
                'check model_wrapper_cfg).')
        with super().optim_context(model):
            yield

    def should_sync(self) -> bool:
        # DDP must not reduce on a statistics step: step() reduces itself.
        if self._world > 1 and self._stats_step(self._inner_count // self.
                                                _accumulative_counts):
            return False
        return super().should_sync()

    def backward(self, loss: Tensor, **kwargs) -> None:
        super().backward(loss, **kwargs)
        step = (self._inner_count - 1) // self._accumulative_counts
        begin, size = self._cycle(step)
        if (self._world == 1 and self._stats_step(step)
                and self._inner_count - begin == size // 2):
            self._half_a = [_clone(p.grad) for p in self._params()]

    def step(self, **kwargs) -> None:
        step = max(self._inner_count - 1, 0) // self._accumulative_counts
        if self.agvm_cfg.start_iter is None:
            print_log(
                'agvm.start_iter is None and no AGVMHook set it from the '
                'warm-up: AGVM starts at optimizer step 0.', 'current',
                logging.WARNING)
            self.agvm_cfg.start_iter = 0
        if self._stats_step(step):
            self._take_statistics(step)
        self._half_a = None
        clip = (nullcontext()
                if self.agvm_cfg.clips(step) else self._no_clip())
        if (self.agvm_cfg.modulate and self.agvm_cfg.in_window(step)
                and self._modules):
            scales = [self._scales[m] for m in self._modules]
            modulate = scaled_lr(
                self.optimizer, lambda p: scales[self._module_of[id(p)]]
                if id(p) in self._module_of else 1.0)
        else:
            modulate = nullcontext()
        with clip, modulate:
            super().step(**kwargs)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state['agvm'] = dict(
            scales=self.agvm_scales if self._modules else dict(self._scales),
            variances=dict(self._variances),
            steps=self._agvm_steps)
        if self._world == 1 and self._inner_count % self._accumulative_counts:
            # saved mid-accumulation: keep the gradients gathered so far
            # (and the first half's snapshot) so that resume is exact
            state['agvm']['pending'] = dict(
                grads=[_clone(p.grad) for p in self._params()],
                half_a=self._half_a)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        agvm = state_dict.pop('agvm', None)
        if agvm is not None:
            self._scales.update(agvm['scales'])
            self._variances = dict(agvm['variances'])
            self._agvm_steps = int(agvm['steps'])
            pending = agvm.get('pending')
            if pending is not None and self._world == 1:
                for param, grad in zip(self._params(), pending['grads']):
                    param.grad = None if grad is None else grad.to(param)
                self._half_a = pending['half_a']
                self._restored_pending = True
        super().load_state_dict(state_dict)

    # ----------------------------------------------------------- helpers
    def _params(self) -> List[nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g['params']]

    def _cycle(self, step: int) -> Tuple[int, int]:
        """First micro-batch count and size of optimizer step ``step``'s
        accumulation cycle (the last one may be shorter)."""
        begin = step * self._accumulative_counts
        size = self._accumulative_counts
        if self._max_counts > 0:
            size = min(size, self._max_counts - begin)
        return begin, size

    def _stats_step(self, step: int) -> bool:
        if not self.agvm_cfg.is_stats_step(step):
            return False
        return self._world > 1 or self._cycle(step)[1] >= 2

    @contextmanager
    def _no_clip(self) -> Iterator[None]:
        saved, self.clip_grad_kwargs = self.clip_grad_kwargs, {}
        try:
            yield
        finally:
            self.clip_grad_kwargs = saved

    def _grad_scale(self) -> float:
        """Loss scale the gradients carry (AMP); 1 otherwise."""
        scaler = getattr(self, 'loss_scaler', None)
        return float(scaler.get_scale()) if scaler is not None else 1.0

    def _halves(self, step: int) -> Iterator[Tuple[nn.Parameter, Tensor,
                                                   Tensor]]:
        """Reduce if needed, then yield ``(param, g_A, g_B)`` with the two
        halves' mean gradients; afterwards ``param.grad`` holds the global
        mean gradient, as without AGVM."""
        params = self._params()
        if self._world > 1:
            yield from self._reduce_halves(params)
            return
        size = self._cycle(step)[1]
        n_a, n_b = size // 2, size - size // 2
        half_a = self._half_a or [None] * len(params)
        for param, snap in zip(params, half_a):
            if param.grad is None:
                continue
            total = param.grad.detach()
            sum_a = snap if snap is not None else torch.zeros_like(total)
            yield param, sum_a * (size / n_a), (total - sum_a) * (size / n_b)

    def _reduce_halves(self, params: List[nn.Parameter]
                       ) -> Iterator[Tuple[nn.Parameter, Tensor, Tensor]]:
        world, half = self._world, self._world // 2
        sign = 1.0 if self._rank < half else -1.0
        has_grad = torch.tensor([float(p.grad is not None) for p in params],
                                device=params[0].device)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        total = [p.grad for p in params]
        diff = [g.detach() * sign for g in total]
        # S = sum_A + sum_B and D = sum_A - sum_B in one reduction.
        all_reduce_params(total + diff + [has_grad], bucket_size_mb=BUCKET_MB)
        n_a, n_b = half, world - half
        for p, s, d, used in zip(params, total, diff, has_grad.tolist()):
            if not used:
                p.grad = None
                continue
            yield p, (s + d) / (2 * n_a), (s - d) / (2 * n_b)
            s.div_(world)

    def _take_statistics(self, step: int) -> None:
        if not self._modules:
            raise RuntimeError(
                'AGVMOptimWrapper has no model: run it through an mmengine '
                'Runner, call optim_context(model), or call bind(model).')
        groups = {id(p): g for g in self.optimizer.param_groups
                  for p in g['params']}
        inv = 1.0 / self._grad_scale()

        def vectors(param: Tensor, g: Tensor) -> Tensor:
            g = g * inv
            if self._rule == 'sgd':
                return g
            group = groups[id(param)]
            state = self.optimizer.state.get(param, {})
            return precondition(g, state.get('exp_avg_sq'),
                                group['betas'][1], group['eps'])

        pairs = [(self._module_of[id(p)], vectors(p, g_a), vectors(p, g_b))
                 for p, g_a, g_b in self._halves(step)
                 if id(p) in self._module_of]
        stats = gather_statistics(pairs, len(self._modules))
        if self._world > 1:  # every rank must hold identical factors
            stats = stats.to(self._params()[0].device)
            broadcast(stats, 0)
            stats = stats.cpu()
        if not torch.isfinite(stats).all():
            print_log(
                f'AGVM: non-finite gradient at optimizer step {step}; its '
                'statistics are discarded and the factors held.', 'current',
                logging.WARNING)
            return
        scales = torch.tensor([self._scales[m] for m in self._modules],
                              dtype=torch.float64)
        phi, valid, scales = compute_factors(
            stats, scales, self._modules.index(self.agvm_cfg.anchor),
            self.agvm_cfg.momentum, self.agvm_cfg.clamp, self.agvm_cfg.eps)
        self._scales = dict(zip(self._modules, scales.tolist()))
        # a module without a usable gradient this step keeps its last Phi
        self._variances.update((m, float(v)) for m, v, ok in zip(
            self._modules, phi.tolist(), valid.tolist()) if ok)
        self._agvm_steps += 1


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


def _clone(tensor: Optional[Tensor]) -> Optional[Tensor]:
    return None if tensor is None else tensor.detach().clone()


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
