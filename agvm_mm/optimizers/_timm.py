"""timm's optimizer modules, loaded without timm's package ``__init__``.

``import timm`` imports torchvision (through ``timm.data``), and PyPI's
torchvision needs a CUDA build of torch that replaces the CPU torch this
stack pins (and that mmcv's ops are compiled against). timm's
``optim/lamb.py`` and ``optim/lars.py`` need nothing but torch, so they are
imported from timm's installed files as the private package below.
"""
import importlib
import importlib.util
import os.path as osp
import sys
import types

_PACKAGE = __name__ + '_optim'


def timm_available() -> bool:
    """Whether timm is installed (it is not imported)."""
    return importlib.util.find_spec('timm') is not None


def timm_optim_module(name: str) -> types.ModuleType:
    """``timm.optim.<name>`` (e.g. ``'lamb'``) without importing ``timm``."""
    if _PACKAGE not in sys.modules:
        spec = importlib.util.find_spec('timm')
        if spec is None or spec.origin is None:
            raise ImportError('agvm_mm.optimizers needs timm: '
                              'pip install --no-deps timm==1.0.31')
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [osp.join(osp.dirname(spec.origin), 'optim')]
        sys.modules[_PACKAGE] = package
    return importlib.import_module(f'{_PACKAGE}.{name}')
