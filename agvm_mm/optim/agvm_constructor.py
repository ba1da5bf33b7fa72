"""Optimizer wrapper constructor with one parameter group per AGVM module."""
import inspect
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               OPTIMIZERS)

from ..partition import check_partition, partition_modules, unwrap
from .agvm_config import AGVMConfig


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AGVMOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Builds one parameter group per AGVM module (or, with
    ``paramwise_cfg``, mmengine's one group per parameter with every
    paramwise feature), tags each group with ``agvm_module``, applies the
    optional per-module lr multipliers ``agvm.lr_mult``, and binds the model
    to the wrapper so that module names are checked at build time.

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config; its
            ``agvm.modules`` and ``agvm.lr_mult`` are read here.
        paramwise_cfg (dict, optional): As for
            :class:`DefaultOptimWrapperConstructor`.

    Examples:
        >>> optim_wrapper = dict(
        ...     type='AGVMOptimWrapper',
        ...     constructor='AGVMOptimWrapperConstructor',
        ...     optimizer=dict(type='SGD', lr=0.02, momentum=0.9),
        ...     agvm=dict(lr_mult=dict(bbox_head=1.0)))
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        net = unwrap(model)
        # the agvm block is checked here, before any optimizer is built
        agvm = AGVMConfig.build(self.optim_wrapper_cfg.get('agvm'))
        parts = partition_modules(net, agvm.modules)
        check_partition(net, parts, agvm.anchor, agvm.lr_mult)
        lr_mult = agvm.lr_mult or {}
        module_of = {id(p): m for m, params in parts.items() for p in params}

        groups: List[dict] = []
        if self.paramwise_cfg:
            self.add_params(groups, net)
        else:
            groups = [dict(params=params) for params in parts.values()]
        for group in groups:
            group['agvm_module'] = module_of.get(id(group['params'][0]))
            if group['agvm_module'] in lr_mult:
                group['lr'] = group.get('lr', self.base_lr) * lr_mult[
                    group['agvm_module']]

        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cls = optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_cls)
        first_arg = next(iter(inspect.signature(optimizer_cls).parameters))
        optimizer_cfg[first_arg] = groups
        optimizer = OPTIMIZERS.build(optimizer_cfg)

        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'AGVMOptimWrapper')
        wrapper = OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args=dict(optimizer=optimizer))
        if hasattr(wrapper, 'bind'):  # the partition just checked
            wrapper.bind(model, parts)
        return wrapper
