"""A CPU check of an mmdet / mmseg config with AGVM before its real run
(``tools/check_config.py``); a tool, not part of the algorithm.

:func:`check_config` takes the config as it is, reads the AGVM window its
real run implies (:func:`agvm_window`, :mod:`.window`), then trains it for a
few optimizer steps on one CPU process on the built-in shapes data of its
task (:func:`make_check_config`, :mod:`.build`): two accumulated
micro-batches of small images, AGVM taking statistics on every step, no
downloads, SyncBN as BN, no DDP. The :class:`Report` (:mod:`.report`) lists
the module partition, the frozen parameters, the anchor, the variance rule,
the window, Phi and s per module for every step and each problem found with
the config key to change (among them custom hooks the config dropped from
its base, :mod:`.hooks`). Inputs too small for the model are retried once
with ones that fit; a model needing a CUDA-only op is reported as such
(:mod:`.retry`).
"""
from .build import (check_data_root, detect_task, make_check_config,
                    shapes_pipeline)
from .hooks import KEEP_FORM, base_hooks, dropped_hooks
from .report import CUDA_ONLY_STATUS, Report, StatisticsRecorder, check_config
from .window import Window, agvm_window, warmup_end

__all__ = [
    'check_config', 'check_data_root', 'Report', 'StatisticsRecorder',
    'agvm_window', 'warmup_end', 'Window', 'detect_task',
    'make_check_config', 'shapes_pipeline', 'base_hooks', 'dropped_hooks',
    'KEEP_FORM', 'CUDA_ONLY_STATUS'
]
