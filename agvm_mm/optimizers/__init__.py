"""Large-batch baseline optimizers registered in mmengine's root
``OPTIMIZERS``: ``'TimmLARS'``, ``'TimmLAMB'`` and ``'PMDLAMB'``.

They need timm (an optional dependency: ``pip install --no-deps
timm==1.0.31``). Without it ``import agvm_mm`` still works, and a config
naming one of them fails when the optimizer is built, saying so.
"""
from mmengine.registry import OPTIMIZERS

from ._timm import timm_available

if timm_available():
    from .lamb import TimmLAMB
    from .lars import TimmLARS
    from .pmd_lamb import PMDLAMB
    __all__ = ['TimmLARS', 'TimmLAMB', 'PMDLAMB']
else:
    def _needs_timm(name: str):
        def build(*args, **kwargs):
            raise ImportError(
                f"optim_wrapper.optimizer.type='{name}' needs timm, which is "
                'not installed: pip install --no-deps timm==1.0.31 (or '
                "choose another optimizer)")
        return build

    for _name in ('TimmLARS', 'TimmLAMB', 'PMDLAMB'):
        OPTIMIZERS.register_module(name=_name, module=_needs_timm(_name))
    __all__ = []
