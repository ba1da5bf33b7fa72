from .agvm_amp_optim_wrapper import AGVMAmpOptimWrapper
from .agvm_config import AGVMConfig
from .agvm_constructor import AGVMOptimWrapperConstructor
from .agvm_optim_wrapper import (AGVMOptimWrapper, AGVMOptimWrapperMixin,
                                 variance_rule)

__all__ = [
    'AGVMAmpOptimWrapper', 'AGVMConfig', 'AGVMOptimWrapper',
    'AGVMOptimWrapperConstructor', 'AGVMOptimWrapperMixin', 'variance_rule'
]
