"""Parameter schedulers registered in mmengine's root ``PARAM_SCHEDULERS``
(so they resolve under any default scope): ``ExpWarmupLR``."""
from .exp_warmup import ExpWarmupLR, ExpWarmupParamScheduler

__all__ = ['ExpWarmupLR', 'ExpWarmupParamScheduler']
