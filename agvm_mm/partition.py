"""Split a dense predictor's trainable parameters into AGVM modules."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch.nn as nn


def unwrap(model: nn.Module) -> nn.Module:
    """Return the model inside DDP / MMDistributedDataParallel wrappers."""
    while hasattr(model, 'module') and isinstance(model.module, nn.Module):
        model = model.module
    return model


def default_prefixes(model: nn.Module) -> List[str]:
    """The default partition (docs/algorithm.md §1): the model's top-level
    children with trainable parameters, in model order; a ``roi_head`` that
    holds a ``mask_head`` is split into its bbox and mask heads, as the
    authors' code does."""
    prefixes = []
    for name, child in unwrap(model).named_children():
        if not any(p.requires_grad for p in child.parameters()):
            continue
        if name == 'roi_head' and getattr(child, 'mask_head', None) is not None:
            prefixes += [f'{name}.{sub}' for sub in ('bbox_head', 'mask_head')
                         if getattr(child, sub, None) is not None]
        prefixes.append(name)  # kept only if something is left in it
    return prefixes


def _match(name: str, prefixes: Sequence[str]) -> Optional[str]:
    """The longest prefix that ``name`` lies under."""
    best = None
    for prefix in prefixes:
        if (name == prefix or name.startswith(prefix + '.')) and (
                best is None or len(prefix) > len(best)):
            best = prefix
    return best


def partition_modules(
        model: nn.Module,
        modules: Optional[Sequence[str]] = None
) -> 'OrderedDict[str, List[nn.Parameter]]':
    """Assign every trainable parameter of ``model`` to exactly one module.

    Args:
        model (nn.Module): The model, possibly wrapped in DDP.
        modules (Sequence[str], optional): Parameter-name prefixes that
            override the default partition (``agvm.modules`` in the config).
            A parameter goes to the longest prefix it lies under; one under
            no prefix goes to a module named after its top-level child, so
            no parameter is left out. Defaults to None (the default
            partition).

    Returns:
        OrderedDict[str, list[nn.Parameter]]: module name -> its trainable
        parameters, in model order, empty modules dropped.

    Examples:
        >>> parts = partition_modules(retinanet)
        >>> list(parts)
        ['backbone', 'neck', 'bbox_head']
    """
    net = unwrap(model)
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    if modules is None:
        prefixes = default_prefixes(net)
    else:
        prefixes = list(modules)
        all_names = [n for n, _ in net.named_parameters()]
        unknown = [m for m in prefixes if _match_any(m, all_names) is None]
        if unknown:
            tops = [n for n, _ in net.named_children()]
            raise ValueError(
                f'agvm.modules: {unknown} match no parameter of '
                f'{type(net).__name__}. Use parameter-name prefixes such as '
                f'{tops} (or nested ones like "roi_head.mask_head"), or set '
                'agvm.modules=None for the default partition.')
    parts: Dict[str, List[nn.Parameter]] = OrderedDict(
        (m, []) for m in prefixes)
    for name, param in named:
        key = _match(name, prefixes) or name.split('.')[0]
        parts.setdefault(key, []).append(param)
    return OrderedDict((k, v) for k, v in parts.items() if v)


def _match_any(prefix: str, names: Sequence[str]) -> Optional[str]:
    return next((n for n in names if _match(n, [prefix])), None)


def check_partition(model: nn.Module, parts: Dict[str, List[nn.Parameter]],
                    anchor: str,
                    lr_mult: Optional[Dict[str, float]] = None) -> None:
    """Refuse an anchor that is not one of ``parts`` and ``lr_mult`` keys
    that name no module, each with the config key to change."""
    unknown = sorted(set(lr_mult or {}) - set(parts))
    if unknown:
        raise ValueError(f'optim_wrapper.agvm.lr_mult: {unknown} are not '
                         f'modules; the modules are {list(parts)}.')
    if anchor in parts:
        return
    under = [p for n, p in unwrap(model).named_parameters()
             if n == anchor or n.startswith(anchor + '.')]
    if under and not any(p.requires_grad for p in under):
        why = (f'is frozen: all its {len(under)} parameter tensors have '
               'requires_grad=False (e.g. by model.backbone.frozen_stages). '
               'Unfreeze it, or pick')
    else:
        why = 'is not a module with trainable parameters. Pick'
    raise ValueError(
        f'optim_wrapper.agvm.anchor={anchor!r} {why} one of the modules '
        f'{list(parts)} (the paper uses the backbone) or change '
        'agvm.modules.')
