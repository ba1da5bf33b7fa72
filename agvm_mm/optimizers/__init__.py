"""Large-batch baseline optimizers registered in mmengine's root
``OPTIMIZERS``: ``'TimmLARS'``, ``'TimmLAMB'`` and ``'PMDLAMB'``."""
from .lamb import TimmLAMB
from .lars import TimmLARS
from .pmd_lamb import PMDLAMB

__all__ = ['TimmLARS', 'TimmLAMB', 'PMDLAMB']
