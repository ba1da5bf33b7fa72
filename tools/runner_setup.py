"""What tools/train.py and tools/test.py share (and tools/check_config.py,
tools/benchmark_overhead.py use): config overrides, the model config edits
of a CPU run without downloads, the AMP switch and process group set-up that
also works without a GPU (gloo)."""
import argparse
import logging
import os
import os.path as osp
import subprocess
from typing import Any, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

AMP_TYPES = {
    'OptimWrapper': 'AmpOptimWrapper',
    'AGVMOptimWrapper': 'AGVMAmpOptimWrapper',
}


def set_work_dir(cfg: Config, work_dir: Optional[str], config: str) -> None:
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])


def amp_available() -> bool:
    """Whether mmengine's ``AmpOptimWrapper`` (and so
    ``AGVMAmpOptimWrapper``) can train here: it asserts a GPU, NPU, MLU or
    MUSA device."""
    from mmengine.device import get_device
    return get_device() not in ('cpu', 'mps')


def enable_amp(cfg: Config) -> None:
    """``--amp``: switch to the AMP twin of the configured wrapper (stock
    mmdet silently replaces any wrapper by ``AmpOptimWrapper``)."""
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in AMP_TYPES.values():
        return
    if kind not in AMP_TYPES:
        raise ValueError(
            f'--amp: optim_wrapper.type={kind!r} has no known AMP variant; '
            f'use one of {sorted(AMP_TYPES)} or set the AMP type yourself.')
    wrapper.type = AMP_TYPES[kind]
    wrapper.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg: Config) -> None:
    """``--auto-scale-lr``. mmengine scales by ``world_size x
    batch_per_gpu / base_batch_size`` and ignores accumulation, so divide the
    base batch by ``accumulative_counts`` to scale by the real global batch.
    """
    scale = cfg.get('auto_scale_lr')
    if not scale or 'base_batch_size' not in scale:
        raise RuntimeError('--auto-scale-lr needs auto_scale_lr='
                           'dict(base_batch_size=...) in the config.')
    scale.enable = True
    counts = cfg.optim_wrapper.get('accumulative_counts', 1)
    scale.base_batch_size = scale.base_batch_size / counts


def replace_syncbn(node: Any) -> int:
    """SyncBN -> BN in a model config, in place (SyncBN refuses CPU tensors
    and one process); returns how many were replaced."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += replace_syncbn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += replace_syncbn(value)
    return count


def no_downloads(node: Any) -> None:
    """Drop every pretrained checkpoint of a model config, in place."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key == 'pretrained' and isinstance(value, str):
                node[key] = None
            elif key == 'init_cfg' and 'Pretrained' in str(value):
                node[key] = None
            else:
                no_downloads(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            no_downloads(value)


def atomic_checkpoints(cfg: Config) -> None:
    """mmengine's CheckpointHook -> AtomicCheckpointHook (the same files,
    written so that a killed worker never leaves a truncated or missing
    checkpoint for ``--resume``; agvm_mm/hooks/atomic_checkpoint_hook.py)."""
    hooks = cfg.get('default_hooks')
    if hooks is None:
        return
    checkpoint = hooks.get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') in (
            'CheckpointHook', 'mmengine.CheckpointHook', CheckpointHook):
        checkpoint['type'] = 'AtomicCheckpointHook'


def adapt_to_cpu(cfg: Config) -> None:
    """Without a GPU: SyncBN -> BN (SyncBN refuses CPU tensors) and a DDP
    wrapper without device ids and with gloo."""
    if torch.cuda.is_available():
        return
    if replace_syncbn(cfg.model):
        print_log('No GPU: SyncBN replaced by BN.', 'current', logging.INFO)
    if cfg.get('launcher', 'none') != 'none':
        if cfg.get('model_wrapper_cfg') is None:
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None,
                broadcast_buffers=False)
        env = dict(cfg.get('env_cfg') or {})
        env['dist_cfg'] = dict(env.get('dist_cfg') or {}, backend='gloo')
        cfg.env_cfg = env


def _slurm_env() -> None:
    """Fill torch's env:// variables from SLURM's, as mmengine does."""
    node_list = os.environ['SLURM_NODELIST']
    addr = subprocess.getoutput(
        f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_ADDR', addr)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def init_cpu_dist(launcher: str) -> None:
    """mmengine's init_dist calls torch.cuda.set_device, which a CPU build
    lacks; initialise gloo here and the Runner skips its own init."""
    if launcher == 'none' or torch.cuda.is_available() or (
            dist.is_initialized()):
        return
    if launcher == 'slurm':
        _slurm_env()
    elif launcher == 'mpi':
        os.environ.setdefault('RANK',
                              os.environ.get('OMPI_COMM_WORLD_RANK', '0'))
        os.environ.setdefault('WORLD_SIZE',
                              os.environ.get('OMPI_COMM_WORLD_SIZE', '1'))
    store = elastic_store()
    if store is None:
        dist.init_process_group('gloo')
    else:
        dist.init_process_group('gloo', store=store,
                                rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))


def elastic_store() -> Optional[dist.Store]:
    """Under torchrun (its agent hosts the store): the agent's store with
    this attempt's own key prefix, or None elsewhere.

    torchrun keeps one store across the restarts of ``--max-restarts``, and
    torch (2.4-2.13 at least) gives the workers its keys without a prefix
    per attempt, so a restarted gloo rank reads the address a killed rank
    published and its process group never forms (docs/faults.md)."""
    attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT')
    if os.environ.get('TORCHELASTIC_USE_AGENT_STORE') != 'True' or (
            attempt is None):
        return None
    store = dist.TCPStore(os.environ['MASTER_ADDR'],
                          int(os.environ['MASTER_PORT']),
                          int(os.environ['WORLD_SIZE']), is_master=False)
    return dist.PrefixStore(f'agvm_mm/attempt_{attempt}', store)


def prepare(cfg: Config, args) -> Config:
    """Apply the command-line options common to train and test."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    adapt_to_cpu(cfg)
    init_cpu_dist(args.launcher)
    return cfg


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the options train and test share, parse, export LOCAL_RANK."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_runner(cfg: Config):
    """mmengine's Runner, or the config's own ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return (Runner.from_cfg(cfg)
            if 'runner_type' not in cfg else RUNNERS.build(cfg))


def shutdown() -> None:
    """Destroy the process group before exit: gloo's threads left running at
    interpreter exit can abort the process after the job has finished. The
    runner should be gone by then: a DDP model left for the interpreter's
    exit would free its reducer (with AGVM's communication hook) and the
    process group in an arbitrary order."""
    import gc
    gc.collect()  # the runner's cycles: the DDP model and its reducer
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
