"""Does AGVM keep the small-batch accuracy in the authors' regime? The
shapes miniature with a pretrained backbone, the authors' schedule shape and
fair lr sweeps, over tools/reproduce.py.

    python tools/benchmark_paper_regime.py [--jobs 2] [--threads 1]
        [--plan] [--report-only] [--out docs/results]

RetinaNet (configs/shapes/retinanet_tiny_shapes_paper_agvm.py: the tiny
ResNet-18 of tools/pretrain_backbone.py, stem and stage 1 frozen), 13
epochs of 4000 images at every batch size, runs in this order:

1. the reference: batch 8, SGD at the linear rule's lr (0.02 x B / 16),
   seeds 0 and 1;
2. batch 128 (16x): SGD and SGD + AGVM, each at the square-root rule's lr,
   the authors' (0.65x linear) and the linear rule's, extended by halving
   (doubling) the lr while the best is the lowest (highest) point, twice at
   most; the best lr of each again with seed 1;
3. at 128: SGD with AGVM's time-averaged factors of its best run as fixed
   per-module lr multipliers (the static control); LAMB, PMD-LAMB and LARS,
   two lrs each;
4. batch 64 (8x): the sweeps and reruns of 2.;
5. the contrast: the best SGD and AGVM lrs at 128 from a random-init
   backbone (nothing frozen, BN training), the regime of the README's first
   miniature.

"SGD" is the AGVM wrapper with ``agvm.modulate=False`` (bit-identical to
SGD, AGVM only measures), so every SGD-type run has the same clip window,
warm-up and lr steps and the only difference between SGD and AGVM is the
modulation. Every run is one tools/reproduce.py call with its own work root
(work_dirs/paper_regime/<run>); finished runs are skipped, so the command
continues an interrupted grid. After each run the results are written to
``--out``: paper_regime.json (a record per run), paper_regime.md (tables,
every lr of every sweep, and the verdict by the rule below) and
paper_regime.png.

Verdict (fixed before the runs; issue 10), at the largest batch:
*reproduces*: best SGD >= 1.5 mAP below the reference, best-of-sweep AGVM
beats best-of-sweep SGD by >= 1.0 mAP on the mean of two seeds and in each
seed, and recovers >= 40 % of SGD's gap; *does not reproduce*: SGD loses
>= 1.5 but AGVM gains <= 0.3; *inconclusive* otherwise.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FAMILY = 'retinanet_paper'
RECIPE_BATCH, RECIPE_LR = 16, 0.02
REF_BATCH, LARGE = 8, (128, 64)  # the largest first: the verdict's batch
EPOCHS, NUM_TRAIN = 13, 4000
SEEDS = (0, 1)
RULES = (('sqrt', lambda b: RECIPE_LR * math.sqrt(b / RECIPE_BATCH)),
         ('authors', lambda b: 0.65 * RECIPE_LR * b / RECIPE_BATCH),
         ('linear', lambda b: RECIPE_LR * b / RECIPE_BATCH))
EXTEND = 2  # sweep points added beyond each end (see sweep)
BASELINE_LRS = {'lamb': (3e-3, 9e-3), 'pmd-lamb': (3e-3, 9e-3),
                'lars': (0.5, 1.5)}
ARMS = {'sgd': 'SGD', 'agvm': 'SGD + AGVM', 'static': 'SGD, static mult',
        'lamb': 'LAMB', 'pmd-lamb': 'PMD-LAMB', 'lars': 'LARS'}
MEASURE_ONLY = 'optim_wrapper.agvm.modulate=False'
RANDOM_INIT = ('model.backbone.init_cfg=None', 'model.backbone.frozen_stages=-1',
               'model.backbone.norm_eval=False')


@dataclass
class Run:
    arm: str  # a key of ARMS
    batch: int
    lr: float
    seed: int = 0
    rule: str = ''  # the lr rule of a sweep point
    options: Tuple[str, ...] = ()  # extra --cfg-options
    backbone: str = 'pretrained'  # or 'random': the contrast

    @property
    def name(self) -> str:
        suffix = '' if self.backbone == 'pretrained' else '-' + self.backbone
        return f'{self.arm}-b{self.batch}-lr{self.lr:.4g}-s{self.seed}' + \
            suffix

    @property
    def optim(self) -> str:  # tools/reproduce.py's optimizer
        return 'agvm' if self.arm in ('sgd', 'agvm', 'static') else self.arm

    def work_root(self, root: str) -> str:
        return osp.join(root, self.name)


@dataclass
class Record:
    family: str
    backbone: str
    batch: int
    optimizer: str
    lr: float
    seed: int
    rule: str
    steps: Optional[int]
    bbox_mAP: Optional[float]
    final_train_loss: Optional[float]
    diverged: bool
    status: str
    lr_mult: Dict[str, float] = field(default_factory=dict)
    # AGVM's factors averaged over its logged window (measured, not applied,
    # in the SGD runs); the static control's multipliers come from here
    mean_factors: Dict[str, float] = field(default_factory=dict)
    run: str = ''  # Run.name
    commit: str = ''  # the code the run trained with


def reproduce_argv(run: Run, work_root: str) -> List[str]:
    bpp = 4 if run.batch == REF_BATCH else 8  # AGVM needs 2 micro-batches
    base_lr = run.lr * RECIPE_BATCH / run.batch  # linear scaling back to B0
    options = [f'randomness.seed={run.seed}'] + list(run.options)
    if run.arm in ('sgd', 'static'):
        options.append(MEASURE_ONLY)
    return [sys.executable, osp.join(ROOT, 'tools', 'reproduce.py'),
            '--local', '--families', FAMILY, '--batches', str(run.batch),
            '--optims', run.optim, '--epochs', str(EPOCHS),
            '--num-train', str(NUM_TRAIN), '--lr-scaling', 'linear',
            '--base-lr', f'{run.optim}={base_lr!r}', '--batch-per-proc',
            str(bpp), '--work-root', run.work_root(work_root),
            '--train-args', '--cfg-options ' + ' '.join(options)]


def read_record(run: Run, work_root: str) -> Optional[Record]:
    """The run's result from reproduce's results.json; None if not run."""
    path = osp.join(run.work_root(work_root), 'results.json')
    if not osp.exists(path):
        return None
    with open(path) as f:
        [cell] = json.load(f)['cells']
    if cell['status'] not in ('done', 'diverged'):
        return None
    values = cell['values']
    mult = {o.split('.')[-1].split('=')[0]: float(o.split('=')[1])
            for o in run.options if '.lr_mult.' in o}
    diverged = cell['status'] == 'diverged'
    mAP = values.get('coco/bbox_mAP')
    commit = run.work_root(work_root) + '.commit'
    return Record(
        FAMILY, run.backbone, run.batch, ARMS[run.arm], run.lr, run.seed,
        run.rule, cell['info'].get('steps'),
        None if mAP is None or diverged else round(100 * mAP, 2),
        values.get('loss'), diverged, cell['status'], mult,
        mean_factors(osp.join(run.work_root(work_root),
                              *cell['work_dir'].split(os.sep)[-2:])) or {},
        run.name,
        open(commit).read().strip() if osp.exists(commit) else '')


def _score(record: Optional[Record]) -> float:
    if record is None or record.bbox_mAP is None:
        return -math.inf
    return record.bbox_mAP


def sweep(arm: str, batch: int, done: Dict[str, Record]) -> List[Run]:
    """The three rules' lrs, extended by halving (doubling) while the best
    finished point is the lowest (highest), at most ``EXTEND`` times each
    way, so that the best lr lies inside the sweep where it can."""
    runs = [Run(arm, batch, lr(batch), 0, rule) for rule, lr in RULES]
    low = high = 0
    while True:
        top = best(runs, done)
        if top is None:
            return runs
        lrs = [r.lr for r in runs]
        if top.lr == min(lrs) and low < EXTEND:
            low += 1
            runs.append(Run(arm, batch, min(lrs) / 2, 0, f'sqrt/{2**low}'))
        elif top.lr == max(lrs) and high < EXTEND:
            high += 1
            runs.append(Run(arm, batch, max(lrs) * 2, 0,
                            f'linear x{2**high}'))
        else:
            return runs


def best(runs: Sequence[Run], done: Dict[str, Record]) -> Optional[Run]:
    """The best seed-0 run of a finished sweep (lower lr on a tie)."""
    if not all(r.name in done for r in runs):
        return None
    return max(runs, key=lambda r: (_score(done[r.name]), -r.lr))


def mean_factors(work_dir: str) -> Optional[Dict[str, float]]:
    """AGVM's factors averaged over the logged steps of its window."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not paths:
        return None
    sums: Dict[str, List[float]] = {}
    with open(paths[-1]) as f:
        for line in f:
            for key, value in json.loads(line).items():
                if key.startswith('agvm_scale/'):
                    sums.setdefault(key.split('/', 1)[1], []).append(value)
    return {m: round(sum(v) / len(v), 3) for m, v in sums.items()
            if m != 'backbone'}


def plan(done: Dict[str, Record]) -> List[Run]:
    """Every run the grid needs given the results so far, in order: the
    verdict's batch with its reruns and controls first, then the others."""
    ref = [Run('sgd', REF_BATCH, RULES[2][1](REF_BATCH), s, 'linear')
           for s in SEEDS]
    big = max(LARGE)
    runs = ref[:1]
    for batch in LARGE:
        sweeps = {arm: sweep(arm, batch, done) for arm in ('sgd', 'agvm')}
        # the authors' rule first, SGD and AGVM side by side
        for i in (1, 0, 2):
            runs += [sweeps['sgd'][i], sweeps['agvm'][i]]
        runs += sweeps['sgd'][3:] + sweeps['agvm'][3:]
        if batch == big:
            runs += ref[1:]
        for arm, points in sweeps.items():
            top = best(points, done)
            if top is not None:
                runs.append(Run(arm, batch, top.lr, 1, top.rule))
        if batch == big:
            runs += controls(big, done)
    # the contrast: the best lrs again from a random-init backbone (as the
    # README's first miniature), nothing frozen, BN training
    for arm in ('sgd', 'agvm'):
        top = best(sweep(arm, big, done), done)
        if top is not None:
            runs.append(Run(arm, big, top.lr, 0, top.rule, RANDOM_INIT,
                            'random'))
    return runs


def controls(batch: int, done: Dict[str, Record]) -> List[Run]:
    """The static control (SGD with the best AGVM run's mean factors as
    fixed module lr multipliers) and the layer-wise baselines."""
    runs = []
    top = best(sweep('agvm', batch, done), done)
    if top is not None:
        factors = done[top.name].mean_factors
        if factors:
            runs.append(Run('static', batch, top.lr, 0, top.rule, (
                'optim_wrapper.constructor=AGVMOptimWrapperConstructor', ) +
                tuple(f'optim_wrapper.agvm.lr_mult.{m}={v}'
                      for m, v in sorted(factors.items()))))
    for arm, lrs in BASELINE_LRS.items():
        runs += [Run(arm, batch, lr) for lr in lrs]
    return runs


def verdict(done: Dict[str, Record]) -> Tuple[str, List[str]]:
    """The issue's rule at the largest batch, with the figures it used."""
    big = max(LARGE)
    ref = [done[r.name].bbox_mAP for r in plan(done)
           if r.batch == REF_BATCH and r.name in done]
    tops = {arm: best(sweep(arm, big, done), done) for arm in ('sgd', 'agvm')}
    if len(ref) < 2 or None in tops.values():
        return 'pending', ['the reference or a sweep at the largest batch '
                           'has not finished']
    seeds = {}
    for arm, top in tops.items():
        again = done.get(Run(arm, big, top.lr, 1, top.rule).name)
        if again is None:
            return 'pending', [f'the seed-1 rerun of the best {arm} lr has '
                               'not finished']
        seeds[arm] = [_score(done[top.name]), _score(again)]
    ref_mean = sum(ref) / len(ref)
    sgd, agvm = (sum(v) / 2 for v in (seeds['sgd'], seeds['agvm']))
    gap, gain = ref_mean - sgd, agvm - sgd
    each = all(a - s >= 1.0 for a, s in zip(seeds['agvm'], seeds['sgd']))
    recovered = gain / gap if gap > 0 else float('nan')
    facts = [f'reference b{REF_BATCH}: {ref_mean:.2f} mAP (seeds {ref})',
             f'best SGD b{big}: {sgd:.2f} (lr {tops["sgd"].lr:.4g}, seeds '
             f'{seeds["sgd"]}); gap to the reference {gap:.2f}',
             f'best AGVM b{big}: {agvm:.2f} (lr {tops["agvm"].lr:.4g}, seeds'
             f' {seeds["agvm"]}); gain over SGD {gain:.2f} (per seed '
             f'{[round(a - s, 2) for a, s in zip(seeds["agvm"], seeds["sgd"])]}'
             f'), {100 * recovered:.0f} % of the gap recovered']
    if gap >= 1.5 and gain >= 1.0 and each and recovered >= 0.4:
        return 'reproduces', facts
    if gap >= 1.5 and gain <= 0.3:
        return 'does not reproduce', facts
    return 'inconclusive', facts


def write_report(done: Dict[str, Record], out: str) -> None:
    os.makedirs(out, exist_ok=True)
    records = [done[r.name] for r in plan(done) if r.name in done]
    with open(osp.join(out, 'paper_regime.json'), 'w') as f:
        json.dump([asdict(r) for r in records], f, indent=1)
    word, facts = verdict(done)
    lines = ['# AGVM in the authors\' regime on the shapes data', '',
             f'RetinaNet, pretrained tiny ResNet-18, {EPOCHS} epochs of '
             f'{NUM_TRAIN} images at every batch; COCO bbox mAP (%) on 200 '
             'validation images. Written by '
             '`python tools/benchmark_paper_regime.py`.', '',
             f'Verdict: {word}', ''] + [f'* {f}' for f in facts] + ['', (
                 '| optimizer | batch | lr rule | lr | seed | steps | bbox '
                 'mAP | final loss | note |'), '|---|---|---|---|---|---|'
                 '---|---|---|']
    for r in records:
        notes = ['diverged'] if r.diverged else []
        if r.lr_mult:
            notes.append('lr x ' + ', '.join(f'{m} {v}' for m, v in
                                               r.lr_mult.items()))
        if r.optimizer == ARMS['agvm'] and r.mean_factors:
            notes.append('mean s ' + ', '.join(
                f'{m} {v:.2f}' for m, v in r.mean_factors.items()))
        note = '; '.join(notes)
        mAP = 'NaN' if r.bbox_mAP is None else f'{r.bbox_mAP:.1f}'
        loss = '—' if r.final_train_loss is None else \
            f'{r.final_train_loss:.3f}'
        lines.append(f'| {_label(r)} | {r.batch} | {r.rule or "—"} | '
                     f'{r.lr:.4g} | {r.seed} | {r.steps} | {mAP} | {loss} | '
                     f'{note} |')
    with open(osp.join(out, 'paper_regime.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    plot(records, osp.join(out, 'paper_regime.png'))


def _label(record: Record) -> str:
    if record.backbone == 'pretrained':
        return record.optimizer
    return f'{record.optimizer} ({record.backbone} init)'


def plot(records: Sequence[Record], path: str) -> None:
    """mAP against lr, a panel per large batch, a line per optimizer; the
    reference as a horizontal band."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ref = [r.bbox_mAP for r in records if r.batch == REF_BATCH]
    fig, axes = plt.subplots(1, len(LARGE), figsize=(5 * len(LARGE), 4),
                             sharey=True, squeeze=False)
    for ax, batch in zip(axes[0], sorted(LARGE)):
        for name in dict.fromkeys(_label(r) for r in records
                                  if r.batch == batch):
            pts = sorted((r.lr, r.bbox_mAP or 0.0) for r in records
                         if r.batch == batch and _label(r) == name)
            ax.plot(*zip(*pts), 'o-', label=name)
        if ref:
            ax.axhline(sum(ref) / len(ref), color='k', ls='--',
                       label=f'SGD b{REF_BATCH} (reference)')
        ax.set(xscale='log', xlabel='lr', title=f'batch {batch}')
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('bbox mAP (%)')
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 1)[1])
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run (default 1)')
    parser.add_argument('--work-root', default='work_dirs/paper_regime')
    parser.add_argument('--out', default='docs/results')
    parser.add_argument('--plan', action='store_true',
                        help='print the runs planned so far, run nothing')
    parser.add_argument('--report-only', action='store_true')
    args = parser.parse_args(argv)

    done = collect(args.work_root, args.out)
    if args.plan or args.report_only:
        for run in plan(done):
            print(('done   ' if run.name in done else 'pending') + ' ' +
                  run.name)
        if args.report_only:
            write_report(done, args.out)
        return 0
    subprocess.run([sys.executable, osp.join(ROOT, 'tools',
                                             'pretrain_backbone.py')],
                   check=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    os.makedirs(args.work_root, exist_ok=True)
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    running: Dict[object, Run] = {}
    failed = set()  # not retried in this call
    with ThreadPoolExecutor(args.jobs) as pool:
        while True:
            busy = {r.name for r in running.values()}
            todo = [r for r in plan(done) if r.name not in done
                    and r.name not in busy and r.name not in failed]
            # runs another process trains now take a slot, and are read
            # back once they finish
            elsewhere = [r for r in todo if in_progress(r, args.work_root)]
            slots = args.jobs - len(running) - len(elsewhere)
            for run in [r for r in todo if r not in elsewhere][:max(0,
                                                                   slots)]:
                print(f'[paper regime] start {run.name}', flush=True)
                root = run.work_root(args.work_root)
                with open(root + '.commit', 'w') as f:
                    f.write(commit + '\n')
                running[pool.submit(_call, reproduce_argv(
                    run, args.work_root), env, root + '.log')] = run
            if not running and not elsewhere:
                break
            if running:
                finished, _ = wait(list(running), timeout=60,
                                   return_when=FIRST_COMPLETED)
            else:  # only runs of another process: poll
                finished = set()
                time.sleep(60)
            before = set(done)
            done = collect(args.work_root, args.out)
            for future in finished:
                run = running.pop(future)
                if run.name not in done:
                    failed.add(run.name)
                    print(f'[paper regime] {run.name}: failed (see '
                          f'{run.work_root(args.work_root)}.log)', flush=True)
            for name in sorted(set(done) - before):
                print(f'[paper regime] {name}: {done[name].bbox_mAP} mAP',
                      flush=True)
            if set(done) != before:
                write_report(done, args.out)
    print(open(osp.join(args.out, 'paper_regime.md')).read())
    return 0


def collect(work_root: str, out: str) -> Dict[str, Record]:
    """The finished runs, by name: the records already in
    ``out/paper_regime.json`` (committed, so a new machine continues the
    grid), then what the work dirs hold. The plan grows as results arrive
    (the seed-1 reruns and the static control depend on the sweeps)."""
    path = osp.join(out, 'paper_regime.json')
    known = {}
    if osp.exists(path):
        with open(path) as f:
            known = {r['run']: Record(**r) for r in json.load(f)}
    done: Dict[str, Record] = {}
    seen = set()
    while True:
        new = [r for r in plan(done) if r.name not in seen]
        if not new:
            return done
        for run in new:
            seen.add(run.name)
            record = known.get(run.name) or read_record(run, work_root)
            if record is not None:
                done[run.name] = record


def in_progress(run: Run, work_root: str, quiet: float = 300.0) -> bool:
    """Whether another process seems to train ``run`` now (a second driver,
    or one stopped while its runs went on): a file under its work root
    changed within ``quiet`` seconds."""
    newest = 0.0
    for folder, _, files in os.walk(run.work_root(work_root)):
        for name in files:
            try:
                newest = max(newest, osp.getmtime(osp.join(folder, name)))
            except OSError:  # removed meanwhile
                pass
    return time.time() - newest < quiet


def _call(argv: List[str], env: dict, log: str) -> int:
    with open(log, 'a') as f:
        return subprocess.call(argv, cwd=os.getcwd(), env=env, stdout=f,
                               stderr=subprocess.STDOUT)


if __name__ == '__main__':
    sys.exit(main())
