"""Local planning: a miniature grid on the shapes data, every cell one
process of ``tools/train.py`` with accumulation (``configs/shapes/``)."""
import json
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from tools.checkout import ROOT
from .grid import (CONFIG_SUBDIR, DIVERGENCE_IMPORTS, FAMILIES, Cell,
                   cell_work_dir, plain, render_config)
from .optims import OPTIMIZERS
from .process import train_command
from .schedules import (lr_factor, parse_base_lr, scale_schedulers,
                        to_iterations, warmup_end)


@dataclass
class LocalOptions:
    """How a local grid runs.

    Args:
        work_root (str): Cells train into
            ``<work_root>/<family>/<optim>-b<B>``.
        batch_per_proc (int, optional): Images per micro-batch; default the
            shapes config's. Accumulation = batch / this.
        epochs (float, optional): Epochs for every batch size; default the
            shapes config's on this data.
        lr_scaling (str): ``'sqrt'`` or ``'linear'`` from the recipe's batch.
        base_lrs (dict): Per optimizer, the lr at the recipe's batch: a
            number, or ``'xM'`` for M times the default rule's.
        num_train (int, optional): Training images; default the shapes
            data's (its ``meta.json`` under ``cwd``).
        cwd (str): Where the cells run (``data/shapes`` is read there).
        divergence_hook (bool): Add ``DivergenceHook`` to every cell.
        max_loss (float, optional): A finite loss above this also diverges.
        train_args (Sequence[str]): Extra ``tools/train.py`` options.
        shapes_root (str, optional): Folder of the shapes configs; default
            this checkout's ``configs/shapes``.
    """
    work_root: str = 'work_dirs/reproduce'
    batch_per_proc: Optional[int] = None
    epochs: Optional[float] = None
    lr_scaling: str = 'sqrt'
    base_lrs: Dict[str, object] = field(default_factory=dict)
    num_train: Optional[int] = None
    cwd: str = '.'
    divergence_hook: bool = True
    max_loss: Optional[float] = None
    train_args: Sequence[str] = ()
    shapes_root: Optional[str] = None


@dataclass
class LocalRecipe:
    """The small-batch recipe of a shapes config, read from the config."""
    batch_per_proc: int
    accumulation: int
    total_iters: int  # runner iterations (micro-batches)
    lr: float
    momentum: float
    weight_decay: float
    clip_grad: Optional[dict]
    agvm: Optional[dict]
    schedulers: List[dict]
    hooks: List[dict]
    data_root: str

    @property
    def batch(self) -> int:
        return self.batch_per_proc * self.accumulation


def read_recipe(config_path: str, num_train: Optional[int] = None
                ) -> LocalRecipe:
    """Read batch, lr, schedule and hooks of a shapes config."""
    from mmengine.config import Config
    cfg = Config.fromfile(config_path)
    wrapper = cfg.optim_wrapper
    optimizer = wrapper.optimizer
    bpp = int(cfg.train_dataloader.batch_size)
    train_cfg = cfg.train_cfg
    if 'max_iters' in train_cfg:
        total = int(train_cfg.max_iters)
        iters_per_epoch = None
    else:  # epoch-based recipe: count its iterations on this data
        if not num_train:
            raise ValueError(f'{config_path} is epoch-based: the data size '
                             'is needed to count its iterations')
        iters_per_epoch = math.ceil(num_train / bpp)
        total = int(train_cfg.max_epochs) * iters_per_epoch
    schedulers = to_iterations(plain(list(cfg.get('param_scheduler') or [])),
                               iters_per_epoch, config_path)
    dataset = cfg.train_dataloader.dataset
    while 'data_root' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset  # wrapped datasets
    return LocalRecipe(
        batch_per_proc=bpp,
        accumulation=int(wrapper.get('accumulative_counts', 1)),
        total_iters=total, lr=float(optimizer.lr),
        momentum=float(optimizer.get('momentum', 0.9)),
        weight_decay=float(optimizer.get('weight_decay', 1e-4)),
        clip_grad=plain(wrapper.get('clip_grad')),
        agvm=plain(wrapper.get('agvm')),
        schedulers=schedulers,
        hooks=plain(list(cfg.get('custom_hooks') or [])),
        data_root=dataset.get('data_root', 'data/shapes/'))


def data_size(data_root: str, cwd: str = '.') -> Optional[int]:
    """Training images of the shapes data (its meta.json), None if absent."""
    meta = osp.join(cwd, data_root, 'meta.json')
    if not osp.exists(meta):
        return None
    with open(meta) as f:
        return int(json.load(f)['num_images']['train'])


def plan_local(families: Sequence[str], batches: Sequence[int],
               optims: Sequence[str],
               options: Optional[LocalOptions] = None) -> List[Cell]:
    """Cells of a miniature grid on the shapes data, trained on one process.

    For every batch ``B``: ``B = batch_per_proc x K`` (accumulation K; AGVM
    needs K even and >= 2), the same number of epochs for every ``B``
    (optimizer steps ``round(epochs x N / B)``), the lr scaled from the
    shapes recipe's (``lr_scaling``; the Adam family from ``1e-4 x sqrt(B0 /
    16)``, the paper's rule, at the recipe's batch ``B0``), the warm-up and
    lr steps at the same fraction of the run. ``base_lrs`` overrides the lr
    at ``B0`` per optimizer (a number, or ``'xM'``: M times the rule's).
    Each cell trains a generated child config of
    ``configs/shapes/<family>_{agvm,sgd}.py`` (written into its work dir by
    ``prepare_cell``).
    """
    options = options or LocalOptions()
    shapes_root = options.shapes_root or osp.join(ROOT, 'configs', 'shapes')
    recipes: Dict[str, object] = {}
    cells = []
    for family in families:
        fam = FAMILIES[family]
        for optim in optims:
            kind = 'agvm' if OPTIMIZERS[optim].agvm else 'sgd'
            path = osp.join(shapes_root, f'{fam.shapes}_{kind}.py')
            for batch in batches:
                cell = Cell(family, optim, batch,
                            cell_work_dir(options.work_root, family, optim,
                                          batch), local=True)
                cells.append(cell)
                if not osp.exists(path):
                    cell.reason = (f'no shapes config '
                                   f'{osp.relpath(path, ROOT)}')
                    continue
                if path not in recipes:
                    try:
                        recipes[path] = read_recipe(path, options.num_train)
                    except Exception as error:  # report, go on
                        recipes[path] = f'{type(error).__name__}: {error}'
                recipe = recipes[path]
                if isinstance(recipe, str):
                    cell.reason = f'cannot read {osp.basename(path)}: ' \
                        + recipe
                    continue
                cell.source_config = osp.relpath(path, ROOT)
                _plan_local_cell(cell, path, recipe, options)
    return cells


def _scale_window(agvm: Optional[dict], hooks: List[dict],
                  ratio: float) -> None:
    """AGVM's own steps (``agvm.start_iter / stop_iter / clip_grad_window``
    and ``AGVMHook``'s offsets from the warm-up) at the same fraction of a
    run of ``ratio`` times the recipe's optimizer steps, in place."""
    def scaled(value: int) -> int:
        return int(round(value * ratio))

    if agvm is not None:
        for key in ('start_iter', 'stop_iter'):
            if agvm.get(key) is not None:
                agvm[key] = scaled(agvm[key])
        if agvm.get('clip_grad_window') is not None:
            agvm['clip_grad_window'] = tuple(
                scaled(v) for v in agvm['clip_grad_window'])
    for hook in hooks:
        if hook.get('type') != 'AGVMHook':
            continue
        if hook.get('start_offset'):
            hook['start_offset'] = scaled(hook['start_offset'])
        if hook.get('clip_window') is not None:
            hook['clip_window'] = tuple(scaled(v)
                                        for v in hook['clip_window'])


def _plan_local_cell(cell: Cell, path: str, recipe: LocalRecipe,
                     options: LocalOptions) -> None:
    """Fill in one local cell (its generated config and command), or its
    reason when its batch cannot be realised on one process."""
    optim = OPTIMIZERS[cell.optim]
    batch = cell.batch
    bpp = options.batch_per_proc or recipe.batch_per_proc
    if batch % bpp:
        cell.reason = (f'batch {batch} is not a multiple of {bpp} images '
                       'per process (--batch-per-proc)')
        return
    accumulation = batch // bpp
    if optim.agvm and (accumulation < 2 or accumulation % 2):
        cell.reason = (f'AGVM on one process needs an even accumulation '
                       f'>= 2; batch {batch} = {bpp} x {accumulation}')
        return
    size = options.num_train or data_size(recipe.data_root, options.cwd)
    if not size:
        cell.reason = f'no shapes data at {recipe.data_root} (meta.json)'
        return
    base_batch = recipe.batch
    base_epochs = recipe.total_iters * recipe.batch_per_proc / size
    run_epochs = options.epochs if options.epochs is not None \
        else base_epochs
    steps = max(1, int(round(run_epochs * size / batch)))
    total = steps * accumulation
    base_lr = (1e-4 * math.sqrt(base_batch / 16)
               if optim.rule == 'adam' else recipe.lr)
    base_lr = parse_base_lr(options.base_lrs.get(optim.name, base_lr),
                            base_lr)
    lr = base_lr * lr_factor(batch, base_batch, options.lr_scaling)
    agvm = dict(recipe.agvm or {}) if optim.agvm else None
    hooks = [dict(h) for h in recipe.hooks
             if optim.agvm or h.get('type') != 'AGVMHook']
    _scale_window(agvm, hooks,
                  steps * recipe.accumulation / recipe.total_iters)
    if optim.agvm and not any(h.get('type') == 'AGVMHook' for h in hooks):
        hooks.append(dict(type='AGVMHook'))
    if options.divergence_hook:
        hooks.append(dict(type='DivergenceHook', max_loss=options.max_loss))
    wrapper = optim.wrapper(lr, accumulation, dict(
        momentum=recipe.momentum, weight_decay=recipe.weight_decay,
        clip_grad=recipe.clip_grad), math.ceil(size / batch), agvm)
    schedulers = scale_schedulers(recipe.schedulers, total,
                                  recipe.total_iters, recipe.total_iters)
    log_interval = max(1, min(50, total // 10))
    items = [
        ('custom_imports', DIVERGENCE_IMPORTS),
        ('train_dataloader', dict(batch_size=bpp)),
        ('train_cfg', dict(_delete_=True, type='IterBasedTrainLoop',
                           max_iters=total, val_interval=total)),
        ('optim_wrapper', wrapper),
        ('param_scheduler', schedulers),
        ('custom_hooks', hooks),
        ('default_hooks', dict(
            logger=dict(type='LoggerHook', interval=log_interval),
            # every ~10 % of the steps, on a step boundary: an interrupted
            # cell resumes there (launch.run_cell) instead of starting over
            checkpoint=dict(_delete_=True, type='CheckpointHook',
                            by_epoch=False,
                            interval=accumulation * max(1, steps // 10),
                            max_keep_ckpts=1))),
        ('log_processor', dict(by_epoch=False)),
        ('auto_scale_lr', dict(enable=False, base_batch_size=batch)),
    ]
    cell.info = dict(batch_per_proc=bpp, accumulation=accumulation,
                     iters=total, steps=steps, lr=lr, epochs=run_epochs,
                     warmup_iters=warmup_end(schedulers, total),
                     data_size=size)
    header = (f'Written by tools/reproduce.py --local: {cell.name}.\n'
              f'{cell.source_config} at global batch {batch} = 1 process x '
              f'{bpp} x {accumulation},\n{run_epochs:g} epochs of {size} '
              f'images = {steps} optimizer steps, lr {lr:.6g} '
              f'({options.lr_scaling} scaling from {base_lr:g} at '
              f'{base_batch}).')
    cell.config_text = render_config(osp.abspath(path), header, items)
    cell.config = osp.join(cell.work_dir, CONFIG_SUBDIR,
                           f'{cell.family}_{optim.name}_b{batch}_shapes.py')
    cell.argv = train_command(cell.config, cell.work_dir) + \
        list(options.train_args)
