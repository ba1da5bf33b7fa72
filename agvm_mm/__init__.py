"""AGVM (Adaptive Gradient Variance Modulator) for mmengine / mmdet / mmseg.

Importing this package registers ``AGVMOptimWrapper``,
``AGVMAmpOptimWrapper``, ``AGVMOptimWrapperConstructor``, ``AGVMHook`` and the
baseline optimizers ``TimmLARS``, ``TimmLAMB`` and ``PMDLAMB`` in mmengine's
root registries, and lets mmengine's checkpoints load under torch >= 2.6.
So ``custom_imports=dict(imports=['agvm_mm'])`` is enough in any mmdet or
mmseg config.
"""
from . import datasets, optimizers, schedulers, utils  # noqa: F401
from .core import compute_factors, gather_statistics, precondition, scaled_lr
from .hooks import AGVMHook
from .optim import (AGVMAmpOptimWrapper, AGVMConfig, AGVMOptimWrapper,
                    AGVMOptimWrapperConstructor, AGVMOptimWrapperMixin)
from .partition import partition_modules

# mmdet's panoptic loader and metric import panopticapi, which is not on any
# package registry: provide its few names when it is missing.
datasets.ensure_panopticapi()

__version__ = '0.1.0'
__all__ = [
    'AGVMAmpOptimWrapper', 'AGVMConfig', 'AGVMHook', 'AGVMOptimWrapper',
    'AGVMOptimWrapperConstructor', 'AGVMOptimWrapperMixin', 'compute_factors',
    'gather_statistics', 'partition_modules', 'precondition', 'scaled_lr'
]
