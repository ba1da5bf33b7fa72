from .agvm_hook import AGVMHook
from .divergence_hook import DivergenceHook

__all__ = ['AGVMHook', 'DivergenceHook']
