from .agvm_hook import AGVMHook
from .divergence_hook import DivergenceHook
from .gradient_variance_hook import GradientVarianceHook

__all__ = ['AGVMHook', 'DivergenceHook', 'GradientVarianceHook']
