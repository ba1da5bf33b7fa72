"""Reproduce a grid of the AGVM paper's tables (families x batch sizes x
optimizers) and write the table and the plot from the runs' own logs.

``tools/reproduce.py`` is the command line; this module holds the logic:

* :func:`plan_cluster` / :func:`plan_local` turn a grid into :class:`Cell`
  objects (config, work dir, command, or the reason a cell cannot run),
* :func:`run_grid` launches them, one at a time or ``jobs`` at once
  (skipping finished cells, reporting progress),
* :func:`read_cell_result` reads a cell's metrics back from its work dir
  (mmengine's json log, else its text log) or its ``diverged.json``,
* :func:`write_report` writes ``results.md`` (one table per family in the
  paper's layout), ``results.json`` and ``results.png``.
"""
import glob
import hashlib
import json
import math
import os
import os.path as osp
import pprint
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DIVERGED_MARKER = 'diverged.json'  # == agvm_mm.hooks.divergence_hook.MARKER
STATE_FILE = 'reproduce_cell.json'
TRAIN_LOG = 'reproduce_train.log'
# generated configs: not in the work dir itself, where mmengine dumps the
# full config under the same file name
CONFIG_SUBDIR = 'reproduce_config'
DASH = '\u2014'  # "—": cell not run / failed


@dataclass(frozen=True)
class Metric:
    key: str  # key in mmengine's log, e.g. 'coco/bbox_mAP'
    label: str  # column title, e.g. 'bbox mAP'
    scale: float  # to the paper's percent units


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    shapes: str  # configs/shapes/<shapes>_{agvm,sgd}.py
    metrics: Tuple[Metric, ...]  # the first one is plotted


BBOX = Metric('coco/bbox_mAP', 'bbox mAP', 100.0)
FAMILIES: Dict[str, Family] = {f.name: f for f in (
    Family('retinanet', 'RetinaNet', 'retinanet_tiny_shapes', (BBOX, )),
    Family('faster_rcnn', 'Faster R-CNN', 'faster-rcnn_tiny_shapes',
           (BBOX, )),
    # the authors' regime: pretrained backbone, their schedule's shape
    Family('retinanet_paper', 'RetinaNet (pretrained, paper schedule)',
           'retinanet_tiny_shapes_paper', (BBOX, )),
    Family('faster_rcnn_paper', 'Faster R-CNN (pretrained, paper schedule)',
           'faster-rcnn_tiny_shapes_paper', (BBOX, )),
    Family('mask_rcnn', 'Mask R-CNN', 'mask-rcnn_tiny_shapes',
           (Metric('coco/segm_mAP', 'segm mAP', 100.0), BBOX)),
    Family('panoptic_fpn', 'Panoptic FPN', 'panoptic-fpn_tiny_shapes',
           (Metric('coco_panoptic/PQ', 'PQ', 1.0), )),
    Family('sem_fpn', 'Semantic FPN', 'sem-fpn_tiny_shapes',
           (Metric('mIoU', 'mIoU', 1.0), )),
)}
# Read for every family next to its metrics: a run that ends with a high
# loss was under-trained, not only badly generalising.
TRAIN_LOSS = Metric('loss', 'final train loss', 1.0)


def family_metrics(family: str) -> Tuple[Metric, ...]:
    """The metrics of a family's tables: its evaluation metrics (the first
    is plotted), then the final training loss."""
    return FAMILIES[family].metrics + (TRAIN_LOSS, )


OPTIMS = ('sgd', 'agvm', 'agvm-adamw', 'adamw', 'lars', 'lamb', 'pmd-lamb')
OPTIM_TITLES = {'sgd': 'SGD', 'agvm': 'SGD + AGVM', 'agvm-adamw':
                'AdamW + AGVM', 'adamw': 'AdamW', 'lars': 'LARS',
                'lamb': 'LAMB', 'pmd-lamb': 'PMD-LAMB'}
ADAM_FAMILY = ('adamw', 'agvm-adamw', 'lamb', 'pmd-lamb')

CONFIG_NAME = re.compile(
    r'^(?P<model>.+?)_(?P<optim>agvm-adamw|agvm|sgd|adamw|lars|pmd-lamb|lamb)'
    r'_(?P<G>\d+)xb(?P<S>\d+)(?:x(?P<K>\d+))?-(?P<sched>[^_]+)_(?P<data>.+)'
    r'-b(?P<B>\d+)\.py$')


def normalize_family(name: str) -> str:
    key = name.strip().lower().replace('-', '_')
    if key not in FAMILIES:
        raise ValueError(f'unknown family {name!r}; use one of '
                         f'{sorted(FAMILIES)}')
    return key


def normalize_optim(name: str) -> str:
    key = name.strip().lower().replace('_', '-')
    key = {'pmdlamb': 'pmd-lamb', 'sgd+agvm': 'agvm'}.get(key, key)
    if key not in OPTIMS:
        raise ValueError(f'unknown optimizer {name!r}; use one of {OPTIMS}')
    return key


def parse_batches(specs: Sequence[str], optims: Sequence[str]
                  ) -> Tuple[List[int], Dict[int, Tuple[str, ...]]]:
    """``--batches`` items: ``B`` runs every optimizer, ``B:OPT,OPT`` only
    those (e.g. ``32:sgd`` for the small-batch reference row). Returns the
    batch sizes and ``{B: optimizers}`` for the restricted ones."""
    batches, only = [], {}
    for spec in specs:
        head, _, tail = str(spec).partition(':')
        try:
            batch = int(head)
        except ValueError:
            raise ValueError(f'--batches: {spec!r} is not B or B:OPT,OPT '
                             '(e.g. 256 or 32:sgd,agvm)') from None
        if batch < 1:
            raise ValueError(f'--batches: batch {batch} must be >= 1')
        if tail:
            names = tuple(normalize_optim(o) for o in tail.split(',') if o)
            missing = [o for o in names if o not in optims]
            if missing:
                raise ValueError(f'--batches {spec}: {missing} not in '
                                 f'--optims {list(optims)}')
            only[batch] = names
        if batch not in batches:
            batches.append(batch)
    return batches, only


def restrict_cells(cells: Sequence['Cell'],
                   only: Dict[int, Tuple[str, ...]]) -> List['Cell']:
    """Drop the cells of a restricted batch (:func:`parse_batches`) whose
    optimizer is not among its own."""
    return [c for c in cells if c.batch not in only or c.optim in
            only[c.batch]]


# --------------------------------------------------------------------------
# cells
@dataclass
class Cell:
    family: str
    optim: str
    batch: int
    work_dir: str
    config: Optional[str] = None  # what is trained (written by plan_*)
    source_config: Optional[str] = None  # the paper / shapes config
    argv: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)  # extra env vars
    config_text: Optional[str] = None  # generated wrapper config
    info: Dict[str, object] = field(default_factory=dict)
    reason: Optional[str] = None  # set: the cell cannot run
    local: bool = False  # one process of tools/train.py (may pick a GPU)

    @property
    def name(self) -> str:
        return f'{self.family} {self.optim} b{self.batch}'

    def fingerprint(self) -> str:
        """What the cell trains (generated config, arguments, environment;
        not the Python executable): a finished cell whose fingerprint
        differs ran with other settings and is run again."""
        text = '\n'.join([self.config_text or '', shlex.join(self.argv[1:]),
                          json.dumps(self.env, sort_keys=True)])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def command_line(self) -> str:
        env = ' '.join(f'{k}={shlex.quote(str(v))}'
                       for k, v in self.env.items())
        return (env + ' ' if env else '') + shlex.join(self.argv)


def cell_work_dir(work_root: str, family: str, optim: str,
                  batch: int) -> str:
    return osp.join(work_root, family, f'{optim}-b{batch}')


def parse_config_name(filename: str) -> Optional[dict]:
    """The fields of a paper config's name (``configs/README.md``): model,
    optim, G, S, K, sched, data, B; None if the name does not follow it."""
    match = CONFIG_NAME.match(osp.basename(filename))
    if match is None:
        return None
    info = match.groupdict()
    for key in ('G', 'S', 'B'):
        info[key] = int(info[key])
    info['K'] = int(info['K'] or 1)
    return info


def find_paper_config(family: str, optim: str, batch: int,
                      model: Optional[str] = None,
                      config_root: Optional[str] = None) -> Tuple[str, dict]:
    """``(path, name fields)`` of the paper config of a cell, found by name in
    ``configs/<family>/``. Raises LookupError with the reason otherwise.

    Several models at one cell (Faster R-CNN R50 and Swin-T at 256/512):
    ``model`` (a substring of the model part) picks one, else R50 wins."""
    folder = osp.join(config_root or osp.join(ROOT, 'configs'), family)
    found = []
    for path in sorted(glob.glob(osp.join(folder, '*.py'))):
        info = parse_config_name(path)
        if info and info['optim'] == optim and info['B'] == batch:
            found.append((path, info))
    if model:
        found = [(p, i) for p, i in found if model in i['model']]
    if len(found) > 1:
        r50 = [(p, i) for p, i in found if 'r50' in i['model']]
        found = r50 or found
    if not found:
        raise LookupError(
            f'no paper config {family}/*_{optim}_<G>xb<S>-*-b{batch}.py' +
            (f' for model {model!r}' if model else ''))
    if len(found) > 1:
        raise LookupError('several configs match, pick one with --model: ' +
                          ', '.join(osp.basename(p) for p, _ in found))
    return found[0]


def _render_config(base: str, header: str, items: Sequence[Tuple[str,
                                                                 object]]
                   ) -> str:
    lines = [f'# {line}' if line else '#' for line in header.splitlines()]
    lines.append(f'_base_ = {base!r}')
    for key, value in items:
        lines.append(f'{key} = ' + pprint.pformat(value, width=76,
                                                   sort_dicts=False))
    return '\n'.join(lines) + '\n'


DIVERGENCE_IMPORTS = dict(
    imports=['agvm_mm', 'agvm_mm.hooks.divergence_hook'],
    allow_failed_imports=False)


def plan_cluster(families: Sequence[str], batches: Sequence[int],
                 optims: Sequence[str], launcher: str,
                 work_root: str = 'work_dirs/reproduce',
                 partition: Optional[str] = None,
                 job_name: Optional[str] = None,
                 gpus_per_node: int = 8, model: Optional[str] = None,
                 divergence_hook: bool = True,
                 train_args: Sequence[str] = (),
                 config_root: Optional[str] = None) -> List[Cell]:
    """Cells of the paper's configs, launched by ``tools/slurm_train.sh``
    (``launcher='slurm'``, GPUS = G of the name) or ``tools/dist_train.sh``
    (``'pytorch'``, G processes). With ``divergence_hook`` each cell trains
    a two-line wrapper of its paper config (written into its work dir by
    :func:`prepare_cell`) that adds :class:`DivergenceHook`."""
    if launcher not in ('slurm', 'pytorch'):
        raise ValueError(f'launcher must be slurm or pytorch, not '
                         f'{launcher!r}')
    partition = partition or os.environ.get('PARTITION')
    if launcher == 'slurm' and not partition:
        raise ValueError('--launcher slurm needs a partition (--partition '
                         'or the PARTITION environment variable)')
    job_name = job_name or os.environ.get('JOB')
    cells = []
    for family in families:
        for optim in optims:
            for batch in batches:
                work_dir = cell_work_dir(work_root, family, optim, batch)
                cell = Cell(family, optim, batch, work_dir)
                cells.append(cell)
                try:
                    path, info = find_paper_config(family, optim, batch,
                                                   model, config_root)
                except LookupError as error:
                    cell.reason = str(error)
                    continue
                cell.source_config = osp.relpath(path, ROOT)
                cell.info = dict(info)
                gpus = info['G']
                config = path
                if divergence_hook:
                    config = osp.join(work_dir, CONFIG_SUBDIR, osp.basename(path))
                    # the paper's AGVM files log with AGVMHook; the
                    # baselines drop it (configs/README.md)
                    hooks = ([dict(type='AGVMHook')]
                             if optim.startswith('agvm') else [])
                    hooks.append(dict(type='DivergenceHook'))
                    cell.config_text = _render_config(
                        osp.abspath(path),
                        f'Written by tools/reproduce.py: the paper cell\n'
                        f'{cell.source_config}\nplus DivergenceHook.',
                        [('custom_imports', DIVERGENCE_IMPORTS),
                         ('custom_hooks', hooks)])
                cell.config = config
                if launcher == 'slurm':
                    job = (f'{job_name}-' if job_name else 'agvm-') + \
                        f'{family}-{optim}-b{batch}'
                    cell.env = dict(GPUS=str(gpus), GPUS_PER_NODE=str(
                        min(gpus, gpus_per_node)))
                    cell.argv = ['bash', osp.join(ROOT, 'tools',
                                                  'slurm_train.sh'),
                                 partition, job, config, work_dir]
                else:
                    cell.argv = ['bash', osp.join(ROOT, 'tools',
                                                  'dist_train.sh'),
                                 config, str(gpus), '--work-dir', work_dir]
                cell.argv += list(train_args)
    return cells


# --------------------------------------------------------------------------
# local mode: a miniature grid on the shapes data
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


def _plain(value):
    """Config values as plain python (ConfigDict -> dict)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


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
    schedulers = []
    for sched in _plain(list(cfg.get('param_scheduler') or [])):
        if sched.pop('by_epoch', True) or sched.pop('convert_to_iter_based',
                                                    False):
            if iters_per_epoch is None:
                raise ValueError(f'{config_path}: an epoch-based scheduler '
                                 'in an iteration-based recipe')
            for key in ('begin', 'end', 'T_max', 'step_size'):
                if key in sched:
                    sched[key] = sched[key] * iters_per_epoch
            if 'milestones' in sched:
                sched['milestones'] = [m * iters_per_epoch
                                       for m in sched['milestones']]
        sched['by_epoch'] = False
        schedulers.append(sched)
    dataset = cfg.train_dataloader.dataset
    while 'data_root' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset  # wrapped datasets
    return LocalRecipe(
        batch_per_proc=bpp,
        accumulation=int(wrapper.get('accumulative_counts', 1)),
        total_iters=total, lr=float(optimizer.lr),
        momentum=float(optimizer.get('momentum', 0.9)),
        weight_decay=float(optimizer.get('weight_decay', 1e-4)),
        clip_grad=_plain(wrapper.get('clip_grad')),
        agvm=_plain(wrapper.get('agvm')),
        schedulers=schedulers,
        hooks=_plain(list(cfg.get('custom_hooks') or [])),
        data_root=dataset.get('data_root', 'data/shapes/'))


def parse_base_lr(value, default: float) -> float:
    """A ``--base-lr`` value: an lr (``0.2``), or ``xM`` for M times the
    default rule's lr (``x10``), so one setting fits every family."""
    text = str(value).strip()
    try:
        if text.lower().startswith('x'):
            return float(text[1:]) * default
        return float(text)
    except ValueError:
        raise ValueError(f'--base-lr: {value!r} is not an lr (0.2) or a '
                         'multiple of the default lr (x10)') from None


def scale_lr(base_lr: float, batch: int, base_batch: int,
             rule: str = 'sqrt') -> float:
    """``base_lr`` at ``base_batch`` scaled to ``batch``."""
    if rule not in ('sqrt', 'linear'):
        raise ValueError(f'lr scaling must be sqrt or linear, not {rule!r}')
    ratio = batch / base_batch
    return base_lr * (math.sqrt(ratio) if rule == 'sqrt' else ratio)


def scale_schedulers(schedulers: Sequence[dict], old_total: int,
                     new_total: int) -> List[dict]:
    """Rescale the iteration positions of runner-iteration schedulers from a
    run of ``old_total`` to one of ``new_total`` iterations (the warm-up and
    the lr steps stay the same fraction of the run)."""
    def scaled(value):
        if value >= old_total:
            return new_total
        return max(1, int(round(value * new_total / old_total))) if value \
            else 0

    out = []
    for sched in schedulers:
        sched = dict(sched)
        for key in ('begin', 'end', 'T_max', 'step_size'):
            if key in sched:
                sched[key] = scaled(sched[key])
        if sched.get('begin', 0) == 0 and sched.get('end', new_total) < 2:
            # mmengine's warm-ups (LinearLR, ExpWarmupLR) never leave their
            # start factor when they last a single iteration
            sched['end'] = min(2, new_total)
        if 'milestones' in sched:
            sched['milestones'] = [scaled(m) for m in sched['milestones']]
        out.append(sched)
    return out


def _scale_agvm_hook(hook: dict, ratio: float) -> dict:
    """``AGVMHook``'s offsets from the warm-up (optimizer steps) at the same
    fraction of a run of ``ratio`` times the recipe's steps."""
    if hook.get('type') != 'AGVMHook':
        return hook
    hook = dict(hook)
    if hook.get('start_offset'):
        hook['start_offset'] = int(round(hook['start_offset'] * ratio))
    if hook.get('clip_window') is not None:
        hook['clip_window'] = tuple(int(round(v * ratio))
                                    for v in hook['clip_window'])
    return hook


def local_optim_wrapper(optim: str, lr: float, accumulation: int,
                        recipe: LocalRecipe, agvm: Optional[dict],
                        steps_per_epoch: int) -> dict:
    """``optim_wrapper`` of a local cell (``_delete_=True``): the settings of
    the paper's baseline files (configs/README.md), at ``lr``."""
    no_decay = dict(norm_decay_mult=0., bias_decay_mult=0.)
    sgd = dict(type='SGD', lr=lr, momentum=recipe.momentum,
               weight_decay=recipe.weight_decay)
    adamw = dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.1)
    lamb = dict(type='TimmLAMB', lr=lr, betas=(0.9, 0.999),
                weight_decay=0.01)
    table = {
        'sgd': dict(type='OptimWrapper', optimizer=sgd,
                    clip_grad=recipe.clip_grad),
        'agvm': dict(type='AGVMOptimWrapper', optimizer=sgd,
                     clip_grad=recipe.clip_grad, agvm=agvm or {}),
        'agvm-adamw': dict(type='AGVMOptimWrapper', optimizer=adamw,
                           paramwise_cfg=no_decay, clip_grad=None,
                           agvm=agvm or {}),
        'adamw': dict(type='OptimWrapper', optimizer=adamw,
                      paramwise_cfg=no_decay, clip_grad=None),
        'lars': dict(type='OptimWrapper', optimizer=dict(
            type='TimmLARS', lr=lr, momentum=0.9, weight_decay=1e-4,
            trust_coeff=0.001), paramwise_cfg=no_decay, clip_grad=None),
        'lamb': dict(type='OptimWrapper', optimizer=lamb,
                     paramwise_cfg=no_decay,
                     clip_grad=dict(max_norm=1.0, norm_type=2)),
        'pmd-lamb': dict(type='OptimWrapper', optimizer=dict(
            lamb, type='PMDLAMB', decay_period=steps_per_epoch,
            decay_factor=0.5), paramwise_cfg=no_decay,
            clip_grad=dict(max_norm=1.0, norm_type=2)),
    }
    wrapper = dict(_delete_=True, **table[optim])
    wrapper['accumulative_counts'] = accumulation
    return wrapper


def data_size(data_root: str, cwd: str = '.') -> Optional[int]:
    """Training images of the shapes data (its meta.json), None if absent."""
    meta = osp.join(cwd, data_root, 'meta.json')
    if not osp.exists(meta):
        return None
    with open(meta) as f:
        return int(json.load(f)['num_images']['train'])


def plan_local(families: Sequence[str], batches: Sequence[int],
               optims: Sequence[str], work_root: str = 'work_dirs/reproduce',
               batch_per_proc: Optional[int] = None,
               epochs: Optional[float] = None, lr_scaling: str = 'sqrt',
               base_lrs: Optional[Dict[str, object]] = None,
               num_train: Optional[int] = None, cwd: str = '.',
               divergence_hook: bool = True,
               max_loss: Optional[float] = None,
               train_args: Sequence[str] = (),
               shapes_root: Optional[str] = None) -> List[Cell]:
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
    :func:`prepare_cell`).
    """
    shapes_root = shapes_root or osp.join(ROOT, 'configs', 'shapes')
    base_lrs = dict(base_lrs or {})
    recipes: Dict[str, object] = {}
    cells = []
    for family in families:
        fam = FAMILIES[family]
        for optim in optims:
            kind = 'agvm' if optim.startswith('agvm') else 'sgd'
            path = osp.join(shapes_root, f'{fam.shapes}_{kind}.py')
            for batch in batches:
                cell = Cell(family, optim, batch,
                            cell_work_dir(work_root, family, optim, batch),
                            local=True)
                cells.append(cell)
                if not osp.exists(path):
                    cell.reason = (f'no shapes config '
                                   f'{osp.relpath(path, ROOT)}')
                    continue
                if path not in recipes:
                    try:
                        recipes[path] = read_recipe(path, num_train)
                    except Exception as error:  # report, go on
                        recipes[path] = f'{type(error).__name__}: {error}'
                recipe = recipes[path]
                if isinstance(recipe, str):
                    cell.reason = f'cannot read {osp.basename(path)}: ' \
                        + recipe
                    continue
                cell.source_config = osp.relpath(path, ROOT)
                _plan_local_cell(cell, path, recipe, batch_per_proc, epochs,
                                 lr_scaling, base_lrs, num_train, cwd,
                                 divergence_hook, max_loss, train_args)
    return cells


def _plan_local_cell(cell: Cell, path: str, recipe: LocalRecipe,
                     batch_per_proc, epochs, lr_scaling, base_lrs,
                     num_train, cwd, divergence_hook, max_loss,
                     train_args) -> None:
    optim, batch = cell.optim, cell.batch
    bpp = batch_per_proc or recipe.batch_per_proc
    if batch % bpp:
        cell.reason = (f'batch {batch} is not a multiple of {bpp} images '
                       'per process (--batch-per-proc)')
        return
    accumulation = batch // bpp
    if optim.startswith('agvm') and (accumulation < 2 or accumulation % 2):
        cell.reason = (f'AGVM on one process needs an even accumulation '
                       f'>= 2; batch {batch} = {bpp} x {accumulation}')
        return
    size = num_train or data_size(recipe.data_root, cwd)
    if not size:
        cell.reason = f'no shapes data at {recipe.data_root} (meta.json)'
        return
    base_batch = recipe.batch
    base_epochs = recipe.total_iters * recipe.batch_per_proc / size
    run_epochs = epochs if epochs is not None else base_epochs
    steps = max(1, int(round(run_epochs * size / batch)))
    total = steps * accumulation
    base_lr = (1e-4 * math.sqrt(base_batch / 16)
               if optim in ADAM_FAMILY else recipe.lr)
    base_lr = parse_base_lr(base_lrs.get(optim, base_lr), base_lr)
    lr = scale_lr(base_lr, batch, base_batch, lr_scaling)
    agvm = None
    if optim.startswith('agvm'):
        agvm = dict(recipe.agvm or {})
        base_steps = recipe.total_iters / recipe.accumulation
        for key in ('start_iter', 'stop_iter'):
            if agvm.get(key) is not None:
                agvm[key] = int(round(agvm[key] * steps / base_steps))
        if agvm.get('clip_grad_window') is not None:
            agvm['clip_grad_window'] = tuple(
                int(round(v * steps / base_steps))
                for v in agvm['clip_grad_window'])
    wrapper = local_optim_wrapper(optim, lr, accumulation, recipe, agvm,
                                  math.ceil(size / batch))
    schedulers = scale_schedulers(recipe.schedulers, recipe.total_iters,
                                  total)
    hooks = [_scale_agvm_hook(h, steps * recipe.accumulation
                              / recipe.total_iters) for h in recipe.hooks
             if optim.startswith('agvm') or h.get('type') != 'AGVMHook']
    if optim.startswith('agvm') and not any(
            h.get('type') == 'AGVMHook' for h in hooks):
        hooks.append(dict(type='AGVMHook'))
    if divergence_hook:
        hooks.append(dict(type='DivergenceHook', max_loss=max_loss))
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
            checkpoint=dict(_delete_=True, type='CheckpointHook',
                            by_epoch=False, interval=total,
                            max_keep_ckpts=1))),
        ('log_processor', dict(by_epoch=False)),
        ('auto_scale_lr', dict(enable=False, base_batch_size=batch)),
    ]
    warmup = next((s.get('end') for s in schedulers
                   if s.get('begin', 0) == 0 and s.get('end', total) < total),
                  None)
    cell.info = dict(batch_per_proc=bpp, accumulation=accumulation,
                     iters=total, steps=steps, lr=lr, epochs=run_epochs,
                     warmup_iters=warmup, data_size=size)
    header = (f'Written by tools/reproduce.py --local: {cell.name}.\n'
              f'{cell.source_config} at global batch {batch} = 1 process x '
              f'{bpp} x {accumulation},\n{run_epochs:g} epochs of {size} '
              f'images = {steps} optimizer steps, lr {lr:.6g} '
              f'({lr_scaling} scaling from {base_lr:g} at {base_batch}).')
    cell.config_text = _render_config(osp.abspath(path), header, items)
    cell.config = osp.join(cell.work_dir, CONFIG_SUBDIR,
                           f'{cell.family}_{optim}_b{batch}_shapes.py')
    cell.argv = [sys.executable, osp.join(ROOT, 'tools', 'train.py'),
                 cell.config, '--work-dir', cell.work_dir] + list(train_args)


# --------------------------------------------------------------------------
# reading results back
@dataclass
class CellResult:
    status: str  # 'done', 'diverged', 'failed', 'running', 'not run',
    # 'stale' (ran with other settings)
    values: Dict[str, float] = field(default_factory=dict)  # log units
    source: Optional[str] = None  # file the values were read from
    reason: Optional[str] = None


def _json_records(path: str) -> List[dict]:
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
    return records


_NUMBER = r'(-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))'


def read_metrics(work_dir: str, keys: Sequence[str]
                 ) -> Tuple[Dict[str, float], Optional[str]]:
    """The last evaluated value of each key in the run's logs: mmengine's
    json log ``<ts>/vis_data/<ts>.json`` (or ``scalars.json``), else the text
    log ``<ts>/<ts>.log``; the newest timestamp dir that has them wins.
    Returns ``(values, file)``, ``({}, None)`` if none is found."""
    for run in sorted(glob.glob(osp.join(work_dir, '*/')), reverse=True):
        stamp = osp.basename(osp.dirname(run))
        candidates = [osp.join(run, 'vis_data', f'{stamp}.json'),
                      osp.join(run, 'vis_data', 'scalars.json')]
        for path in candidates:
            if not osp.exists(path):
                continue
            values = {}
            for record in _json_records(path):
                for key in keys:
                    if key in record:
                        values[key] = float(record[key])
            if values:
                return values, path
        path = osp.join(run, f'{stamp}.log')
        if osp.exists(path):
            with open(path, errors='replace') as f:
                text = f.read()
            values = {}
            for key in keys:
                found = re.findall(re.escape(key) + r':\s*' + _NUMBER, text)
                if found:
                    values[key] = float(found[-1])
            if values:
                return values, path
    return {}, None


def _logged_error(work_dir: str) -> str:
    """The last error line mmengine logged into the cell's output."""
    path = osp.join(work_dir, TRAIN_LOG)
    if not osp.exists(path):
        return ''
    with open(path, errors='replace') as f:
        errors = [line.strip() for line in f if ' - ERROR - ' in line]
    if not errors:
        return ''
    message = errors[-1].split(' - ERROR - ', 1)[1].rsplit(' - ', 1)[-1]
    return f' (logged: {message[:160]})'


NO_DETECTIONS = 'The testing results of the whole dataset is empty'


def _logged_no_detections(work_dir: str) -> bool:
    """Whether mmdet's CocoMetric found no detections at all in the run."""
    path = osp.join(work_dir, TRAIN_LOG)
    if not osp.exists(path):
        return False
    with open(path, errors='replace') as f:
        return any(NO_DETECTIONS in line for line in f)


def read_state(work_dir: str) -> Optional[dict]:
    path = osp.join(work_dir, STATE_FILE)
    if not osp.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_state(work_dir: str, **state) -> None:
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, STATE_FILE)
    with open(path + '.tmp', 'w') as f:
        json.dump(state, f, indent=1)
    os.replace(path + '.tmp', path)


def read_cell_result(cell: Cell) -> CellResult:
    """What a cell's work dir says: its divergence marker, else its final
    metrics (only after the tool saw the training exit normally), else why
    there is no number."""
    metric_keys = [m.key for m in family_metrics(cell.family)]
    eval_keys = [m.key for m in FAMILIES[cell.family].metrics]
    state = read_state(cell.work_dir)
    if state and not cell.reason and state.get('fingerprint') not in (
            None, cell.fingerprint()):
        return CellResult('stale', reason='ran with other settings than '
                          'this grid asks for (rerun to replace it)')
    marker = osp.join(cell.work_dir, DIVERGED_MARKER)
    if osp.exists(marker):
        with open(marker) as f:
            info = json.load(f)
        return CellResult('diverged', source=marker, reason=(
            f'diverged at iteration {info.get("iter")} '
            f'({info.get("reason")}, loss {info.get("loss")})'))
    if cell.reason:
        return CellResult('not run', reason=cell.reason)
    if state is None:
        return CellResult('not run', reason='not run')
    if state.get('status') == 'done':
        values, source = read_metrics(cell.work_dir, metric_keys)
        evaluated = any(k in values for k in eval_keys)
        coco_keys = [k for k in eval_keys if k.startswith('coco/')]
        if not evaluated and coco_keys and _logged_no_detections(
                cell.work_dir):
            # mmdet's CocoMetric logs an error and returns no metric when a
            # model predicts nothing at all: that is an mAP of 0
            values.update((k, 0.0) for k in coco_keys)
            return CellResult('done', values,
                              source or osp.join(cell.work_dir, TRAIN_LOG),
                              reason='no detections on the whole val set')
        if not evaluated:
            return CellResult('failed', values, reason='training ended but '
                              f'no final metric {eval_keys} in its logs' +
                              _logged_error(cell.work_dir))
        return CellResult('done', values, source)
    if state.get('status') == 'running':
        return CellResult('running', reason='interrupted or still running')
    return CellResult('failed', reason=state.get('reason') or 'failed')


# --------------------------------------------------------------------------
# running
def _echo(line: str) -> None:
    print(line, flush=True)


def _fmt_time(seconds: Optional[float]) -> str:
    if seconds is None:
        return '?'
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def prepare_cell(cell: Cell) -> None:
    """Write the cell's generated config, if any."""
    if cell.config_text is None:
        return
    os.makedirs(osp.dirname(cell.config), exist_ok=True)
    with open(cell.config, 'w') as f:
        f.write(cell.config_text)


def _error_reason(log_lines: Sequence[str], returncode: int,
                  log_path: str) -> str:
    for line in reversed(log_lines):
        line = line.strip()
        if re.match(r'^[\w.]*(Error|Exception)\b', line):
            return f'exit code {returncode}: {line[:200]} (log: {log_path})'
    return f'exit code {returncode} (log: {log_path})'


# Children of run_cell still running: killed together when the grid is
# interrupted (Ctrl-C reaches the main thread, not the job threads).
_LIVE: Dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def run_cell(cell: Cell, verbose: bool = False, timeout: Optional[float]
             = None, cwd: str = '.', echo: Callable[[str], None] = None,
             extra_env: Optional[Dict[str, str]] = None) -> CellResult:
    """Train one cell as a subprocess (its output into
    ``<work_dir>/reproduce_train.log``, streamed with ``verbose``) and read
    its result back. ``extra_env``: variables for this run only (the job
    slot's threads or GPU, see :func:`run_grid`)."""
    echo = echo or _echo
    prepare_cell(cell)
    marker = osp.join(cell.work_dir, DIVERGED_MARKER)
    if osp.exists(marker):
        os.remove(marker)
    argv = list(cell.argv)
    if osp.exists(osp.join(cell.work_dir, 'last_checkpoint')) and \
            '--resume' not in argv:
        argv.append('--resume')  # continue an interrupted cell
    started = time.time()

    def state(**fields) -> None:
        write_state(cell.work_dir, fingerprint=cell.fingerprint(),
                    command=cell.command_line(), info=cell.info,
                    started=started, **fields)

    state(status='running', config=cell.config,
          source_config=cell.source_config)
    env = dict(os.environ, **cell.env, **(extra_env or {}))
    env['PYTHONPATH'] = ROOT + (os.pathsep + env['PYTHONPATH']
                                if env.get('PYTHONPATH') else '')
    env['PYTHONUNBUFFERED'] = '1'
    log_path = osp.join(cell.work_dir, TRAIN_LOG)
    tail: List[str] = []
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                errors='replace')
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc

        def pump() -> None:
            for line in proc.stdout:
                log.write(line)
                tail.append(line)
                del tail[:-200]
                if verbose:
                    echo(f'    {cell.name} | ' + line.rstrip('\n'))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            state(status='failed', reason=f'timed out after {timeout:g} s '
                  f'(log: {log_path})', seconds=time.time() - started)
            return read_cell_result(cell)
        except BaseException:  # Ctrl-C: stop the child, keep the state
            proc.kill()
            proc.wait()
            state(status='failed', reason='interrupted')
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(proc.pid, None)
        reader.join(30)
    finished = time.time()
    if _STOPPING.is_set() and returncode != 0:
        state(status='failed', reason='interrupted')
    elif returncode == 0:
        state(status='done', finished=finished, seconds=finished - started)
    else:
        state(status='failed', returncode=returncode,
              reason=_error_reason(tail, returncode, log_path),
              finished=finished, seconds=finished - started)
    return read_cell_result(cell)


def is_finished(cell: Cell) -> bool:
    """A cell with final metrics or a divergence marker: skipped."""
    return read_cell_result(cell).status in ('done', 'diverged')


def _describe(cell: Cell, result: CellResult) -> str:
    if result.status == 'done':
        return ', '.join(f'{m.label} {format_value(result, m)}'
                         for m in family_metrics(cell.family)
                         if m.key in result.values)
    if result.status == 'diverged':
        return f'NaN ({result.reason})'
    return f'{result.status}: {result.reason}'


def slot_env(slot: int, jobs: int, cell: Cell,
             gpus: Optional[int] = None) -> Dict[str, str]:
    """Environment of job slot ``slot`` when ``jobs`` cells run at once:
    the CPU threads split between the slots (unless ``OMP_NUM_THREADS`` is
    set) and, for local cells on a machine with several GPUs, one GPU per
    slot (unless ``CUDA_VISIBLE_DEVICES`` is set). Cluster cells pick their
    own GPUs."""
    env: Dict[str, str] = {}
    if jobs <= 1:
        return env
    if 'OMP_NUM_THREADS' not in os.environ:
        env['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // jobs))
    if cell.local and gpus and gpus > 1 and \
            'CUDA_VISIBLE_DEVICES' not in os.environ:
        env['CUDA_VISIBLE_DEVICES'] = str(slot % gpus)
    return env


def _gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except Exception:  # no torch here: cells run elsewhere
        return 0


def run_grid(cells: Sequence[Cell], dry_run: bool = False,
             force: bool = False, verbose: bool = False,
             timeout: Optional[float] = None, cwd: str = '.',
             echo: Callable[[str], None] = None, jobs: int = 1) -> None:
    """Run every runnable cell, ``jobs`` at a time (in grid order; each
    slot gets its share of the CPU threads and, on several GPUs, its own
    GPU: :func:`slot_env`), with one progress line per cell start and end
    (elapsed time and ETA)."""
    echo = echo or _echo
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, not {jobs}')
    todo = [c for c in cells if not c.reason]
    for cell in cells:
        if cell.reason:
            echo(f'[reproduce] {cell.name}: cannot run: {cell.reason}')
    if dry_run:
        for cell in todo:
            prepare_cell(cell)
            echo(f'[dry-run] {cell.name}: {cell.source_config}' +
                 (f' (G={cell.info["G"]})' if 'G' in cell.info else '') +
                 f' -> {cell.work_dir}')
            echo(cell.command_line())
        return
    total = len(todo)
    pending = []
    for index, cell in enumerate(todo, 1):
        tag = f'[reproduce {index}/{total}] {cell.name}'
        stale = read_cell_result(cell).status == 'stale'
        if (force or stale) and osp.isdir(cell.work_dir) and (
                read_state(cell.work_dir) or osp.exists(
                    osp.join(cell.work_dir, DIVERGED_MARKER))):
            backup = cell.work_dir.rstrip('/') + time.strftime(
                '.old-%Y%m%d_%H%M%S')
            shutil.move(cell.work_dir, backup)
            why = 'settings changed' if stale else '--force'
            echo(f'{tag}: {why}, previous run moved to {backup}')
        elif is_finished(cell):
            echo(f'{tag}: already finished, skipped ('
                 f'{_describe(cell, read_cell_result(cell))})')
            continue
        pending.append((tag, cell))
    if not pending:
        return
    jobs = min(jobs, len(pending))
    gpus = _gpu_count() if jobs > 1 and any(c.local for _, c in pending) \
        else 0
    start = time.time()
    durations: List[float] = []
    slots = list(range(jobs))
    lock = threading.Lock()

    def eta() -> str:
        left = len(pending) - len(durations)
        return _fmt_time(sum(durations) / len(durations) * left / jobs
                         if durations else None)

    def run_one(tag: str, cell: Cell) -> None:
        with lock:
            slot = slots.pop(0)
            env = slot_env(slot, jobs, cell, gpus)
            details = ', '.join(
                f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                for k, v in cell.info.items()
                if k in ('G', 'accumulation', 'iters', 'lr'))
            where = ''.join(f', {k}={v}' for k, v in env.items())
            echo(f'{tag}: start ({details}{where}) | elapsed '
                 f'{_fmt_time(time.time() - start)} | ETA {eta()}')
        t0 = time.time()
        try:
            result = run_cell(cell, verbose, timeout, cwd, echo, env)
        finally:
            with lock:
                slots.append(slot)
        with lock:
            durations.append(time.time() - t0)
            echo(f'{tag}: {_describe(cell, result)} in '
                 f'{_fmt_time(durations[-1])} | elapsed '
                 f'{_fmt_time(time.time() - start)} | ETA {eta()}')

    _STOPPING.clear()
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = []
    try:
        futures = [pool.submit(run_one, tag, cell) for tag, cell in pending]
        for future in futures:
            future.result()
    except BaseException:  # Ctrl-C or a job's error: stop every child
        _STOPPING.set()
        for future in futures:
            future.cancel()
        with _LIVE_LOCK:
            for proc in _LIVE.values():
                proc.kill()
        raise
    finally:
        pool.shutdown(wait=True)


# --------------------------------------------------------------------------
# report
def format_value(result: CellResult, metric: Metric) -> str:
    """The table's text of one metric of one cell: the logged value in the
    paper's units (percent, one decimal for COCO mAP, two otherwise), "NaN"
    for a diverged run, "—" when there is none."""
    if result.status == 'diverged':
        return 'NaN'
    if result.status != 'done' or metric.key not in result.values:
        return DASH
    value = result.values[metric.key] * metric.scale
    if not math.isfinite(value):
        return 'NaN'
    return f'{value:.1f}' if metric.scale == 100.0 else f'{value:.2f}'


def describe_settings(cell: Cell) -> str:
    """One line with what a local cell trained: batch layout, steps, epochs,
    lr and warm-up ('' for cells without them, e.g. cluster cells)."""
    info = cell.info
    if 'steps' not in info:
        return ''
    text = (f"1 x {info['batch_per_proc']} x {info['accumulation']}, "
            f"{info['steps']} steps ({info['epochs']:g} epochs of "
            f"{info['data_size']} images), lr {info['lr']:.4g}")
    if info.get('warmup_iters'):
        text += (f", warm-up {info['warmup_iters']} iterations ("
                 f"{math.ceil(info['warmup_iters'] / info['accumulation'])} "
                 'steps)')
    return text


def _ordered(values: Sequence) -> List:
    return list(dict.fromkeys(values))


def build_report(cells: Sequence[Cell]) -> Tuple[str, dict]:
    """Markdown (one table per family and metric: rows = optimizers,
    columns = batch sizes) and a JSON-able dict of every cell."""
    results = {id(c): read_cell_result(c) for c in cells}
    lines = ['# AGVM reproduction', '',
             'Numbers read from each cell\'s work dir (mmengine logs). '
             '"NaN": the run diverged and was stopped; '
             f'"{DASH}": no result (reason below the table).', '']
    data = {'cells': []}
    for family in _ordered(c.family for c in cells):
        fam = FAMILIES[family]
        fcells = [c for c in cells if c.family == family]
        batches = _ordered(c.batch for c in fcells)
        optims = _ordered(c.optim for c in fcells)
        by_key = {(c.optim, c.batch): c for c in fcells}
        for metric in family_metrics(family):
            lines += [f'## {fam.title}: {metric.label}', '',
                      '| optimizer | ' + ' | '.join(
                          f'b{b}' for b in batches) + ' |',
                      '|---|' + '---|' * len(batches)]
            for optim in optims:
                row = [format_value(results[id(by_key[optim, b])], metric)
                       if (optim, b) in by_key else DASH for b in batches]
                lines.append(f'| {OPTIM_TITLES[optim]} | ' +
                             ' | '.join(row) + ' |')
            lines.append('')
        notes, zeros = [], []
        for cell in fcells:
            result = results[id(cell)]
            if result.status != 'done':
                notes.append(f'* {cell.optim} b{cell.batch}: '
                             f'{"NaN" if result.status == "diverged" else DASH}'
                             f' {result.reason}')
            elif result.reason:
                zeros.append(f'* {cell.optim} b{cell.batch}: '
                             f'{result.reason}')
        if notes:
            lines += ['Cells without a number:', ''] + notes + ['']
        if zeros:
            lines += ['Scored 0 (COCO metrics of an empty result):', ''] + \
                zeros + ['']
        settings = [f'* {c.optim} b{c.batch}: {describe_settings(c)}'
                    for c in fcells if describe_settings(c)]
        if settings:
            lines += ['Settings:', ''] + settings + ['']
        sources = [f'* {c.optim} b{c.batch}: `{results[id(c)].source}`'
                   for c in fcells if results[id(c)].status == 'done']
        if sources:
            lines += ['Read from:', ''] + sources + ['']
    for cell in cells:
        result = results[id(cell)]
        data['cells'].append(dict(
            family=cell.family, optim=cell.optim, batch=cell.batch,
            work_dir=cell.work_dir, config=cell.config,
            source_config=cell.source_config, status=result.status,
            values=result.values, source=result.source,
            reason=result.reason, info=cell.info,
            table={m.label: format_value(result, m)
                   for m in family_metrics(cell.family)}))
    return '\n'.join(lines), data


def plot_report(cells: Sequence[Cell], out_png: str) -> str:
    """Main metric vs batch size (log2 axis), one line per optimizer, one
    panel per family; a diverged cell is an ``x`` on the lower edge."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    families = _ordered(c.family for c in cells)
    fig, axes = plt.subplots(1, len(families), squeeze=False,
                             figsize=(4.6 * len(families), 3.8))
    for ax, family in zip(axes[0], families):
        fam = FAMILIES[family]
        metric = fam.metrics[0]
        fcells = [c for c in cells if c.family == family]
        for optim in _ordered(c.optim for c in fcells):
            points, diverged = [], []
            for cell in sorted((c for c in fcells if c.optim == optim),
                               key=lambda c: c.batch):
                result = read_cell_result(cell)
                text = format_value(result, metric)
                if text == 'NaN':
                    diverged.append(cell.batch)
                elif text != DASH:
                    points.append((cell.batch, float(text)))
            line = None
            if points:
                line, = ax.plot(*zip(*points), marker='o',
                                label=OPTIM_TITLES[optim])
            if diverged:
                ax.plot(diverged, [0.0] * len(diverged), linestyle='none',
                        marker='x', markersize=9,
                        color=line.get_color() if line else None,
                        transform=ax.get_xaxis_transform(),
                        label=None if line else
                        f'{OPTIM_TITLES[optim]} (diverged)', clip_on=False)
        batches = sorted({c.batch for c in fcells})
        ax.set_xscale('log', base=2)
        ax.set_xticks(batches)
        ax.set_xticklabels([str(b) for b in batches])
        ax.set(title=fam.title, xlabel='global batch size',
               ylabel=metric.label + ' (%)')
        if not ax.lines:
            ax.text(0.5, 0.5, 'no results', transform=ax.transAxes,
                    ha='center', va='center', color='gray')
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle('x: diverged (NaN)', fontsize=8, y=0.02, x=0.98,
                 ha='right')
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def write_report(cells: Sequence[Cell], out_dir: str) -> Dict[str, str]:
    """``results.md``, ``results.json`` and ``results.png`` in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    text, data = build_report(cells)
    paths = dict(markdown=osp.join(out_dir, 'results.md'),
                 json=osp.join(out_dir, 'results.json'),
                 png=osp.join(out_dir, 'results.png'))
    with open(paths['markdown'], 'w') as f:
        f.write(text)
    with open(paths['json'], 'w') as f:
        json.dump(data, f, indent=1)
    plot_report(cells, paths['png'])
    return paths
