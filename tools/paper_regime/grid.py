"""The runs of the paper-regime grid: what each is, how tools/reproduce.py
trains it, its record, the lr sweeps and the plan, which grows as results
arrive (the seed-1 reruns and the static control depend on the sweeps)."""
import glob
import json
import math
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from tools.checkout import ROOT

FAMILY = 'retinanet_paper'
RECIPE_BATCH, RECIPE_LR = 16, 0.02
REF_BATCH, LARGE = 8, (128, 64)  # the largest first: the verdict's batch
EPOCHS, NUM_TRAIN = 13, 4000
SEEDS = (0, 1)
RULES = (('sqrt', lambda b: RECIPE_LR * math.sqrt(b / RECIPE_BATCH)),
         ('authors', lambda b: 0.65 * RECIPE_LR * b / RECIPE_BATCH),
         ('linear', lambda b: RECIPE_LR * b / RECIPE_BATCH))
EXTEND = 2  # sweep points added beyond each end (see sweep)
BASELINE_LRS = {'lars': (0.5, 1.5), 'lamb': (3e-3, 9e-3),
                'pmd-lamb': (3e-3, 9e-3)}
ARMS = {'sgd': 'SGD', 'agvm': 'SGD + AGVM', 'static': 'SGD, static mult',
        'lamb': 'LAMB', 'pmd-lamb': 'PMD-LAMB', 'lars': 'LARS'}
MEASURE_ONLY = 'optim_wrapper.agvm.modulate=False'
RANDOM_INIT = ('model.backbone.init_cfg=None',
               'model.backbone.frozen_stages=-1',
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
    epochs: float = EPOCHS  # another length: a planned run

    @property
    def name(self) -> str:
        suffix = '' if self.backbone == 'pretrained' else '-' + self.backbone
        if self.epochs != EPOCHS:
            suffix += f'-e{self.epochs:.4g}'
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
    # the pretrained checkpoint's sha256 prefix and held-out accuracy (%):
    # another machine's pretraining gave another checkpoint (93.75 % held
    # out against the first machine's 94.1 %)
    pretrained_ckpt: str = ''


def reproduce_argv(run: Run, work_root: str) -> List[str]:
    bpp = 4 if run.batch == REF_BATCH else 8  # AGVM needs 2 micro-batches
    base_lr = run.lr * RECIPE_BATCH / run.batch  # linear scaling back to B0
    options = [f'randomness.seed={run.seed}'] + list(run.options)
    if run.arm in ('sgd', 'static'):
        options.append(MEASURE_ONLY)
    return [sys.executable, osp.join(ROOT, 'tools', 'reproduce.py'),
            '--local', '--families', FAMILY, '--batches', str(run.batch),
            '--optims', run.optim, '--epochs', str(run.epochs),
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
    # 'optim_wrapper.agvm.lr_mult.<module>=<value>': the value has a dot too
    mult = {key.rsplit('.', 1)[-1]: float(value) for key, value in
            (o.split('=', 1) for o in run.options if '.lr_mult.' in o)}
    diverged = cell['status'] == 'diverged'
    mAP = values.get('coco/bbox_mAP')
    return Record(
        FAMILY, run.backbone, run.batch, ARMS[run.arm], run.lr, run.seed,
        run.rule, cell['info'].get('steps'),
        None if mAP is None or diverged else round(100 * mAP, 2),
        values.get('loss'), diverged, cell['status'], mult,
        mean_factors(osp.join(run.work_root(work_root),
                              *cell['work_dir'].split(os.sep)[-2:])) or {},
        run.name, read_sidecar(run, work_root, 'commit'),
        read_sidecar(run, work_root, 'backbone'))


def read_sidecar(run: Run, work_root: str, kind: str) -> str:
    """What the driver wrote beside the run's work root when it started it
    (``<root>.commit``: the code; ``<root>.backbone``: the checkpoint)."""
    path = f'{run.work_root(work_root)}.{kind}'
    if not osp.exists(path):
        return ''
    with open(path) as f:
        return f.read().strip()


def score(record: Optional[Record]) -> float:
    """A run's mAP for ranking: an unfinished or diverged one is last."""
    if record is None or record.bbox_mAP is None:
        return -math.inf
    return record.bbox_mAP


def sweep(arm: str, batch: int, done: Dict[str, Record]) -> List[Run]:
    """The three rules' lrs, extended by halving (doubling) at most
    ``EXTEND`` times each way (see extend)."""
    return extend([Run(arm, batch, lr(batch), 0, rule) for rule, lr in RULES],
                  done, factor=2, most=EXTEND)


def extend(runs: List[Run], done: Dict[str, Record], factor: float,
           most: int) -> List[Run]:
    """``runs`` plus lrs beyond its ends: while the best finished point is
    the lowest (highest) lr (every point diverged: the lowest), one more
    at that lr / ``factor`` (x ``factor``), at most ``most`` times each
    way, so that the best lr lies inside the sweep where it can."""
    low_rule = min(runs, key=lambda r: r.lr).rule
    high_rule = max(runs, key=lambda r: r.lr).rule
    low = high = 0
    while True:
        top = best(runs, done)
        if top is None:
            return runs
        lrs = [r.lr for r in runs]
        if top.lr == min(lrs) and low < most:
            low += 1
            runs.append(Run(top.arm, top.batch, min(lrs) / factor, 0,
                            low_rule and f'{low_rule}/{factor**low:g}'))
        elif top.lr == max(lrs) and high < most:
            high += 1
            runs.append(Run(top.arm, top.batch, max(lrs) * factor, 0,
                            high_rule and f'{high_rule} x{factor**high:g}'))
        else:
            return runs


def best(runs: Sequence[Run], done: Dict[str, Record]) -> Optional[Run]:
    """The best seed-0 run of a finished sweep (lower lr on a tie)."""
    if not all(r.name in done for r in runs):
        return None
    return max(runs, key=lambda r: (score(done[r.name]), -r.lr))


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
    for arm, lrs in BASELINE_LRS.items():  # a 2-3 point sweep each
        runs += extend([Run(arm, batch, lr) for lr in lrs], done, factor=3,
                       most=1)
    return runs


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
