"""The optimizers of the grids: one record each (as timm keeps one per
optimizer), read by the command line, the planners and the report."""
import copy
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

# placeholders of a wrapper fragment, filled in by :meth:`Optim.wrapper`
RECIPE = '<the shapes recipe>'  # the recipe's own value of this key
STEPS_PER_EPOCH = '<optimizer steps per epoch>'

_NO_DECAY = dict(norm_decay_mult=0., bias_decay_mult=0.)
_CLIP = dict(max_norm=1.0, norm_type=2)
_SGD = dict(type='SGD', momentum=RECIPE, weight_decay=RECIPE)
_ADAMW = dict(type='AdamW', betas=(0.9, 0.999), weight_decay=0.1)
_LAMB = dict(type='TimmLAMB', betas=(0.9, 0.999), weight_decay=0.01)


@dataclass(frozen=True)
class Optim:
    """One optimizer of the paper's tables.

    Args:
        name (str): Its name in ``--optims`` and in the paper configs' file
            names (``configs/README.md``).
        title (str): Its row in the tables.
        rule (str): AGVM's variance rule, ``'sgd'`` or ``'adam'``; the Adam
            family's default lr is ``1e-4 x sqrt(B / 16)`` (the paper
            configs' rule), the others' the recipe's SGD lr.
        agvm (bool): An AGVM variant: ``AGVMOptimWrapper``, ``AGVMHook`` and
            the AGVM shapes recipe (``*_agvm.py``).
        fragment (dict): ``optim_wrapper`` of a local cell without lr and
            accumulation, as the paper's files of this optimizer set it
            (``configs/_base_/optimizers/``); :data:`RECIPE` and
            :data:`STEPS_PER_EPOCH` stand for values of the run.
        aliases (tuple[str]): Other spellings accepted on the command line.
    """
    name: str
    title: str
    rule: str
    agvm: bool
    fragment: dict
    aliases: Tuple[str, ...] = ()

    def wrapper(self, lr: float, accumulation: int, recipe: dict,
                steps_per_epoch: int, agvm: Optional[dict] = None) -> dict:
        """``optim_wrapper`` (``_delete_=True``) of a cell at ``lr``.

        Args:
            lr (float): The optimizer's lr.
            accumulation (int): ``accumulative_counts``.
            recipe (dict): The recipe's ``momentum``, ``weight_decay`` and
                ``clip_grad``, for the :data:`RECIPE` placeholders.
            steps_per_epoch (int): Optimizer steps in one epoch.
            agvm (dict, optional): The ``agvm`` block of an AGVM variant.
        """
        def fill(key: str, value):
            if value == RECIPE:
                return recipe[key]
            return steps_per_epoch if value == STEPS_PER_EPOCH else value

        spec = copy.deepcopy(self.fragment)
        optimizer = {k: fill(k, v) for k, v in spec.pop('optimizer').items()}
        wrapper = dict(_delete_=True, type=spec.pop('type'),
                       optimizer=dict(type=optimizer.pop('type'), lr=lr,
                                      **optimizer))
        wrapper.update((k, fill(k, v)) for k, v in spec.items())
        if self.agvm:
            wrapper['agvm'] = agvm or {}
        wrapper['accumulative_counts'] = accumulation
        return wrapper


OPTIMIZERS: Dict[str, Optim] = {o.name: o for o in (
    Optim('sgd', 'SGD', 'sgd', False,
          dict(type='OptimWrapper', optimizer=_SGD, clip_grad=RECIPE)),
    Optim('agvm', 'SGD + AGVM', 'sgd', True,
          dict(type='AGVMOptimWrapper', optimizer=_SGD, clip_grad=RECIPE),
          aliases=('sgd+agvm', )),
    Optim('agvm-adamw', 'AdamW + AGVM', 'adam', True,
          dict(type='AGVMOptimWrapper', optimizer=_ADAMW,
               paramwise_cfg=_NO_DECAY, clip_grad=None)),
    Optim('adamw', 'AdamW', 'adam', False,
          dict(type='OptimWrapper', optimizer=_ADAMW,
               paramwise_cfg=_NO_DECAY, clip_grad=None)),
    Optim('lars', 'LARS', 'sgd', False,
          dict(type='OptimWrapper', optimizer=dict(
              type='TimmLARS', momentum=0.9, weight_decay=1e-4,
              trust_coeff=0.001), paramwise_cfg=_NO_DECAY, clip_grad=None)),
    Optim('lamb', 'LAMB', 'adam', False,
          dict(type='OptimWrapper', optimizer=_LAMB,
               paramwise_cfg=_NO_DECAY, clip_grad=_CLIP)),
    Optim('pmd-lamb', 'PMD-LAMB', 'adam', False,
          dict(type='OptimWrapper', optimizer=dict(
              _LAMB, type='PMDLAMB', decay_period=STEPS_PER_EPOCH,
              decay_factor=0.5), paramwise_cfg=_NO_DECAY, clip_grad=_CLIP),
          aliases=('pmdlamb', )),
)}
OPTIMS = tuple(OPTIMIZERS)  # the names, in table order


def normalize_optim(name: str) -> str:
    """The table's name of a command-line spelling (any case, ``_`` for
    ``-``, an alias); ValueError if there is none."""
    key = name.strip().lower().replace('_', '-')
    for optim in OPTIMIZERS.values():
        if key == optim.name or key in optim.aliases:
            return optim.name
    raise ValueError(f'unknown optimizer {name!r}; use one of {OPTIMS}')
