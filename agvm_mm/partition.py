"""Split a dense predictor's trainable parameters into AGVM modules.

The default partition (docs/algorithm.md §1) is built in three passes:

1. the model's top-level children, each a module (the generic split), or
   the :class:`Rule` of the model's class when it has one;
2. every module that is a submodule whose class has a :class:`Rule` is split
   by it (a RoI head holding a mask head, a MaskFormer head), recursively;
3. the size rule: a module that no rule names and that is one small layer
   (:data:`SMALL_TENSORS` tensors at most and under :data:`SMALL_SHARE` of
   the trainable parameters) joins the module before it in model order
   (the one after it if it comes first).

Rules are looked up by class name along the MRO, so subclasses (DINO is a
DeformableDETR is a DetectionTransformer; mmseg's Mask2FormerHead is
mmdet's) share their parent's rule.
"""
import typing
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch.nn as nn

#: Module name -> the parameter-name prefixes it is made of, in order.
Layout = typing.OrderedDict[str, List[str]]


@dataclass(frozen=True)
class Rule:
    """How the default partition splits a module of one class.

    Args:
        modules (tuple[str]): Children that form a module each, in this
            order; missing or parameter-free ones are skipped.
        joins (dict[str, str]): Child (or direct parameter) name -> the
            child of ``modules`` whose module it joins: the module it feeds.
        requires (str, optional): Split only when this child exists and is
            not None (a RoI head is split only when it holds a mask head).

    What a rule leaves out stays a module of its own: at the top level each
    remaining child, below it the rest of the split module under its own
    name (kept only if it holds parameters).
    """
    modules: Tuple[str, ...]
    joins: Dict[str, str] = field(default_factory=dict)
    requires: Optional[str] = None


#: The rules of docs/algorithm.md §1, by class name (looked up along the MRO).
RULES: Dict[str, Rule] = {
    # The authors' split: a RoI head holding a mask head gives its bbox and
    # mask heads (Mask R-CNN, Cascade Mask R-CNN, Panoptic FPN, ...).
    'BaseRoIHead': Rule(('bbox_head', 'mask_head'), requires='mask_head'),
    # mmdet's DETR family (DETR, Deformable, Conditional and DAB DETR, DINO,
    # DDQ-DETR, ...). Each small top-level layer joins the module it feeds.
    'DetectionTransformer': Rule(
        ('backbone', 'neck', 'encoder', 'decoder', 'bbox_head'),
        joins={
            # added to the encoder's positional embedding of each level
            'level_embed': 'encoder',
            # the decoder's queries, their reference points and positions
            'query_embedding': 'decoder',
            'reference_points_fc': 'decoder',
            'pos_trans_fc': 'decoder',
            'pos_trans_norm': 'decoder',
            'query_map': 'decoder',
            'dn_query_generator': 'decoder',
            # two-stage: the encoder's proposals, scored by bbox_head's last
            # cls/reg branches; the decoder gets them detached
            'memory_trans_fc': 'bbox_head',
            'memory_trans_norm': 'bbox_head',
        }),
    # MaskFormer and Mask2Former heads: mmdet's panoptic_head and mmseg's
    # decode_head (mmseg's classes subclass mmdet's). cls_embed and
    # mask_embed, the predictors applied to every decoder layer's queries,
    # stay as the rest of the head.
    'MaskFormerHead': Rule(
        ('pixel_decoder', 'transformer_decoder'),
        joins={
            'query_embed': 'transformer_decoder',
            'query_feat': 'transformer_decoder',
            'level_embed': 'transformer_decoder',
            'decoder_input_proj': 'transformer_decoder',
            'decoder_input_projs': 'transformer_decoder',
        }),
}

#: The size rule: a module no rule names with at most this many tensors...
SMALL_TENSORS = 2
#: ...and under this share of the trainable parameters joins a neighbour.
SMALL_SHARE = 0.01


def unwrap(model: nn.Module) -> nn.Module:
    """Return the model inside DDP / MMDistributedDataParallel wrappers."""
    while hasattr(model, 'module') and isinstance(model.module, nn.Module):
        model = model.module
    return model


def find_rule(module: nn.Module) -> Optional[Rule]:
    """The :data:`RULES` entry of the first class in ``module``'s MRO that
    has one, or None."""
    for cls in type(module).__mro__:
        if cls.__name__ in RULES:
            return RULES[cls.__name__]
    return None


def _trainable(obj) -> bool:
    if isinstance(obj, nn.Parameter):
        return obj.requires_grad
    return isinstance(obj, nn.Module) and any(
        p.requires_grad for p in obj.parameters())


def _split(module: nn.Module, prefix: str) -> Tuple[Layout, List[str]]:
    """Split ``module`` (named ``prefix``, '' for the model) by its rule, or
    into its children and direct parameters when it has none at the top.

    Returns:
        tuple: the layout, and the module names a rule chose (exempt from
        the size rule).
    """
    def path(name: str) -> str:
        return f'{prefix}.{name}' if prefix else name

    rule = find_rule(module)
    if rule is not None and rule.requires is not None and getattr(
            module, rule.requires, None) is None:
        rule = None
    if rule is None:
        if prefix:
            return OrderedDict([(prefix, [prefix])]), []
        children = [n for n, c in module.named_children() if _trainable(c)]
        direct = [n for n, p in module.named_parameters(recurse=False)
                  if p.requires_grad]
        return OrderedDict((n, [n]) for n in children + direct), []

    members = dict(module.named_children())
    members.update(module.named_parameters(recurse=False))
    chosen = [n for n in rule.modules if _trainable(members.get(n))]
    layout: Layout = OrderedDict((path(n), [path(n)]) for n in chosen)
    rest = [n for n, obj in members.items()
            if n not in chosen and _trainable(obj)]
    for name in rest:
        target = rule.joins.get(name)
        if target in chosen:
            layout[path(target)].append(path(name))
        elif not prefix:
            layout[name] = [name]  # a child the rule does not know
    if prefix:
        layout[prefix] = [prefix]  # the rest of the head, if any
    return layout, list(layout)[:len(chosen)]


def _expand(net: nn.Module, layout: Layout, chosen: List[str],
            done: Tuple[str, ...] = ()) -> Tuple[Layout, List[str]]:
    """Split every module of ``layout`` that is a submodule with a rule,
    recursively, in place of it; ``done`` are the split ones (their rest
    keeps their name)."""
    out: Layout = OrderedDict()
    for name, prefixes in layout.items():
        sub = None if name in done else _submodule(net, name)
        inner = _split(sub, name) if sub is not None else None
        if inner is None or list(inner[0]) == [name]:
            out[name] = prefixes
            continue
        inner_layout, inner_chosen = _expand(net, *inner, done + (name, ))
        for key, value in inner_layout.items():
            out[key] = value + (prefixes[1:] if key == name else [])
        chosen = chosen + inner_chosen
    return out, chosen


def _submodule(net: nn.Module, name: str) -> Optional[nn.Module]:
    try:
        module = net.get_submodule(name)
    except AttributeError:  # a direct parameter
        return None
    return module


def _size_rule(layout: Layout, chosen: Sequence[str],
               params: 'OrderedDict[str, nn.Parameter]') -> Layout:
    """Merge each module that is one small layer (see :data:`SMALL_SHARE`)
    and that no rule chose into the nearest module before it in ``layout``
    (after it, if it comes first) that is not small. The layout's order is
    the model's: its children as registered, then its direct parameters."""
    index = _prefix_index(layout)
    owner = {n: index.get(longest_prefix(n, index)) for n in params}
    total = sum(p.numel() for p in params.values()) or 1
    small = set()
    for module in layout:
        mine = [p for n, p in params.items() if owner[n] == module]
        if module not in chosen and 0 < len(mine) <= SMALL_TENSORS and \
                sum(p.numel() for p in mine) < SMALL_SHARE * total:
            small.add(module)
    names = list(layout)
    if not small or small == set(names):
        return layout
    merged = OrderedDict((m, list(v)) for m, v in layout.items())
    for at, module in enumerate(names):
        if module in small:
            before = [m for m in names[:at] if m not in small]
            after = [m for m in names[at:] if m not in small]
            merged[before[-1] if before else after[0]] += merged.pop(module)
    return merged


def _prefix_index(layout: Layout) -> Dict[str, str]:
    """Name prefix -> the module it belongs to."""
    return {p: m for m, prefixes in layout.items() for p in prefixes}


def default_modules(model: nn.Module) -> Layout:
    """The default partition (docs/algorithm.md §1) as module name -> the
    parameter-name prefixes it is made of, in order.

    Examples:
        >>> default_modules(deformable_detr)['decoder']
        ['decoder', 'query_embedding', 'reference_points_fc']
    """
    net = unwrap(model)
    params = OrderedDict(
        (n, p) for n, p in net.named_parameters() if p.requires_grad)
    layout, chosen = _expand(net, *_split(net, ''))
    return _size_rule(layout, chosen, params)


def longest_prefix(name: str, prefixes: Iterable[str]) -> Optional[str]:
    """The longest of ``prefixes`` that the dotted name ``name`` (of a
    parameter or a module) lies under: equal to it or followed by a ``.``;
    None if none.

    Examples:
        >>> longest_prefix('roi_head.mask_head.conv.weight',
        ...                ['roi_head', 'roi_head.mask_head', 'roi'])
        'roi_head.mask_head'
    """
    best = None
    for prefix in prefixes:
        if (name == prefix or name.startswith(prefix + '.')) and (
                best is None or len(prefix) > len(best)):
            best = prefix
    return best


def _layout(net: nn.Module, modules: Optional[Sequence[str]]) -> Layout:
    """The default layout, or the one ``agvm.modules`` gives (checked)."""
    if modules is None:
        return default_modules(net)
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
    return OrderedDict((m, [m]) for m in prefixes)


def _assign(net: nn.Module, layout: Layout
            ) -> 'OrderedDict[str, List[Tuple[str, nn.Parameter]]]':
    """Each trainable parameter to the module of its longest prefix; one
    under no prefix to a module named after its top-level child."""
    index = _prefix_index(layout)
    parts: Dict[str, List[Tuple[str, nn.Parameter]]] = OrderedDict(
        (m, []) for m in layout)
    for name, param in net.named_parameters():
        if param.requires_grad:
            key = index.get(longest_prefix(name, index)) or name.split('.')[0]
            parts.setdefault(key, []).append((name, param))
    return OrderedDict((k, v) for k, v in parts.items() if v)


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
            partition, :func:`default_modules`).

    Returns:
        OrderedDict[str, list[nn.Parameter]]: module name -> its trainable
        parameters, in model order, empty modules dropped.

    Examples:
        >>> parts = partition_modules(retinanet)
        >>> list(parts)
        ['backbone', 'neck', 'bbox_head']
    """
    net = unwrap(model)
    return OrderedDict((m, [p for _, p in named]) for m, named in _assign(
        net, _layout(net, modules)).items())


def module_contents(model: nn.Module,
                    modules: Optional[Sequence[str]] = None) -> Layout:
    """What each module of :func:`partition_modules` is made of, to show:
    its name prefixes that hold trainable parameters; a prefix that other
    modules took parts of is shown by the children it keeps.

    Examples:
        >>> module_contents(mask2former)['panoptic_head']
        ['panoptic_head.cls_embed', 'panoptic_head.mask_embed']
    """
    net = unwrap(model)
    layout = _layout(net, modules)
    index = _prefix_index(layout)
    contents: Layout = OrderedDict()
    for module, named in _assign(net, layout).items():
        members = layout.get(module, [module])
        shown: List[Tuple[int, str]] = []
        for name, _ in named:
            prefix = longest_prefix(name, index) or name.split('.')[0]
            split = any(p.startswith(prefix + '.') for p in index)
            if split and name != prefix:  # show the child it keeps
                prefix += '.' + name[len(prefix) + 1:].split('.')[0]
            rank = next((i for i, m in enumerate(members)
                         if longest_prefix(prefix, [m])), len(members))
            if (rank, prefix) not in shown:
                shown.append((rank, prefix))
        # in the order of the layout (the module's own name first)
        contents[module] = [p for _, p in sorted(
            shown, key=lambda item: item[0])]
    return contents


def _match_any(prefix: str, names: Sequence[str]) -> Optional[str]:
    return next((n for n in names if longest_prefix(n, [prefix])), None)


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
