"""Plan the large batch: the learning rate and the training length at each
target batch, from the gradient noise scale ``B_noise`` measured on the
config's own data at its own batch (McCandlish et al. 2018; docs/algorithm.md
§10), and one ready leaf config per target batch.

    python tools/analysis_tools/plan_batch.py CONFIG --target-batch 64 256 1024
        [--gpus N] [--checkpoint CKPT [CKPT ...]] [--steps K]
        [--out-dir DIR] [--csv GRADIENT_VARIANCE.csv] [--nproc P]
        [--batch-per-proc S] [--json FILE] [--cfg-options k=v ...]

The base run is CONFIG as it stands: its lr, tuned at its batch (the
``auto_scale_lr.base_batch_size``, else ``train_dataloader.batch_size x
accumulative_counts`` of one process). The tool measures ``B_noise`` there
with the gradient-variance tool (tools/analysis_tools/gradient_variance.py,
AGVM measuring only): K optimizer steps from the start of training, and K
steps at each ``--checkpoint``'s weights (lr 0: every step sees the same
weights), the two gradient estimates from two halves of the accumulated
micro-batches on one process (``--nproc``: of the ranks). ``B_noise``
grows as the loss falls, and the value that matters is the one late in
training but before the lr decays (after it, the gradient is small against
its noise and the plan nearly linear): the plan uses the last checkpoint
saved before the lr decayed (below half its peak after the warm-up, as the
checkpoint's optimizer state says), and shows the others beside it.
``--csv`` takes the
gradient-variance tool's CSV instead of measuring.

Per target batch B it prints the planned lr beside the linear and
square-root rules, the step and epoch multipliers of the base run's, the
resulting iterations or epochs of this config, and each module's critical
batch, and writes ``<out-dir>/<config>_plan-b<B>.py``: images per GPU and
accumulation for ``--gpus``, the planned lr, the run stretched or shrunk
(iterations or epochs, the schedulers' milestones, the warm-up as the same
fraction of the run), AGVM's window where the paper configs put it (100
optimizer steps after the warm-up, clipping 100 either side, shorter
warm-ups: their length) and ``auto_scale_lr.enable=False`` so that mmengine
does not scale the planned lr again. Check each with tools/check_config.py.

What the plan assumes: a locally quadratic loss, a base lr that is the
best (tuned) one at the base batch, and the simple noise scale ``B_simple``
for ``B_noise``; docs/algorithm.md §10.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

if __name__ == '__main__':  # a script of tools/analysis_tools/
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import checkout  # noqa: F401  this checkout first on sys.path

from mmengine.config import Config, DictAction  # noqa: E402

from agvm_mm import large_batch_plan  # noqa: E402
from tools.analysis_tools.gradient_variance import (  # noqa: E402
    WRAPPER_TYPES, AnalysisOptions, run_analysis)
from tools.harness.grid import plain, render_config  # noqa: E402
from tools.harness.schedules import (INF,  # noqa: E402
                                     is_iteration_based, scale_schedulers,
                                     warmup_end)
from tools.harness.variance import (critical_batches,  # noqa: E402
                                    describe_critical_batch, read_rows,
                                    whole_model_critical_batch)

PAPER_OFFSET = 100  # AGVM start and clip window around the warm-up's end
# a checkpoint saved after the warm-up below this fraction of its peak lr is
# one "after the lr decayed" (MultiStepLR's first step is 0.1)
DECAYED = 0.5


class PlanError(ValueError):
    """Bad input or no plan possible: the message says what to do."""


@dataclass
class Base:
    """The base run: CONFIG's lr at its batch, and how it runs."""
    batch: int
    lr: float
    batch_per_proc: int
    accumulation: int
    source: str  # where the batch came from, as printed
    loop: str  # 'iter' or 'epoch'
    length: int  # max_iters (runner iterations) or max_epochs
    agvm: bool  # an AGVM wrapper: the leaf places its window


@dataclass
class Measurement:
    label: str  # 'start', a checkpoint path, or 'csv b<batch>'
    noise_scale: float  # the whole model's B_noise, images
    modules: Dict[str, float] = field(default_factory=dict)


def base_of(cfg: Config) -> Base:
    """Read the base run from ``cfg``; a clear error where it cannot be."""
    wrapper = cfg.get('optim_wrapper') or {}
    if 'optimizer' not in wrapper or 'lr' not in wrapper['optimizer']:
        raise PlanError('optim_wrapper.optimizer.lr is missing: the plan '
                        'scales the tuned lr of the base run.')
    kind = wrapper.get('type', 'OptimWrapper')
    if kind not in WRAPPER_TYPES:
        raise PlanError(f'optim_wrapper.type={kind!r}: the measurement uses '
                        f'the AGVM twin of {sorted(WRAPPER_TYPES)} only.')
    bpp = int(cfg.train_dataloader.batch_size)
    accumulation = int(wrapper.get('accumulative_counts', 1))
    auto = cfg.get('auto_scale_lr') or {}
    if auto.get('base_batch_size'):
        batch = int(auto['base_batch_size'])
        source = f'auto_scale_lr.base_batch_size={batch}'
        if auto.get('enable'):
            source += (' (auto_scale_lr.enable=True: mmengine would scale '
                       f'lr {wrapper["optimizer"]["lr"]:g} by the real batch '
                       '/ this one; the plan takes it as tuned at this batch '
                       'and its configs set enable=False)')
    else:
        batch = bpp * accumulation
        source = (f'train_dataloader.batch_size {bpp} x accumulative_counts '
                  f'{accumulation} on one process (no auto_scale_lr.'
                  'base_batch_size)')
    train = cfg.train_cfg
    if 'max_iters' in train:
        loop, length = 'iter', int(train['max_iters'])
    elif 'max_epochs' in train:
        loop, length = 'epoch', int(train['max_epochs'])
    else:
        raise PlanError('train_cfg has neither max_iters nor max_epochs: the '
                        'plan stretches the run length.')
    return Base(batch, float(wrapper['optimizer']['lr']), bpp, accumulation,
                source, loop, length, kind.startswith('AGVM'))


def check_targets(targets: Sequence[int], gpus: int) -> None:
    """Bad target batches, before any measurement."""
    if gpus < 1:
        raise PlanError(f'--gpus {gpus}: give the number of GPUs (>= 1) of '
                        'the planned runs.')
    for target in targets:
        if target < 1:
            raise PlanError(f'--target-batch {target}: a batch is at least '
                            '1 image.')
        if target % gpus:
            raise PlanError(f'--target-batch {target} is not a multiple of '
                            f'--gpus {gpus}: every GPU takes the same number '
                            f'of images; use a multiple of {gpus}.')


def split_batch(target: int, gpus: int, per_gpu: int,
                agvm: bool) -> Tuple[int, int]:
    """``(images per GPU, accumulation)`` for ``target`` on ``gpus``: the
    config's images per GPU where they divide, else the largest that does
    (one GPU with AGVM: an even accumulation, its two halves)."""
    share = target // gpus
    need_even = agvm and gpus == 1
    for size in range(min(per_gpu, share), 0, -1):
        counts, rest = divmod(share, size)
        if not rest and (not need_even or counts % 2 == 0):
            return size, counts
    raise PlanError(f'--target-batch {target} on 1 GPU: AGVM needs two '
                    'halves of the accumulated micro-batches, so an even '
                    'number of images; use an even batch or --gpus >= 2.')


def measure(config: str, cfg_options: Optional[dict], base: Base,
            checkpoints: Sequence[str], steps: int, nproc: int,
            batch_per_proc: Optional[int], work_dir: str
            ) -> List[Tuple[str, list]]:
    """The gradient-variance rows at the base batch: from the start, then
    at each checkpoint's weights (lr 0)."""
    size = batch_per_proc or split_batch(base.batch, nproc,
                                         base.batch_per_proc, True)[0]
    out = []
    for label in ['start', *checkpoints]:
        options = dict(cfg_options or {})
        schedule = 'steps'
        if label != 'start':
            options.update({'load_from': osp.abspath(label),
                            'optim_wrapper.optimizer.lr': 0.0})
            schedule = 'constant'
        name = 'start' if label == 'start' else \
            osp.splitext(osp.basename(label))[0]
        rows = run_analysis(config, [base.batch], AnalysisOptions(
            steps=steps, nproc=nproc, batch_per_proc=size,
            schedule=schedule, work_dir=osp.join(work_dir, name),
            cfg_options=options), log=lambda *a: None)
        out.append((label, rows))
    return out


def estimate(label: str, rows: list, batch: int) -> Measurement:
    return Measurement(label, whole_model_critical_batch(rows)[batch],
                       critical_batches(rows)[batch])


def decayed_lr(path: str, warm_end: Optional[int]) -> Optional[float]:
    """The fraction of its peak lr at which the mmengine checkpoint ``path``
    was saved, if that was after the warm-up (runner iteration
    ``warm_end``) and below :data:`DECAYED`; None otherwise, or when it
    does not say (no optimizer state with ``initial_lr``, no iteration)."""
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    groups = (ckpt.get('optimizer') or {}).get('param_groups') or []
    ratios = [g['lr'] / g['initial_lr'] for g in groups
              if g.get('initial_lr')]
    step = (ckpt.get('meta') or {}).get('iter')
    if not ratios or step is None or step <= (warm_end or 0):
        return None
    return max(ratios) if max(ratios) < DECAYED else None


def planning_measurement(measured: List[Measurement],
                         decayed: Dict[str, float]) -> Measurement:
    """The measurement that plans: the last checkpoint's saved before the lr
    decayed (``decayed``: label -> fraction of the peak lr); the last one
    if every checkpoint was saved after (or none was given)."""
    before = [m for m in measured if m.label != 'start'
              and m.label not in decayed]
    return before[-1] if before else measured[-1]


def no_plan(m: Measurement) -> str:
    """Why ``m`` gives no plan, naming the modules."""
    bad = [name for name, v in m.modules.items() if not math.isfinite(v)]
    what = ('has no estimate (NaN)' if math.isnan(m.noise_scale) else
            'is noise-dominated (|G|^2 not positive)')
    return (f'No plan: the whole model\'s B_noise at {m.label} {what}; '
            f'modules without a finite estimate: {", ".join(bad) or "none"}. '
            'Measure later in training (--checkpoint of a base run late, '
            'before its lr decays) or over more steps (--steps).')


def leaf_config(cfg: Config, config: str, base: Base, target: int,
                gpus: int, plan: dict, out_dir: str,
                cfg_options: Optional[dict] = None) -> Tuple[str, str]:
    """Write the leaf config for ``target`` (``cfg_options`` written into
    it, below what the plan sets); its path and its run length as
    printed."""
    size, counts = split_batch(target, gpus, base.batch_per_proc, base.agvm)
    # runner iterations of the new run over the old's
    if base.loop == 'iter':
        old_steps = base.length / base.accumulation
        steps = max(1, round(old_steps * plan['steps']))
        new_length = steps * counts
        ratio = new_length / base.length
        length = dict(max_iters=new_length)
        text = f'{new_length} iterations ({steps} optimizer steps)'
        epoch_ratio = None
    else:
        new_length = max(1, round(base.length * plan['epochs']))
        epoch_ratio = new_length / base.length
        # iterations per epoch go as 1 / (images per runner iteration)
        ratio = epoch_ratio * (base.batch / base.accumulation) / (
            target / counts)
        length = dict(max_epochs=new_length)
        text = f'{new_length} epochs'
    schedulers = [_scaled(s, ratio, epoch_ratio, base) for s in
                  plain(cfg.get('param_scheduler') or [])]
    items = dict(
        train_dataloader=dict(batch_size=size),
        train_cfg=length,
        optim_wrapper=dict(optimizer=dict(lr=plan['lr']),
                           accumulative_counts=counts),
        param_scheduler=schedulers,
        auto_scale_lr=dict(enable=False, base_batch_size=target))
    if base.agvm:
        hooks = [h for h in plain(cfg.get('custom_hooks') or [])
                 if h.get('type') != 'AGVMHook']
        warm = warmup_end([s for s in schedulers if is_iteration_based(s)],
                          new_length if base.loop == 'iter' else INF)
        if warm is not None:
            offset = min(PAPER_OFFSET, max(1, warm // counts))
            hooks.append(dict(type='AGVMHook', start_offset=offset,
                              clip_window=(offset, offset)))
            items['optim_wrapper']['agvm'] = dict(start_iter=None,
                                                  clip_grad_window=None)
            items['custom_hooks'] = hooks
    whole = {'param_scheduler', 'custom_hooks'} & set(items)  # lists
    items = _merged(_nested(cfg_options or {}, whole), items)
    name = osp.splitext(osp.basename(config))[0]
    path = osp.join(out_dir, f'{name}_plan-b{target}.py')
    header = (f'Planned by tools/analysis_tools/plan_batch.py: batch '
              f'{target} = {gpus} GPU(s) x {size} x {counts}, lr '
              f'{plan["lr"]:.6g}, {text}.\nFrom {name} at batch '
              f'{base.batch}, lr {base.lr:g}, B_noise '
              f'{plan["noise_scale"]:.4g} ({plan["planned_from"]}).')
    os.makedirs(out_dir, exist_ok=True)
    with open(path, 'w') as f:
        f.write(render_config(
            osp.relpath(osp.abspath(config), osp.abspath(out_dir)), header,
            list(items.items())))
    return path, text


def _nested(options: dict, replaced: set) -> dict:
    """``--cfg-options`` (dotted keys) as the nested dicts of a config
    file; those under a key the plan writes whole are dropped (it was
    computed from the merged config)."""
    out: dict = {}
    for key, value in options.items():
        *parents, last = key.split('.')
        if key.split('.')[0] in replaced:
            continue
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = plain(value)
    return out


def _merged(under: dict, over: dict) -> dict:
    """``over`` merged into ``under``, dict by dict."""
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            value = _merged(out[key], value)
        out[key] = value
    return out


def _scaled(sched: dict, ratio: float, epoch_ratio: Optional[float],
            base: Base) -> dict:
    """One scheduler of a run ``ratio`` times as many iterations (epoch-
    based ones: ``epoch_ratio`` times as many epochs; in an iteration-based
    loop they stay as they are)."""
    if is_iteration_based(sched):
        old_end = base.length if base.loop == 'iter' else None
        return scale_schedulers(sched, ratio, 1.0, old_end)
    if epoch_ratio is None:
        return sched
    return scale_schedulers(sched, epoch_ratio, 1.0, by_epoch=True)


def make_plan(config: str, targets: Sequence[int], gpus: int = 1,
              checkpoints: Sequence[str] = (), steps: int = 100,
              out_dir: Optional[str] = None, csv: Optional[str] = None,
              nproc: int = 1, batch_per_proc: Optional[int] = None,
              cfg_options: Optional[dict] = None, log=print) -> dict:
    """Measure (or read ``csv``), plan every target, write the leaf configs;
    returns what ``--json`` writes. Raises :class:`PlanError`."""
    import agvm_mm  # noqa: F401  registers the AGVM types
    check_targets(targets, gpus)
    if steps < 2:
        raise PlanError(f'--steps {steps}: the estimate averages the last '
                        'half of the steps; give at least 2 (100 is usual).')
    for path in [*checkpoints, *([csv] if csv else [])]:
        if not osp.exists(path):
            raise PlanError(f'{path}: no such file.')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    base = base_of(cfg)
    name = osp.splitext(osp.basename(config))[0]
    out_dir = out_dir or osp.join('work_dirs', 'plan_batch', name)
    # before measuring: which checkpoints were saved after the lr decayed
    warm = warmup_end([s for s in plain(cfg.get('param_scheduler') or [])
                       if is_iteration_based(s)],
                      base.length if base.loop == 'iter' else INF)
    ratios = {c: decayed_lr(c, warm) for c in ([] if csv else checkpoints)}
    decayed = {c: r for c, r in ratios.items() if r is not None}
    if csv:
        rows = read_rows(csv)
        batches = sorted({r['batch'] for r in rows})
        measured = [estimate(f'csv b{b}', [r for r in rows
                                           if r['batch'] == b], b)
                    for b in batches]
        # the base batch's rows plan; else the largest batch's
        measured.sort(key=lambda m: m.label == f'csv b{base.batch}')
    else:
        measured = [estimate(label, rows, base.batch) for label, rows in
                    measure(config, cfg_options, base, checkpoints, steps,
                            nproc, batch_per_proc, out_dir)]
    used = planning_measurement(measured, decayed)
    if not (math.isfinite(used.noise_scale) and used.noise_scale > 0):
        raise PlanError(no_plan(used))
    lines = [f'Base: lr {base.lr:g} at batch {base.batch} ({base.source}); '
             f'{base.length} {"iterations" if base.loop == "iter" else "epochs"}.',
             'B_noise (images; the whole model, then each module):']
    for m in measured:
        mark = (f'  (saved at {decayed[m.label]:.0%} of the peak lr)'
                if m.label in decayed else '') + (
                    '  <- plans' if m is used else '')
        lines.append(f'  {m.label}: {describe_critical_batch(m.noise_scale)}'
                     f' (' + ', '.join(
                         f'{k} {describe_critical_batch(v)}'
                         for k, v in m.modules.items()) + f'){mark}')
    if csv:
        lines.append(f'The plan uses the CSV\'s rows of {used.label[4:]} '
                     '(the base batch\'s, else the largest batch\'s).')
    elif used.label in decayed:
        lines.append('Every checkpoint was saved after the lr decayed, where '
                     'the gradient is small against its noise and B_noise '
                     'plans nearly linear scaling (on the shapes RetinaNet '
                     'such a plan diverged in 3 of 5 runs: '
                     'docs/results/plan_batch.md). Give a checkpoint from '
                     'before the first lr decay.')
    elif decayed:
        lines.append('B_noise grows as the loss falls, and jumps once the lr '
                     'has decayed (the gradient is then small against its '
                     'noise; on the shapes RetinaNet the nearly linear plan '
                     'from there diverged in 3 of 5 runs: '
                     'docs/results/plan_batch.md). The plan uses the last '
                     'checkpoint\'s saved before the lr decayed.')
    elif checkpoints:
        lines.append('B_noise grows as the loss falls; the plan uses the '
                     'last checkpoint\'s, the one nearest the end of '
                     'training (none was saved after the lr decayed).')
    lines += ['', '| batch | lr (planned) | linear rule | sqrt rule | steps x '
              '| epochs x | run | batch / each module\'s B_noise | config |',
              '|---|---|---|---|---|---|---|---|---|']
    plans = {}
    for target in targets:
        plan = large_batch_plan(base.batch, base.lr, used.noise_scale, target)
        plan.update(noise_scale=used.noise_scale, planned_from=used.label,
                    linear_lr=base.lr * target / base.batch,
                    sqrt_lr=base.lr * math.sqrt(target / base.batch))
        path, text = leaf_config(cfg, config, base, target, gpus, plan,
                                 out_dir, cfg_options)
        plan.update(config=path, run=text)
        plans[str(target)] = plan
        past = ', '.join(f'{m} {target / v:.2g}x' for m, v in
                         used.modules.items() if math.isfinite(v) and v > 0)
        lines.append(f'| {target} | {plan["lr"]:.4g} | '
                     f'{plan["linear_lr"]:.4g} | {plan["sqrt_lr"]:.4g} | '
                     f'{plan["steps"]:.3g} | {plan["epochs"]:.3g} | {text} | '
                     f'{past} | {path} |')
        if target < base.batch:
            lines.append(f'  (batch {target} is below the base batch: the '
                         'same formula shrinks the lr and the epochs)')
    table = '\n'.join(lines)
    log(table)
    return dict(base=asdict(base), measurements=[asdict(m) for m in measured],
                planned_from=used.label, plan=plans, table=table)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 1)[1])
    parser.add_argument('config', help='mmdet / mmseg config: the base run')
    parser.add_argument('--target-batch', type=int, nargs='+', required=True,
                        help='global batch sizes to plan')
    parser.add_argument('--gpus', type=int, default=1,
                        help='GPUs of the planned runs (default 1)')
    parser.add_argument('--checkpoint', nargs='+', default=[],
                        help='checkpoints of the base run to measure at '
                        '(the last one plans: late in the run, but before '
                        'its lr decays; docs/tools.md)')
    parser.add_argument('--steps', type=int, default=100,
                        help='optimizer steps per measurement (default 100; '
                        'the estimate uses the last half)')
    parser.add_argument('--out-dir', help='leaf configs and the '
                        'measurements (default work_dirs/plan_batch/<config>)')
    parser.add_argument('--csv', help="the gradient-variance tool's CSV "
                        'instead of measuring')
    parser.add_argument('--nproc', type=int, default=1,
                        help='processes of the measurement (default 1)')
    parser.add_argument('--batch-per-proc', type=int,
                        help='images per micro-batch of the measurement')
    parser.add_argument('--json', help='also write the plan here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = make_plan(args.config, args.target_batch, args.gpus,
                           args.checkpoint, args.steps, args.out_dir,
                           args.csv, args.nproc, args.batch_per_proc,
                           args.cfg_options)
    except PlanError as error:
        print(f'plan_batch: {error}', file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    sys.exit(main())
