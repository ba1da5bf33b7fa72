"""Which AGVM parameter belongs to which module, and in what order."""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Tuple

import torch.nn as nn


@dataclass(frozen=True)
class ModuleLayout:
    """The AGVM modules and their parameters in one fixed order: built once,
    where the wrapper binds its partition (:meth:`from_parts`), and handed to
    the source of the estimates (the layout of its flat vectors) and to each
    statistics step's :class:`~agvm_mm.optim.moments.MomentSink` (which sums
    per-parameter moments into modules in this order). The default is the
    layout of a wrapper not bound yet: no module.

    Args:
        modules (tuple[str]): Module names, in model order.
        params (tuple[nn.Parameter]): The parameters the optimizer steps,
            module after module.
        module_of (dict[int, int]): ``id(param) -> index in modules``.
        position (dict[int, int]): ``id(param) -> index in params``.
    """
    modules: Tuple[str, ...] = ()
    params: Tuple[nn.Parameter, ...] = ()
    module_of: Mapping[int, int] = field(default_factory=dict)
    position: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def from_parts(cls, parts: Mapping[str, List[nn.Parameter]],
                   stepped: Iterable[nn.Parameter]) -> 'ModuleLayout':
        """The layout of a partition (module name -> its parameters, in
        order), keeping the parameters in ``stepped`` (the optimizer's)."""
        ids = {id(p) for p in stepped}
        members = [(i, p) for i, params in enumerate(parts.values())
                   for p in params if id(p) in ids]
        module_of: Dict[int, int] = {id(p): i for i, p in members}
        position = {id(p): k for k, (_, p) in enumerate(members)}
        return cls(tuple(parts), tuple(p for _, p in members), module_of,
                   position)
