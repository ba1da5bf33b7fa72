"""AGVM (Adaptive Gradient Variance Modulator) for mmengine / mmdet / mmseg.

Importing this package registers ``AGVMOptimWrapper``,
``AGVMAmpOptimWrapper``, ``AGVMOptimWrapperConstructor``, ``AGVMHook``,
``GradientVarianceHook``, ``DivergenceHook``, ``AtomicCheckpointHook``
(checkpoints a killed worker cannot leave half-written), the
``ExpWarmupLR`` scheduler
and the baseline optimizers ``TimmLARS``, ``TimmLAMB`` and ``PMDLAMB`` in
mmengine's root registries, and lets mmengine's checkpoints load under
torch >= 2.6 (:mod:`agvm_mm.compat`). So
``custom_imports=dict(imports=['agvm_mm'])`` is enough in any mmdet or mmseg
config. The synthetic shapes datasets (``ShapesCocoDataset``,
``ShapesPanopticDataset``, ``ShapesSegDataset``) and the ``panopticapi``
stand-in that mmdet's panoptic code needs come with
``custom_imports=dict(imports=['agvm_mm', 'agvm_mm.datasets'])``.
"""
from . import compat, optimizers, schedulers  # noqa: F401
from .core import (compute_factors, gradient_noise, large_batch_plan,
                   mix_moments, noise_scale, pair_moments, precondition,
                   scaled_lr)
from .hooks import AGVMHook
from .optim import (AGVMAmpOptimWrapper, AGVMConfig, AGVMOptimWrapper,
                    AGVMOptimWrapperConstructor, AGVMOptimWrapperMixin)
from .partition import partition_modules

__version__ = '0.2.0'
__all__ = [
    'AGVMAmpOptimWrapper', 'AGVMConfig', 'AGVMHook', 'AGVMOptimWrapper',
    'AGVMOptimWrapperConstructor', 'AGVMOptimWrapperMixin', 'compute_factors',
    'gradient_noise', 'large_batch_plan', 'mix_moments', 'noise_scale',
    'pair_moments', 'partition_modules', 'precondition', 'scaled_lr'
]
