"""Gradient-variance analysis: the paper's Figure 1 for any mmdet / mmseg
config.

The same config (same seed, same learning rate unless ``lr_scaling`` says
otherwise) is trained for a few optimizer steps at several global batch sizes
("cells"); at every measurement step each module's ``Phi_m = 1 - cos(g_A,
g_B)`` is recorded by :class:`GradientVarianceHook` into a CSV in the cell's
work dir. The cells are then collected into one CSV, summarised and plotted
(one panel per batch size, one line per module).

A cell's global batch is ``nproc x batch_per_proc x accumulative_counts``;
with one process the accumulation must be even and >= 2 (AGVM's two gradient
estimates are the two halves of the accumulated micro-batches).

Without ``agvm=True`` the wrapper only measures (``agvm.modulate=False``):
the training is that of the configured optimizer. The logged ``scale`` is
the factor AGVM *would* use.

Examples:
    >>> from agvm_mm.analysis import run_analysis
    >>> rows = run_analysis('configs/shapes/retinanet_tiny_shapes_sgd.py',
    ...                     batches=[8, 32], steps=20, batch_per_proc=4,
    ...                     work_dir='work_dirs/gv')  # doctest: +SKIP
"""
import copy
import csv
import math
import os
import os.path as osp
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

from .hooks.gradient_variance_hook import COLUMNS, CSV_NAME

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
WRAPPER_TYPES = {
    'OptimWrapper': 'AGVMOptimWrapper',
    'AGVMOptimWrapper': 'AGVMOptimWrapper',
    'AmpOptimWrapper': 'AGVMAmpOptimWrapper',
    'AGVMAmpOptimWrapper': 'AGVMAmpOptimWrapper',
}
# by_epoch default of scheduler types that count iterations by default
ITER_SCHEDULERS = ('ExpWarmupLR', 'ExpWarmupParamScheduler')


# -------------------------------------------------------------- the cells
@dataclass(frozen=True)
class Cell:
    """One training run of the analysis."""
    batch: int
    nproc: int
    batch_per_proc: int
    accumulative_counts: int


def plan_cells(batches: Sequence[int], nproc: int,
               batch_per_proc: int) -> List[Cell]:
    """Realise each global batch as ``nproc x batch_per_proc x
    accumulative_counts``; raises ``ValueError`` when one cannot be."""
    if nproc < 1 or batch_per_proc < 1:
        raise ValueError('nproc and batch_per_proc must be >= 1.')
    cells = []
    per_step = nproc * batch_per_proc
    for batch in batches:
        counts, rest = divmod(int(batch), per_step)
        if rest or counts < 1:
            raise ValueError(
                f'batch {batch} is not a multiple of nproc x batch_per_proc '
                f'= {nproc} x {batch_per_proc} = {per_step}; change '
                '--batches, --nproc or --batch-per-proc.')
        if nproc == 1 and (counts < 2 or counts % 2):
            raise ValueError(
                f'batch {batch} with 1 process x {batch_per_proc} images '
                f'needs accumulative_counts={counts}, but AGVM needs an even '
                'number >= 2 with one process (its two gradient estimates '
                'are the two halves of the micro-batches). Lower '
                '--batch-per-proc or use --nproc >= 2.')
        cells.append(Cell(int(batch), nproc, batch_per_proc, counts))
    return cells


def lr_factor(batch: int, base_batch: Optional[int],
              lr_scaling: str = 'none') -> float:
    """Factor on the configured lr: ``(batch / base_batch) ** p`` with p = 1
    (linear), 1/2 (sqrt) or 0 (none)."""
    power = {'none': 0.0, 'sqrt': 0.5, 'linear': 1.0}[lr_scaling]
    if power == 0.0:
        return 1.0
    if not base_batch:
        raise ValueError(f'lr_scaling={lr_scaling!r} needs base_batch.')
    return (batch / base_batch)**power


def _scale_schedule(node, factor: float) -> None:
    """Multiply the iteration-based windows (begin, end, milestones) of the
    scheduler configs in ``node`` (a dict, a list, or a dict of lists) by
    ``factor``, in place."""
    if isinstance(node, (list, tuple)):
        for item in node:
            _scale_schedule(item, factor)
        return
    if not isinstance(node, dict):
        return
    if 'type' not in node:  # several optimizers: a dict of lists
        for item in node.values():
            _scale_schedule(item, factor)
        return
    by_epoch = node.get('by_epoch', node['type'] not in ITER_SCHEDULERS)
    if by_epoch or factor == 1:
        return
    for key in ('begin', 'end'):
        if key in node and node[key] < 1e9:
            node[key] = int(round(node[key] * factor))
    if 'milestones' in node:
        node['milestones'] = [int(round(m * factor))
                              for m in node['milestones']]


def make_cell_config(cfg, cell: Cell, steps: int, interval: int = 1,
                     agvm: bool = False, seed: Optional[int] = None,
                     lr_scaling: str = 'none',
                     base_batch: Optional[int] = None,
                     schedule: str = 'steps'):
    """A copy of ``cfg`` (an mmengine ``Config``) that trains ``cell`` for
    ``steps`` optimizer steps and records Phi at every ``interval``-th step
    from step 0.

    ``schedule``: ``'steps'`` rescales iteration-based schedulers (warm-up)
    so that they span the same optimizer steps as in the config whatever the
    accumulation; ``'iters'`` keeps them as written (in runner iterations,
    i.e. micro-batches); ``'constant'`` drops them (constant lr).
    """
    cfg = copy.deepcopy(cfg)
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind not in WRAPPER_TYPES:
        raise ValueError(
            f'optim_wrapper.type={kind!r}: the gradient-variance analysis '
            f'replaces the wrapper by its AGVM twin and knows '
            f'{sorted(WRAPPER_TYPES)} only.')
    counts_cfg = int(wrapper.get('accumulative_counts', 1))
    wrapper.type = WRAPPER_TYPES[kind]
    wrapper.accumulative_counts = cell.accumulative_counts
    settings = dict(wrapper.get('agvm') or {})
    settings.update(interval=int(interval), start_iter=0, stop_iter=None,
                    modulate=bool(agvm))
    wrapper.agvm = settings
    factor = lr_factor(cell.batch, base_batch, lr_scaling)
    if factor != 1.0:
        wrapper.optimizer.lr = wrapper.optimizer.lr * factor

    cfg.train_dataloader.batch_size = cell.batch_per_proc
    max_iters = steps * cell.accumulative_counts
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=max_iters + 1)
    for key in ('val_cfg', 'val_dataloader', 'val_evaluator'):
        cfg[key] = None
    cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr') or {}, enable=False)
    cfg.resume = False

    if schedule == 'constant':
        cfg.param_scheduler = None
    elif schedule == 'steps':
        if cfg.get('param_scheduler'):
            _scale_schedule(cfg.param_scheduler,
                            cell.accumulative_counts / counts_cfg)
    elif schedule != 'iters':
        raise ValueError(f"schedule={schedule!r}: use 'steps', 'iters' or "
                         "'constant'.")

    hooks = dict(cfg.get('default_hooks') or {})
    hooks['checkpoint'] = None
    logger = dict(hooks.get('logger') or dict(type='LoggerHook'))
    logger['interval'] = cell.accumulative_counts  # once per optimizer step
    hooks['logger'] = logger
    cfg.default_hooks = hooks
    cfg.log_processor = dict(cfg.get('log_processor') or {}, by_epoch=False,
                             window_size=cell.accumulative_counts)
    randomness = dict(cfg.get('randomness') or {})
    if seed is not None or 'seed' not in randomness:
        randomness['seed'] = 0 if seed is None else seed
    cfg.randomness = randomness

    custom = [h for h in (cfg.get('custom_hooks') or [])
              if h.get('type') not in ('AGVMHook', 'GradientVarianceHook')]
    custom += [dict(type='AGVMHook', start_after_warmup=False),
               dict(type='GradientVarianceHook', batch=cell.batch)]
    cfg.custom_hooks = custom
    imports = dict(cfg.get('custom_imports') or {})
    names = list(imports.get('imports') or [])
    for name in ('agvm_mm', ):
        if name not in names:
            names.append(name)
    cfg.custom_imports = dict(imports, imports=names,
                              allow_failed_imports=False)
    return cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_cell(config_path: str, cell: Cell, work_dir: str,
             log=print) -> str:
    """Train one cell with ``tools/train.py`` (one process) or
    ``tools/dist_train.sh``; returns the cell's CSV path."""
    os.makedirs(work_dir, exist_ok=True)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    if cell.nproc == 1:
        args = [sys.executable, osp.join(ROOT, 'tools', 'train.py'),
                config_path]
    else:
        env['PYTHON'] = sys.executable
        env.setdefault('PORT', str(_free_port()))
        args = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'),
                config_path, str(cell.nproc)]
    args += ['--work-dir', work_dir]
    log_path = osp.join(work_dir, 'train.log')
    start = time.time()
    with open(log_path, 'w') as out:
        proc = subprocess.run(args, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    if proc.returncode:
        with open(log_path) as f:
            tail = f.read()[-4000:]
        raise RuntimeError(f'batch {cell.batch}: training failed '
                           f'(exit {proc.returncode}); {log_path} ends '
                           f'with:\n{tail}')
    log(f'batch {cell.batch}: {cell.nproc} process(es) x '
        f'{cell.batch_per_proc} x {cell.accumulative_counts} accumulated, '
        f'{time.time() - start:.0f} s, log {log_path}')
    return osp.join(work_dir, CSV_NAME)


# ------------------------------------------------------- collect and show
def read_rows(path: str) -> List[dict]:
    """Rows of a gradient-variance CSV, typed."""
    with open(path, newline='') as f:
        return [dict(batch=int(r['batch']), step=int(r['step']),
                     iteration=int(r['iteration']), module=r['module'],
                     phi=float(r['phi']), scale=float(r['scale']))
                for r in csv.DictReader(f)]


def write_csv(rows: Iterable[dict], path: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def modules_of(rows: Sequence[dict]) -> List[str]:
    """Module names in the order they were first recorded (model order)."""
    return list(dict.fromkeys(r['module'] for r in rows))


def check_rows(rows: Sequence[dict], batch: int, steps: int,
               interval: int) -> None:
    """Every measurement step ``0, interval, ...`` below ``steps`` has one
    row per module."""
    expected = set(range(0, steps, interval))
    got = defaultdict(set)
    for r in rows:
        got[r['step']].add(r['module'])
    modules = set(modules_of(rows))
    missing = sorted(s for s in expected if got.get(s) != modules)
    if missing or set(got) - expected:
        raise RuntimeError(
            f'batch {batch}: measurements expected at optimizer steps '
            f'{sorted(expected)[:5]}... for modules {sorted(modules)}; '
            f'missing or incomplete at {missing[:10]}, unexpected at '
            f'{sorted(set(got) - expected)[:10]} (non-finite gradients '
            'are skipped: see the cell log).')


def summarize(rows: Sequence[dict], anchor: str = 'backbone') -> str:
    """Mean Phi per module and batch over the last half of each batch's
    measurement steps, with the ratio anchor / module."""
    modules = modules_of(rows)
    anchor = anchor if anchor in modules else modules[0]
    by_batch = defaultdict(list)
    for r in rows:
        by_batch[r['batch']].append(r)
    width = max(12, max(len(m) for m in modules) + 2)
    lines = [f'Mean Phi = 1 - cos(g_A, g_B) over the last half of the '
             f'measurement steps; ({anchor} / module) in brackets',
             'batch  steps  ' + ''.join(m.ljust(width + 9) for m in modules)]
    for batch in sorted(by_batch):
        batch_rows = by_batch[batch]
        steps = sorted({r['step'] for r in batch_rows})
        late = set(steps[len(steps) // 2:])
        means = {}
        for m in modules:
            values = [r['phi'] for r in batch_rows
                      if r['module'] == m and r['step'] in late]
            means[m] = sum(values) / len(values) if values else math.nan
        cells = []
        for m in modules:
            ratio = means[anchor] / means[m] if means[m] else math.inf
            cells.append(f'{means[m]:.4g}'.ljust(width) +
                         f'({ratio:.2f})'.ljust(9))
        lines.append(f'{batch:<7d}{len(late):<7d}' + ''.join(cells))
    return '\n'.join(lines)


def plot_gradient_variance(rows: Sequence[dict], out_png: str,
                           title: str = '', dpi: int = 100,
                           panel_size=(4.0, 3.4),
                           log_y: Optional[bool] = None) -> str:
    """The paper's Figure 1: one panel per batch size (shared y axis), one
    line per module, Phi against the optimizer step. The figure measures
    ``len(batches) * panel_size[0] x panel_size[1]`` inches at ``dpi``.
    ``log_y`` None: log scale when Phi spans more than a factor 20."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not rows:
        raise ValueError('no gradient-variance rows to plot.')
    batches = sorted({r['batch'] for r in rows})
    modules = modules_of(rows)
    positive = [r['phi'] for r in rows if r['phi'] > 0]
    if log_y is None:
        log_y = bool(positive) and max(positive) > 20 * min(positive)
    colors = {m: f'C{i % 10}' for i, m in enumerate(modules)}
    fig, axes = plt.subplots(
        1, len(batches), sharey=True, squeeze=False,
        figsize=(panel_size[0] * len(batches), panel_size[1]))
    for ax, batch in zip(axes[0], batches):
        for m in modules:
            points = sorted((r['step'], r['phi']) for r in rows
                            if r['batch'] == batch and r['module'] == m
                            and (r['phi'] > 0 or not log_y))
            if not points:
                continue
            x, y = zip(*points)
            window = max(1, len(y) // 10)
            if window > 1:  # raw values faint, moving average solid
                ax.plot(x, y, color=colors[m], lw=0.6, alpha=0.3)
                y = [sum(y[max(0, i - window + 1):i + 1]) /
                     len(y[max(0, i - window + 1):i + 1])
                     for i in range(len(y))]
            ax.plot(x, y, color=colors[m], lw=1.5, label=m,
                    marker='o' if len(x) < 12 else None, ms=3)
        ax.set_title(f'batch {batch}', fontsize=10)
        ax.set_xlabel('optimizer step')
        ax.grid(alpha=0.3, which='both' if log_y else 'major')
        if log_y:
            ax.set_yscale('log')
    axes[0][0].set_ylabel(r'$\Phi_m = 1 - \cos(g_A, g_B)$')
    axes[0][-1].legend(fontsize=8, loc='best')
    fig.suptitle(title or 'Gradient variance per module', fontsize=11)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=dpi)
    plt.close(fig)
    return out_png


# ----------------------------------------------------------------- driver
def run_analysis(config: str, batches: Sequence[int], steps: int,
                 nproc: int = 1, batch_per_proc: Optional[int] = None,
                 interval: int = 1, agvm: bool = False,
                 lr_scaling: str = 'none', base_batch: Optional[int] = None,
                 schedule: str = 'steps', seed: Optional[int] = None,
                 work_dir: Optional[str] = None, out_csv: Optional[str] = None,
                 out_png: Optional[str] = None,
                 cfg_options: Optional[dict] = None, log=print) -> List[dict]:
    """Train every batch size, collect the CSVs into ``out_csv``, plot
    ``out_png``, print the summary; returns the rows."""
    from mmengine.config import Config
    import agvm_mm  # noqa: F401  registers the wrapper and hook
    if steps < 1 or interval < 1:
        raise ValueError('steps and interval must be >= 1.')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    name = osp.splitext(osp.basename(config))[0]
    if batch_per_proc is None:
        batch_per_proc = int(cfg.train_dataloader.batch_size)
    if lr_scaling != 'none' and base_batch is None:
        base_batch = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
        if base_batch is None:
            raise ValueError(f'--lr-scaling {lr_scaling} needs --base-batch '
                             '(or auto_scale_lr.base_batch_size in the '
                             'config).')
    cells = plan_cells(batches, nproc, batch_per_proc)
    work_dir = work_dir or osp.join('work_dirs', 'gradient_variance',
                                    name + ('_agvm' if agvm else ''))
    out_csv = out_csv or osp.join(work_dir, CSV_NAME)
    out_png = out_png or osp.splitext(out_csv)[0] + '.png'
    os.makedirs(osp.join(work_dir, 'configs'), exist_ok=True)
    rows: List[dict] = []
    for cell in cells:
        cell_cfg = make_cell_config(cfg, cell, steps, interval, agvm, seed,
                                    lr_scaling, base_batch, schedule)
        path = osp.abspath(osp.join(work_dir, 'configs',
                                    f'{name}_b{cell.batch}.py'))
        cell_cfg.dump(path)
        cell_csv = run_cell(path, cell,
                            osp.abspath(osp.join(work_dir, f'b{cell.batch}')),
                            log)
        cell_rows = read_rows(cell_csv)
        check_rows(cell_rows, cell.batch, steps, interval)
        rows += cell_rows
    write_csv(rows, out_csv)
    mode = 'AGVM' if agvm else 'no modulation'
    lr = ('' if lr_scaling == 'none' else
          f', lr {lr_scaling}-scaled from batch {base_batch}')
    plot_gradient_variance(rows, out_png,
                           title=f'{name}: gradient variance per module '
                           f'({mode}{lr})')
    summary = summarize(rows, (cfg.optim_wrapper.get('agvm') or {}).get(
        'anchor', 'backbone'))
    with open(osp.join(work_dir, 'summary.txt'), 'w') as f:
        f.write(summary + '\n')
    log(summary)
    log(f'CSV: {out_csv}\nfigure: {out_png}')
    return rows
