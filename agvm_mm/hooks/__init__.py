from .agvm_hook import AGVMHook
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .divergence_hook import DivergenceHook
from .gradient_variance_hook import GradientVarianceHook

__all__ = [
    'AGVMHook', 'AtomicCheckpointHook', 'DivergenceHook',
    'GradientVarianceHook'
]
