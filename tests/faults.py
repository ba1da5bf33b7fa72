"""Faults injected into real training processes (tests/test_faults.py):
a config imports this module (``custom_imports``) and adds one of its hooks.
Each fault strikes in torchrun's first attempt only
(``TORCHELASTIC_RESTART_COUNT`` 0), so that the restarted group runs clean.
"""
import os
import os.path as osp
import signal

from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS


def first_attempt() -> bool:
    return os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') == '0'


def die() -> None:
    """What a lost node or the OOM killer does: SIGKILL, no clean-up."""
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillWorkerHook(Hook):
    """SIGKILL the process of ``rank`` after train iteration ``after_iter``
    (0-based) of the first attempt."""

    def __init__(self, after_iter: int, rank: int) -> None:
        self.after_iter, self.rank = after_iter, rank

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if (runner.iter == self.after_iter and runner.rank == self.rank
                and first_attempt()):
            die()


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """SIGKILL the process that writes the checkpoint file whose name starts
    with ``name`` (``iter_6.pth``, or its ``.partial``) once half of its
    bytes are on disk, in the first attempt: a worker killed mid-save."""

    def __init__(self, name: str) -> None:
        put = LocalBackend.put

        def half_then_die(backend, obj, filepath):
            if osp.basename(str(filepath)).startswith(name) and \
                    first_attempt():
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                die()
            put(backend, obj, filepath)

        LocalBackend.put = half_then_die


@HOOKS.register_module()
class PoisonGradientHook(Hook):
    """At train iteration ``at_iter`` (0-based) of the first attempt, the
    gradient ``rank`` computes for the model's first parameter turns inf
    (before DDP reduces it): one rank's bad batch."""

    def __init__(self, at_iter: int, rank: int) -> None:
        self.at_iter, self.rank = at_iter, rank
        self.handle = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if (runner.iter == self.at_iter and runner.rank == self.rank
                and first_attempt()):
            param = next(runner.model.parameters())
            self.handle = param.register_hook(lambda g: g * float('inf'))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


@HOOKS.register_module()
class StockCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook unchanged, under a name tools/train.py
    leaves alone (it makes ``CheckpointHook`` atomic): the contrast."""
