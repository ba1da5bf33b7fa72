"""Per-module gradient variance at several batch sizes (the AGVM paper's
Figure 1) for any mmdet / mmseg config.

Trains the config for --steps optimizer steps at each --batches global batch
size (same config and seed; lr as configured unless --lr-scaling), records
each module's Phi_m = 1 - cos(g_A, g_B) at every --interval-th step (with
``GradientVarianceHook``), writes a CSV and a figure (one panel per batch
size, one line per module) and prints a summary. Without --agvm nothing is
modulated (``agvm.modulate=False``): the run is the configured optimizer,
AGVM only measures, and the logged ``scale`` is the factor AGVM *would* use.

    python tools/analysis_tools/gradient_variance.py CONFIG \
        --batches 32 256 512 1024 --steps 200 [--nproc 8] \
        [--batch-per-proc 4] [--interval 1] [--agvm] \
        [--lr-scaling none|sqrt|linear --base-batch 32] \
        [--schedule steps|iters|constant] [--seed 0] [--work-dir DIR] \
        [--out FIG.png] [--csv FILE.csv] [--cfg-options k=v ...]
    python tools/analysis_tools/gradient_variance.py --plot-only FILE.csv \
        [--out FIG.png] [--title TEXT]

Global batch = nproc x batch-per-proc x accumulative_counts; with one
process the accumulation must be even and >= 2 (AGVM's two gradient
estimates are then the two halves of the accumulated micro-batches).
"""
import argparse
import copy
import math
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

if __name__ == '__main__':  # a script of tools/analysis_tools/
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import checkout  # noqa: F401  this checkout first on sys.path

from mmengine.config import DictAction  # noqa: E402

from agvm_mm.hooks.agvm_hook import clip_window_around  # noqa: E402
from agvm_mm.hooks.gradient_variance_hook import CSV_NAME  # noqa: E402
from tools.harness.grid import plain  # noqa: E402
from tools.harness.plot import plot_gradient_variance  # noqa: E402
from tools.harness.process import (free_port, run_tool,  # noqa: E402
                                   tool_env, train_command)
from tools.harness.schedules import (INF, is_iteration_based,  # noqa: E402
                                     lr_factor, scale_schedulers,
                                     warmup_end)
from tools.harness.variance import (check_rows, read_rows,  # noqa: E402
                                    summarize, write_csv)

WRAPPER_TYPES = {
    'OptimWrapper': 'AGVMOptimWrapper',
    'AGVMOptimWrapper': 'AGVMOptimWrapper',
    'AmpOptimWrapper': 'AGVMAmpOptimWrapper',
    'AGVMAmpOptimWrapper': 'AGVMAmpOptimWrapper',
}


@dataclass(frozen=True)
class Cell:
    """One training run of the analysis."""
    batch: int
    nproc: int
    batch_per_proc: int
    accumulative_counts: int


@dataclass
class AnalysisOptions:
    """How the batch sizes are trained (see :func:`make_cell_config`).

    Args:
        steps (int): Optimizer steps per batch size.
        nproc (int): Processes per run (gloo without a GPU).
        batch_per_proc (int, optional): Images per process and micro-batch;
            default the config's ``train_dataloader.batch_size``.
        interval (int): Measure every ``interval`` optimizer steps.
        agvm (bool): Train with AGVM's modulation (default: measure only).
        lr_scaling (str): ``'none'``, ``'sqrt'`` or ``'linear'``.
        base_batch (int, optional): Batch of the configured lr; default
            ``auto_scale_lr.base_batch_size``.
        schedule (str): ``'steps'``, ``'iters'`` or ``'constant'``.
        seed (int, optional): Seed of every run; default the config's.
        work_dir (str, optional): Default ``work_dirs/gradient_variance/
            <config name>[_agvm]``.
        out_csv (str, optional): Combined CSV; default in the work dir.
        out_png (str, optional): Figure; default the CSV path with .png.
        cfg_options (dict, optional): Overrides of the config.
    """
    steps: int = 100
    nproc: int = 1
    batch_per_proc: Optional[int] = None
    interval: int = 1
    agvm: bool = False
    lr_scaling: str = 'none'
    base_batch: Optional[int] = None
    schedule: str = 'steps'
    seed: Optional[int] = None
    work_dir: Optional[str] = None
    out_csv: Optional[str] = None
    out_png: Optional[str] = None
    cfg_options: Optional[dict] = None


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


def config_clip_window(cfg, counts: int) -> Optional[Tuple[int, int]]:
    """``agvm.clip_grad_window`` of the config's own run, in optimizer steps:
    as written, or where its ``AGVMHook(clip_window=...)`` places it around
    the end of its iteration-based warm-up (``counts``: its accumulation)."""
    window = (cfg.optim_wrapper.get('agvm') or {}).get('clip_grad_window')
    hook = next((h for h in cfg.get('custom_hooks') or []
                 if h.get('type') == 'AGVMHook'), {})
    if window is not None or hook.get('clip_window') is None:
        return window
    schedulers = [s for s in cfg.get('param_scheduler') or []
                  if is_iteration_based(s)]
    end = warmup_end(schedulers, cfg.train_cfg.get('max_iters', INF))
    if end is None:
        raise ValueError('AGVMHook.clip_window is placed around the end of '
                         'the warm-up, but the config has no iteration-'
                         'based warm-up: set optim_wrapper.agvm.'
                         'clip_grad_window=(begin, end) instead.')
    return clip_window_around(math.ceil(end / counts), hook['clip_window'])


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
    # the clip window of the config's own run, whatever this cell does to
    # the schedule
    window = config_clip_window(cfg, counts_cfg)
    if window is not None:
        settings['clip_grad_window'] = window
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
            cfg.param_scheduler = scale_schedulers(
                plain(cfg.param_scheduler), cell.accumulative_counts,
                counts_cfg)
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
    if 'agvm_mm' not in names:  # registers the wrappers and both hooks
        names.append('agvm_mm')
    cfg.custom_imports = dict(imports, imports=names,
                              allow_failed_imports=False)
    return cfg


def run_cell(config_path: str, cell: Cell, work_dir: str,
             log=print) -> str:
    """Train one cell with ``tools/train.py`` (one process) or
    ``tools/dist_train.sh``; returns the cell's CSV path."""
    os.makedirs(work_dir, exist_ok=True)
    extra = {}
    if cell.nproc > 1:
        extra = dict(PYTHON=sys.executable,
                     PORT=os.environ.get('PORT') or str(free_port()))
    log_path = osp.join(work_dir, 'train.log')
    start = time.time()
    result = run_tool(train_command(config_path, work_dir, cell.nproc),
                      tool_env(extra), log_path=log_path)
    if result.returncode:
        raise RuntimeError(f'batch {cell.batch}: training failed '
                           f'(exit {result.returncode}); {log_path} ends '
                           f'with:\n{result.output[-4000:]}')
    log(f'batch {cell.batch}: {cell.nproc} process(es) x '
        f'{cell.batch_per_proc} x {cell.accumulative_counts} accumulated, '
        f'{time.time() - start:.0f} s, log {log_path}')
    return osp.join(work_dir, CSV_NAME)


def run_analysis(config: str, batches: Sequence[int],
                 options: AnalysisOptions, log=print) -> List[dict]:
    """Train every batch size of ``batches`` as ``options`` says, collect
    the CSVs into one, plot it, print the summary; returns the rows."""
    from mmengine.config import Config
    import agvm_mm  # noqa: F401  registers the wrapper and hooks
    o = options
    if o.steps < 1 or o.interval < 1:
        raise ValueError('steps and interval must be >= 1.')
    cfg = Config.fromfile(config)
    if o.cfg_options:
        cfg.merge_from_dict(o.cfg_options)
    name = osp.splitext(osp.basename(config))[0]
    batch_per_proc = o.batch_per_proc or int(cfg.train_dataloader.batch_size)
    base_batch = o.base_batch
    if o.lr_scaling != 'none' and base_batch is None:
        base_batch = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
        if base_batch is None:
            raise ValueError(f'--lr-scaling {o.lr_scaling} needs '
                             '--base-batch (or auto_scale_lr.base_batch_size '
                             'in the config).')
    cells = plan_cells(batches, o.nproc, batch_per_proc)
    work_dir = o.work_dir or osp.join('work_dirs', 'gradient_variance',
                                      name + ('_agvm' if o.agvm else ''))
    out_csv = o.out_csv or osp.join(work_dir, CSV_NAME)
    out_png = o.out_png or osp.splitext(out_csv)[0] + '.png'
    os.makedirs(osp.join(work_dir, 'configs'), exist_ok=True)
    rows: List[dict] = []
    for cell in cells:
        cell_cfg = make_cell_config(cfg, cell, o.steps, o.interval, o.agvm,
                                    o.seed, o.lr_scaling, base_batch,
                                    o.schedule)
        path = osp.abspath(osp.join(work_dir, 'configs',
                                    f'{name}_b{cell.batch}.py'))
        cell_cfg.dump(path)
        cell_csv = run_cell(path, cell,
                            osp.abspath(osp.join(work_dir, f'b{cell.batch}')),
                            log)
        cell_rows = read_rows(cell_csv)
        check_rows(cell_rows, cell.batch, o.steps, o.interval)
        rows += cell_rows
    write_csv(rows, out_csv)
    mode = 'AGVM' if o.agvm else 'no modulation'
    lr = ('' if o.lr_scaling == 'none' else
          f', lr {o.lr_scaling}-scaled from batch {base_batch}')
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per-module gradient variance at several batch sizes '
        "(AGVM paper's Figure 1)")
    parser.add_argument('config', nargs='?', help='mmdet/mmseg config')
    parser.add_argument('--batches', type=int, nargs='+',
                        default=[32, 256, 512, 1024],
                        help='global batch sizes (default 32 256 512 1024)')
    parser.add_argument('--steps', type=int, default=100,
                        help='optimizer steps per batch size (default 100)')
    parser.add_argument('--nproc', type=int, default=1,
                        help='processes per run (tools/dist_train.sh; gloo '
                        'without a GPU); default 1')
    parser.add_argument('--batch-per-proc', type=int,
                        help='images per process and micro-batch (default: '
                        "the config's train_dataloader.batch_size)")
    parser.add_argument('--interval', type=int, default=1,
                        help='measure every N optimizer steps (default 1)')
    parser.add_argument('--agvm', action='store_true',
                        help='train WITH AGVM (modulate the lr); default: '
                        'measure only, training unmodulated')
    parser.add_argument('--lr-scaling', default='none',
                        choices=['none', 'sqrt', 'linear'],
                        help='scale the configured lr by (batch / '
                        'base-batch)^p; default none')
    parser.add_argument('--base-batch', type=int,
                        help='batch of the configured lr (default: '
                        'auto_scale_lr.base_batch_size)')
    parser.add_argument('--schedule', default='steps',
                        choices=['steps', 'iters', 'constant'],
                        help='steps (default): iteration-based schedulers '
                        '(warm-up) span the same optimizer steps at every '
                        'batch size; iters: as written (micro-batches); '
                        'constant: no scheduler')
    parser.add_argument('--seed', type=int,
                        help="seed for every run (default: the config's, "
                        'else 0)')
    parser.add_argument('--work-dir', help='default: work_dirs/'
                        'gradient_variance/<config name>[_agvm]')
    parser.add_argument('--csv', help='combined CSV (default: '
                        '<work-dir>/gradient_variance.csv)')
    parser.add_argument('--out', help='figure (default: the CSV path with '
                        '.png)')
    parser.add_argument('--plot-only', metavar='CSV',
                        help='only plot and summarise an existing CSV')
    parser.add_argument('--title', help='figure title with --plot-only')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if not args.plot_only and not args.config:
        parser.error('give a CONFIG (or --plot-only CSV)')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.plot_only:
        rows = read_rows(args.plot_only)
        out = args.out or osp.splitext(args.plot_only)[0] + '.png'
        plot_gradient_variance(rows, out, title=args.title or '')
        print(summarize(rows))
        print(f'figure: {out}')
        return
    run_analysis(args.config, args.batches, AnalysisOptions(
        steps=args.steps, nproc=args.nproc,
        batch_per_proc=args.batch_per_proc, interval=args.interval,
        agvm=args.agvm, lr_scaling=args.lr_scaling,
        base_batch=args.base_batch, schedule=args.schedule, seed=args.seed,
        work_dir=args.work_dir, out_csv=args.csv, out_png=args.out,
        cfg_options=args.cfg_options))


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
