"""Cluster planning: the paper's configs (``configs/<family>/``), one
``tools/slurm_train.sh`` or ``tools/dist_train.sh`` launch per cell."""
import functools
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

from tools.checkout import ROOT
from .grid import (CONFIG_SUBDIR, DIVERGENCE_IMPORTS, Cell, cell_work_dir,
                   find_paper_config, plain, render_config)
from .process import train_command


@dataclass
class ClusterOptions:
    """How a cluster grid runs.

    Args:
        launcher (str): ``'slurm'`` (``tools/slurm_train.sh``, GPUS = the G
            of the config's name) or ``'pytorch'`` (``tools/dist_train.sh``
            with G processes).
        work_root (str): Cells train into
            ``<work_root>/<family>/<optim>-b<B>``.
        partition (str, optional): Slurm partition; default ``$PARTITION``.
        job_name (str, optional): Slurm job name prefix; default ``$JOB``,
            else ``'agvm'``.
        gpus_per_node (int): Slurm's GPUS_PER_NODE (at most G).
        model (str, optional): Substring of the model part of the config
            name where a cell has several (e.g. ``'swin'``).
        divergence_hook (bool): Train a two-line wrapper of the paper config
            that adds ``DivergenceHook``.
        train_args (Sequence[str]): Extra ``tools/train.py`` options.
        config_root (str, optional): Folder of the family folders; default
            this checkout's ``configs/``.
    """
    launcher: str
    work_root: str = 'work_dirs/reproduce'
    partition: Optional[str] = None
    job_name: Optional[str] = None
    gpus_per_node: int = 8
    model: Optional[str] = None
    divergence_hook: bool = True
    train_args: Sequence[str] = ()
    config_root: Optional[str] = None


@functools.lru_cache(maxsize=None)
def _custom_hooks(path: str) -> tuple:
    """The paper config's own ``custom_hooks`` (AGVMHook with the window
    options of the AGVM files, none in the baselines'): a wrapper that
    adds a hook has to restate them."""
    from mmengine.config import Config
    return tuple(plain(list(Config.fromfile(path).get('custom_hooks') or [])))


def plan_cluster(families: Sequence[str], batches: Sequence[int],
                 optims: Sequence[str],
                 options: ClusterOptions) -> List[Cell]:
    """Cells of the paper's configs, launched as ``options`` says. With
    ``options.divergence_hook`` each cell trains a two-line wrapper of its
    paper config (written into its work dir by ``prepare_cell``) that adds
    ``DivergenceHook``; a cell without a paper config has its reason."""
    if options.launcher not in ('slurm', 'pytorch'):
        raise ValueError(f'launcher must be slurm or pytorch, not '
                         f'{options.launcher!r}')
    partition = options.partition or os.environ.get('PARTITION')
    if options.launcher == 'slurm' and not partition:
        raise ValueError('--launcher slurm needs a partition (--partition '
                         'or the PARTITION environment variable)')
    job_name = options.job_name or os.environ.get('JOB')
    cells = []
    for family in families:
        for optim in optims:
            for batch in batches:
                work_dir = cell_work_dir(options.work_root, family, optim,
                                         batch)
                cell = Cell(family, optim, batch, work_dir)
                cells.append(cell)
                try:
                    path, info = find_paper_config(family, optim, batch,
                                                   options.model,
                                                   options.config_root)
                except LookupError as error:
                    cell.reason = str(error)
                    continue
                cell.source_config = osp.relpath(path, ROOT)
                cell.info = dict(info)
                cell.config = path
                if options.divergence_hook:
                    cell.config = osp.join(work_dir, CONFIG_SUBDIR,
                                           osp.basename(path))
                    hooks = list(_custom_hooks(path))
                    hooks.append(dict(type='DivergenceHook'))
                    cell.config_text = render_config(
                        osp.abspath(path),
                        f'Written by tools/reproduce.py: the paper cell\n'
                        f'{cell.source_config}\nplus DivergenceHook.',
                        [('custom_imports', DIVERGENCE_IMPORTS),
                         ('custom_hooks', hooks)])
                _launch(cell, options, partition, job_name)
    return cells


def _launch(cell: Cell, options: ClusterOptions, partition: Optional[str],
            job_name: Optional[str]) -> None:
    """The cell's command: slurm with GPUS = G, or G torchrun processes."""
    gpus = cell.info['G']
    if options.launcher == 'slurm':
        job = (f'{job_name}-' if job_name else 'agvm-') + \
            f'{cell.family}-{cell.optim}-b{cell.batch}'
        cell.env = dict(GPUS=str(gpus), GPUS_PER_NODE=str(
            min(gpus, options.gpus_per_node)))
        cell.argv = ['bash', osp.join(ROOT, 'tools', 'slurm_train.sh'),
                     partition, job, cell.config, cell.work_dir]
    else:
        cell.argv = train_command(cell.config, cell.work_dir, gpus)
    cell.argv += list(options.train_args)
