"""What importing ``agvm_mm`` changes outside the package, in one place.

Registration of AGVM's types is plain (``@register_module`` in each module).
The one change to someone else's behaviour is here: mmengine 0.10.7 cannot
resume under torch >= 2.6, whose ``torch.load`` defaults to
``weights_only=True`` and refuses anything but tensors and a list of safe
types. mmengine's checkpoints also hold its message hub (``HistoryBuffer``
objects wrapping numpy arrays, which pickle their statistics functions as
``getattr(HistoryBuffer, 'mean')``), so ``--resume`` fails, and AGVM runs
must resume exactly (docs/algorithm.md §7). Instead of turning the check off
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) we allow-list exactly the types
mmengine writes; ``getattr`` is allowed only for ``HistoryBuffer``'s own
statistics methods. The shapes data and its ``panopticapi`` stand-in are not
loaded here: configs that use them import ``agvm_mm.datasets``.
"""
import pickle
from typing import Any, List

import numpy as np
import torch


def _numpy_globals() -> List:
    from numpy.core.multiarray import _reconstruct  # noqa: F401
    dtypes = [type(np.dtype(t)) for t in (
        'b', 'B', 'h', 'H', 'i', 'I', 'l', 'L', 'q', 'Q', 'e', 'f', 'd', 'g',
        '?', 'O', 'U', 'S')]
    scalars = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32,
               np.uint32, np.int64, np.uint64, np.float16, np.float32,
               np.float64, np.str_]
    try:  # numpy >= 2 pickles this path
        from numpy._core.multiarray import _reconstruct as reconstruct2
        from numpy._core.multiarray import scalar as scalar2
        extra = [reconstruct2, scalar2]
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar as scalar1
        extra = [scalar1]
    from numpy.core.multiarray import _reconstruct as reconstruct1
    return [reconstruct1, np.ndarray, np.dtype] + dtypes + scalars + extra


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as a checkpoint may use it: only to name one of
    ``HistoryBuffer``'s statistics methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and callable(
            HistoryBuffer.__dict__.get(name)) and not name.startswith('_'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'agvm_mm: refusing getattr({obj!r}, {name!r}) in a checkpoint')


def register_checkpoint_globals() -> None:
    """Allow-list the types of mmengine's checkpoints for torch.load."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 loads everything anyway
        return
    from mmengine.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer
    add([HistoryBuffer, ConfigDict, (_history_buffer_getattr,
                                     'builtins.getattr')] + _numpy_globals())


register_checkpoint_globals()
