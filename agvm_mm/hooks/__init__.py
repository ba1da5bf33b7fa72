from .agvm_hook import AGVMHook

__all__ = ['AGVMHook']
