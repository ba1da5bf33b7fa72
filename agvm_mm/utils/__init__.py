from .checkpoint import register_checkpoint_globals

__all__ = ['register_checkpoint_globals']
