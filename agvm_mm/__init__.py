"""AGVM (Adaptive Gradient Variance Modulator) for mmengine / mmdet / mmseg.

Importing this package registers ``AGVMOptimWrapper``,
``AGVMAmpOptimWrapper``, ``AGVMOptimWrapperConstructor`` and ``AGVMHook`` in
mmengine's root registries, so ``custom_imports=dict(imports=['agvm_mm'])``
is enough in any mmdet or mmseg config.
"""
from . import utils  # noqa: F401  (checkpoint loading on torch >= 2.6)
from .core import compute_factors, gather_statistics, precondition, scaled_lr
from .hooks import AGVMHook
from .optim import (AGVMAmpOptimWrapper, AGVMConfig, AGVMOptimWrapper,
                    AGVMOptimWrapperConstructor, AGVMOptimWrapperMixin)
from .partition import partition_modules

__version__ = '0.1.0'
__all__ = [
    'AGVMAmpOptimWrapper', 'AGVMConfig', 'AGVMHook', 'AGVMOptimWrapper',
    'AGVMOptimWrapperConstructor', 'AGVMOptimWrapperMixin', 'compute_factors',
    'gather_statistics', 'partition_modules', 'precondition', 'scaled_lr'
]
