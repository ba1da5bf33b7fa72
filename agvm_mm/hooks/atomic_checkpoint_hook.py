"""mmengine's CheckpointHook, with checkpoints that a killed worker cannot
leave half-written or missing."""
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

PARTIAL = '.partial'  # a checkpoint being written


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` (same arguments, same files)
    whose saves are atomic on a local disk, so that ``--resume`` (auto)
    always finds a complete checkpoint after a worker is killed at any
    moment.

    mmengine 0.10's hook removes the oldest checkpoint (``max_keep_ckpts``)
    *before* it writes the new one, writes the new one in place, and then
    rewrites ``last_checkpoint`` in place. A kill during the write leaves a
    truncated new file and ``last_checkpoint`` naming the removed one:
    the resume fails, and with ``max_keep_ckpts=1`` every checkpoint of the
    run is gone. This hook writes ``<name>.partial``, flushes it to disk
    and renames it (``os.replace``, atomic on POSIX), replaces
    ``last_checkpoint`` the same way, and only then removes the outdated
    checkpoints. A kill leaves at most a stray ``.partial``, which the next
    save overwrites. Other storage backends (``backend_args``) are saved as
    :class:`CheckpointHook` saves them.

    ``tools/train.py`` uses it in place of ``CheckpointHook``; with another
    launcher, set ``default_hooks.checkpoint.type='AtomicCheckpointHook'``.

    Examples:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='AtomicCheckpointHook', interval=1000, by_epoch=False,
        ...     max_keep_ckpts=1))
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = []
        # the bookkeeping of CheckpointHook, with the removal deferred
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        name = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, name)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(  # the main process writes, the others return
            self.out_dir, name + PARTIAL, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        _durable_rename(self.last_ckpt + PARTIAL, self.last_ckpt)
        latest = osp.join(runner.work_dir, 'last_checkpoint')
        with open(latest + PARTIAL, 'w') as f:
            f.write(self.last_ckpt)
        _durable_rename(latest + PARTIAL, latest)
        for old in outdated:  # only now that the new one is in place
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)
            elif osp.isdir(path):
                shutil.rmtree(path)


def _durable_rename(src: str, dst: str) -> None:
    """Flush ``src`` to disk, then rename it to ``dst`` atomically (and
    flush the directory entry: a machine that loses power keeps the old
    file or the new, never a name without its data)."""
    with open(src, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(src, dst)
    folder = os.open(osp.dirname(osp.abspath(dst)), os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
