"""Does the noise-scale plan (tools/analysis_tools/plan_batch.py) keep the
small-batch accuracy at 4x the batch, and does AGVM add to it? The shapes
miniature of tools/benchmark_paper_regime.py (RetinaNet, pretrained tiny
ResNet-18, the authors' schedule shape), over tools/reproduce.py.

    python tools/benchmark_plan_batch.py [--jobs 2] [--threads 1]
        [--plan] [--report-only] [--out docs/results]

Runs, in this order (issue 30):

1. the batch-8 reference: SGD at lr 0.01 (the linear rule, the grid's
   reference), 13 epochs of 4000 images, seeds 0 and 1, every checkpoint
   kept (one each 10 % of the run);
2. the measurement: plan_batch.py on the reference's own config measures
   the whole model's ``B_noise`` (both estimates summed over modules before
   the ratio) at batch 8 from the start of training and at the seed-0
   reference's checkpoints at 20 %, 50 % and 100 % of its run (weights
   held, ``MEASURE_STEPS`` steps each), and plans batches 32, 64 and 128
   from the last one (``large_batch_plan``: the value near the end of
   training; if it gives no plan, the experiment stops there and says
   so). Written once to plan_batch_measure.json and reused;
3. batch 32 (4x) at the planned lr: SGD for the planned epochs and SGD +
   AGVM for the planned epochs, seeds 0 and 1, then SGD for the
   reference's 13 epochs (seed 0), the plan without its longer run;
4. outside the verdicts (added after the plan from the end diverged in
   two of its first three runs): SGD at the plan from the measurement at
   20 % of the reference, before its lr decays, seeds 0 and 1.

The pretrained backbone is this experiment's own, committed beside its
results (docs/results/plan_batch/), so that the grid continues on another
machine with the same weights: pretraining gives another checkpoint on
every machine (93.2-94.1 % held out), which is why the reference is rerun
here rather than taken from the paper-regime grid. "SGD" is the AGVM
wrapper with ``agvm.modulate=False`` (plain SGD bit for bit), as in the
grid. Finished runs are skipped (records in plan_batch.json first, then the
work dirs), so the command continues an interrupted experiment.

Verdict rule (fixed before the runs; issue 30), diverged runs counted as
0 mAP, means over seeds 0 and 1:

- *the plan recovers the reference* if SGD at the planned lr and epochs
  is at most 1.5 mAP below the reference, *does not recover* otherwise;
- at the planned lr and epochs, *AGVM wins* if its mean is at least
  1.0 mAP above SGD's, *loses* if at least 1.0 below, *ties* otherwise.

The same measurement also plans batches 64 and 128, which the report puts
beside the paper-regime grid's best SGD lrs there (0.02 and 0.0283, another
backbone) and the fixed rules, with no new training.
"""
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from typing import Dict, List, Optional, Sequence

from checkout import ROOT  # this checkout, first on sys.path

from benchmark_paper_regime import pretrain_backbone
from tools.paper_regime.driver import checkpoint_id, drive, parse_args
from tools.paper_regime.grid import (EPOCHS, RULES, Record, Run,
                                     read_record, reproduce_argv)
from tools.harness.results import read_json
from tools.pretrain_backbone import CHECKPOINT

from agvm_mm import large_batch_plan

BASE_BATCH, BASE_LR, TARGET = 8, 0.01, 32
GRID_BEST_SGD = {64: 0.02, 128: 0.02828}  # docs/results/paper_regime.md
SEEDS = (0, 1)
KEEP_ALL = 'default_hooks.checkpoint.max_keep_ckpts=-1'
# the seed-0 reference's checkpoints the plan measures at (runner
# iterations of its 13000, micro-batches of 4: 20 %, 50 %, the end) and the
# optimizer steps of each measurement
POINTS = {'early': 2600, 'middle': 6500, 'end': 13000}
MEASURE_STEPS = 100
BACKBONE_DIR = 'docs/results/plan_batch'
MEASURE_FILE = 'plan_batch_measure.json'
EXPLORE_RULE = 'planned at 20 %'


def reference(seed: int, backbone: str) -> Run:
    return Run('sgd', BASE_BATCH, BASE_LR, seed, 'linear',
               (KEEP_ALL, backbone))


def plan(done: Dict[str, Record], measured: Optional[dict],
         backbone: str) -> List[Run]:
    """The runs so far: the references, and the batch-32 runs once the
    measurement has planned them."""
    runs = [reference(s, backbone) for s in SEEDS]
    if measured is None or not measured.get('plan'):
        return runs
    target = measured['plan'][str(TARGET)]
    lr, epochs = round(target['lr'], 5), round(EPOCHS * target['epochs'], 2)
    for seed in SEEDS:
        runs += [Run(arm, TARGET, lr, seed, 'planned', (backbone, ),
                     epochs=epochs) for arm in ('sgd', 'agvm')]
    runs.append(Run('sgd', TARGET, lr, 0, 'planned lr', (backbone, )))
    return runs + explore(measured, backbone)


def explore(measured: dict, backbone: str) -> List[Run]:
    """After the rule's runs, outside its verdicts (added once the plan from
    the end of the reference had diverged twice): SGD at the plan from the
    measurement at 20 % of the reference, where its lr is still at its
    peak, as the README advises, seeds 0 and 1. (The 50 % point plans 2.5x
    the epochs, which did not fit the session.)"""
    point = f'iter_{POINTS["early"]}.pth'
    [noise] = [m['noise_scale'] for m in measured['measurements']
               if m['label'].endswith(point)]
    target = large_batch_plan(BASE_BATCH, BASE_LR, noise, TARGET)
    lr, epochs = round(target['lr'], 5), round(EPOCHS * target['epochs'], 2)
    return [Run('sgd', TARGET, lr, seed, EXPLORE_RULE, (backbone, ),
                epochs=epochs) for seed in SEEDS]


def read_measured(out: str) -> Optional[dict]:
    """The measurement and plan (committed), or None before it."""
    return read_json(osp.join(out, MEASURE_FILE))


def measure(done: Dict[str, Record], work_root: str, out: str,
            backbone: str) -> None:
    """plan_batch.py at the seed-0 reference's checkpoints, once (its
    result is committed), when the reference has finished."""
    ref = reference(0, backbone)
    if read_measured(out) is not None or ref.name not in done:
        return
    work_dir = _work_dir(ref, work_root)
    # the config as the reference trained it (the runner's dump, with the
    # backbone and seed options merged)
    [config] = glob.glob(osp.join(work_dir, '*.py'))
    ckpts = [osp.join(work_dir, f'iter_{i}.pth') for i in POINTS.values()]
    missing = [c for c in ckpts if not osp.exists(c)]
    if missing:
        raise SystemExit(f'the reference finished without {missing}: rerun '
                         'it (its work dir without results.json)')
    argv = [sys.executable, osp.join(ROOT, 'tools', 'analysis_tools',
                                     'plan_batch.py'), config,
            '--target-batch', str(TARGET), *map(str, GRID_BEST_SGD),
            '--checkpoint', *ckpts, '--steps', str(MEASURE_STEPS),
            '--out-dir', osp.join(work_root, 'plan'), '--json',
            osp.join(out, MEASURE_FILE)]
    print('[plan batch] measure: ' + ' '.join(argv), flush=True)
    subprocess.run(argv, cwd=ROOT, check=True)


def _work_dir(run: Run, work_root: str) -> str:
    """The reproduce cell's work dir (one cell per run)."""
    with open(osp.join(run.work_root(work_root), 'results.json')) as f:
        [cell] = json.load(f)['cells']
    return osp.join(run.work_root(work_root),
                    *cell['work_dir'].split(os.sep)[-2:])


def collect(work_root: str, out: str, backbone: str) -> Dict[str, Record]:
    runs = (read_json(osp.join(out, 'plan_batch.json')) or {}).get('runs', [])
    known = {r['run']: Record(**r) for r in runs}
    done = {}
    for run in plan({}, read_measured(out), backbone):
        record = known.get(run.name) or read_record(run, work_root)
        if record is not None:
            done[run.name] = record
    return done


def verdicts(done: Dict[str, Record], measured: Optional[dict],
             backbone: str) -> List[str]:
    """The rule's two verdicts with their figures, or what is missing."""
    runs = plan(done, measured, backbone)

    def picked(arm: str, batch: int, rule: str) -> List[Record]:
        return [done[r.name] for r in runs if r.arm == arm and
                r.batch == batch and r.rule == rule and r.name in done]

    def mean(arm: str, batch: int, rule: str) -> Optional[List[float]]:
        records = picked(arm, batch, rule)
        if len(records) < len(SEEDS):
            return None
        return [r.bbox_mAP or 0.0 for r in records]

    ref = mean('sgd', BASE_BATCH, 'linear')
    sgd, agvm = (mean(arm, TARGET, 'planned') for arm in ('sgd', 'agvm'))
    lines = []
    if ref is None or sgd is None:
        lines.append('Plan recovers the reference: pending')
    else:
        gap = sum(ref) / 2 - sum(sgd) / 2
        word = 'recovers' if gap <= 1.5 else 'does not recover'
        lines.append(f'Plan recovers the reference: **{word}** (reference '
                     f'b{BASE_BATCH} {sum(ref) / 2:.2f} mAP, seeds {ref}; '
                     f'SGD b{TARGET} at the planned lr and epochs '
                     f'{sum(sgd) / 2:.2f}, seeds {sgd}; gap {gap:.2f})')
    if sgd is None or agvm is None:
        lines.append('AGVM against SGD at the plan: pending')
    else:
        gain = sum(agvm) / 2 - sum(sgd) / 2
        word = 'wins' if gain >= 1.0 else 'loses' if gain <= -1.0 else 'ties'
        lines.append(f'AGVM against SGD at the plan: **AGVM {word}** (SGD + '
                     f'AGVM {sum(agvm) / 2:.2f}, seeds {agvm}; gain '
                     f'{gain:.2f})')
        lost = [sorted(r.seed for r in picked(arm, TARGET, 'planned')
                       if r.diverged) for arm in ('sgd', 'agvm')]
        if all(lost) and lost[0] != lost[1]:
            lines[-1] += (f'; the arms diverged on different seeds (SGD '
                          f'{lost[0]}, SGD + AGVM {lost[1]}): the gap is '
                          'which seeds survived, not a measured gain')
    return lines


def write_report(done: Dict[str, Record], measured: Optional[dict],
                 out: str, backbone: str) -> None:
    runs = [r for r in plan(done, measured, backbone) if r.name in done]
    records = [done[r.name] for r in runs]
    with open(osp.join(out, 'plan_batch.json'), 'w') as f:
        json.dump(dict(runs=[asdict(r) for r in records]), f, indent=1)
    lines = ['# The planned large batch on the shapes data', '',
             'Written by `python tools/benchmark_plan_batch.py` (its '
             'docstring has the setup and the verdict rule, fixed before the '
             'runs). RetinaNet, pretrained tiny ResNet-18 (this '
             f'experiment\'s, `{BACKBONE_DIR}/`), COCO bbox mAP (%) on 200 '
             'validation images.', '']
    lines += [f'* {v}' for v in verdicts(done, measured, backbone)]
    if measured:
        lines += ['', '## The measurement', '',
                  'At the seed-0 reference\'s checkpoints (their paths and '
                  'the leaf configs\' are in the work root).', '',
                  _file_names(measured['table']), '',
                  f'Planned from: {_file_names(measured["planned_from"])}, '
                  'the last checkpoint, as the tool chose when the rule was '
                  'fixed (it now takes the last one saved before the lr '
                  'decayed).',
                  '',
                  '## Against the paper-regime grid (no new training)', '',
                  'The lr planned from each measurement along the reference '
                  '(its ratio to the grid\'s best SGD lr, found there by '
                  'sweeping with another backbone) beside the fixed rules, '
                  'all three of which diverged there.', '']
        points = [(_point(m['label']), m['noise_scale'])
                  for m in measured['measurements']]
        lines += ['| batch | grid\'s best SGD lr | ' + ' | '.join(
            f'planned from {name}' for name, _ in points) + ' | ' +
            ' | '.join(rule for rule, _ in RULES) + ' |',
            '|---|---|' + '---|' * (len(points) + len(RULES))]
        for batch, best_lr in GRID_BEST_SGD.items():
            planned = [large_batch_plan(BASE_BATCH, BASE_LR, noise,
                                        batch)['lr'] for _, noise in points]
            lines.append(f'| {batch} | {best_lr:.4g} | ' + ' | '.join(
                f'{lr:.4g} ({lr / best_lr:.2f}x)' for lr in planned) +
                ' | ' + ' | '.join(f'{lr(batch):.4g}' for _, lr in RULES)
                + ' |')
    lines += ['', '| optimizer | batch | lr | epochs | seed | steps | '
              'bbox mAP | final loss | note |', '|---|---|---|---|---|---|---|'
              '---|---|']
    for run, r in zip(runs, records):
        mAP = 'NaN' if r.bbox_mAP is None else f'{r.bbox_mAP:.1f}'
        loss = '—' if r.final_train_loss is None else \
            f'{r.final_train_loss:.3f}'
        notes = ['diverged'] if r.diverged else []
        if run.rule == EXPLORE_RULE:
            notes.append('exploratory: planned from the 20 % measurement, '
                         'not in the verdicts')
        if r.optimizer == 'SGD + AGVM' and r.mean_factors:
            notes.append('mean s ' + ', '.join(
                f'{m} {v:.2f}' for m, v in r.mean_factors.items()))
        lines.append(f'| {r.optimizer} | {r.batch} | {r.lr:.4g} | '
                     f'{run.epochs:g} | {r.seed} | {r.steps} | {mAP} | '
                     f'{loss} | {"; ".join(notes)} |')
    with open(osp.join(out, 'plan_batch.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def _point(label: str) -> str:
    """A measurement's place along the reference: 'start', '20 %', ..."""
    for at in POINTS.values():
        if label.endswith(f'iter_{at}.pth'):
            return f'{100 * at // POINTS["end"]} %'
    return label


def _file_names(text: str) -> str:
    """``text`` with each absolute path of a checkpoint or config cut to its
    file name (the work root is this machine's)."""
    return re.sub(r'/[^\s|]*/([^/\s|]+\.(?:pth|py))\b', r'\1', text)


def own_backbone(out: str) -> str:
    """The experiment's backbone checkpoint (committed beside its results):
    this machine's pretraining, copied there the first time."""
    folder = osp.join(ROOT, BACKBONE_DIR)
    path = osp.join(folder, osp.basename(CHECKPOINT))
    if not osp.exists(path):
        pretrain_backbone()
        os.makedirs(folder, exist_ok=True)
        for src in (CHECKPOINT, osp.splitext(CHECKPOINT)[0] + '.json'):
            shutil.copy(osp.join(ROOT, src), folder)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__, 'work_dirs/plan_batch', argv)
    path = own_backbone(args.out)
    # relative to the checkout (the runs' working directory): the same
    # option, so the same run, from any worktree (an absolute path changed
    # reproduce's fingerprint of a run, which then started it over)
    option = ('model.backbone.init_cfg.checkpoint='
              f'{osp.relpath(path, ROOT)}')

    def measured() -> Optional[dict]:
        return read_measured(args.out)

    def between(done: Dict[str, Record]) -> None:
        measure(done, args.work_root, args.out, option)

    def report(done: Dict[str, Record]) -> None:
        write_report(done, measured(), args.out, option)

    done = collect(args.work_root, args.out, option)
    if args.plan or args.report_only:
        for run in plan(done, measured(), option):
            print(('done   ' if run.name in done else 'pending') + ' ' +
                  ' '.join(reproduce_argv(run, args.work_root)[2:]))
        if args.report_only:
            report(done)
        return 0
    done = drive('plan batch', lambda: collect(args.work_root, args.out,
                                               option),
                 lambda d: plan(d, measured(), option), report,
                 args.work_root, args.jobs, args.threads,
                 checkpoint_id(path), between)
    report(done)
    print(open(osp.join(args.out, 'plan_batch.md')).read())
    return 0


if __name__ == '__main__':
    sys.exit(main())
