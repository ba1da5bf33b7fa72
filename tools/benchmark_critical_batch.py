"""How large can the batch get on the shapes data? Each module's critical
batch (the simple gradient noise scale ``B_noise``, docs/algorithm.md §9)
for RetinaNet and Faster R-CNN at batches 8, 32 and 128, from the
pretrained and from the random-init backbone, with the gradient-variance
tool.

    python tools/pretrain_backbone.py              # once (the checkpoint)
    python tools/benchmark_critical_batch.py [--jobs 2] [--steps 60]
        [--out docs/results] [--report-only]

Setup: the paper-regime configs
(configs/shapes/{retinanet,faster-rcnn}_tiny_shapes_paper_agvm.py), 4000
training images in data/shapes (as tools/benchmark_paper_regime.py),
AGVM measuring only (training is plain SGD), lr 0.01 constant, one process
of 4 images per micro-batch (global batch 8, 32, 128 = 2, 8, 32 accumulated
micro-batches), ``--steps`` optimizer steps from the start of training,
seed 0, one torch thread per run. "pretrained": the tiny ResNet-18 of
tools/pretrain_backbone.py with stem and stage 1 and BN statistics frozen;
"random": the same backbone from random init, nothing frozen, BN training
(tools/paper_regime's contrast). ``B_noise`` per module and batch: the mean
``tr(Sigma)`` over the mean ``|G|^2`` over the last half of the steps.
Each (family, backbone) is one gradient-variance run under
work_dirs/critical_batch/, skipped when its CSV is there; the report
(critical_batch.md, .json and one figure per run) is written to ``--out``.

How the table is read (fixed before the runs, issue 21):

- a module's estimate is *steady across batch* when its ``B_noise`` at 8,
  32 and 128 lie within a factor 2 of their geometric mean, else it
  *drifts*;
- batch 128 is *beyond* a module's critical batch when ``B_noise(128)`` <
  64, *near* it when in [64, 256], *below* it when above 256;
- the estimate is *consistent with* the miniatures' loss at batch 128 (SGD
  lost 20.5 mAP to batch 8 in the authors' regime, pretrained backbone) if
  batch 128 is beyond every module's critical batch from the pretrained
  backbone, and *not consistent* if it is below any module's.
"""
import argparse
import json
import math
import os
import os.path as osp
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Tuple

from checkout import ROOT  # this checkout, first on sys.path

from tools.harness.process import run_tool, tool_env
from tools.harness.variance import (critical_batches,
                                    describe_critical_batch, modules_of,
                                    read_rows)
from tools.paper_regime.grid import NUM_TRAIN, RANDOM_INIT
from tools.pretrain_backbone import CHECKPOINT

FAMILIES = {'retinanet': 'configs/shapes/retinanet_tiny_shapes_paper_agvm.py',
            'faster_rcnn':
            'configs/shapes/faster-rcnn_tiny_shapes_paper_agvm.py'}
BACKBONES = ('pretrained', 'random')
BATCHES = (8, 32, 128)
WORK = 'work_dirs/critical_batch'


def run_one(family: str, backbone: str, steps: int, threads: int) -> str:
    """The gradient-variance run of one (family, backbone); its CSV."""
    work = osp.join(ROOT, WORK, f'{family}-{backbone}')
    csv = osp.join(work, 'gradient_variance.csv')
    if osp.exists(csv):
        return csv
    options = ['optim_wrapper.optimizer.lr=0.01']
    if backbone == 'random':
        options += list(RANDOM_INIT)
    argv = [sys.executable, 'tools/analysis_tools/gradient_variance.py',
            FAMILIES[family], '--batches', *map(str, BATCHES),
            '--batch-per-proc', '4', '--steps', str(steps), '--interval', '1',
            '--schedule', 'constant', '--seed', '0', '--work-dir', work,
            '--cfg-options', *options]
    os.makedirs(work, exist_ok=True)
    log = osp.join(work, 'run.log')
    result = run_tool(argv, tool_env(threads=threads), cwd=ROOT,
                      log_path=log)
    if result.returncode:
        raise RuntimeError(f'{family}-{backbone}: the gradient-variance run '
                           f'failed with exit code {result.returncode} (see '
                           f'{log})')
    return csv


def judge(values: Dict[int, float]) -> Tuple[str, str]:
    """(steady or drifts, where batch 128 is) by the rule above."""
    finite = [v for v in values.values() if math.isfinite(v) and v > 0]
    if len(finite) == len(values):
        mean = math.exp(sum(map(math.log, finite)) / len(finite))
        steady = ('steady' if all(mean / 2 <= v <= 2 * mean for v in finite)
                  else 'drifts')
    else:
        steady = 'drifts'
    b128 = values.get(128, math.nan)
    if math.isnan(b128):
        where = 'no estimate'
    elif math.isinf(b128) or b128 > 256:
        where = 'below'
    elif b128 < 64:
        where = 'beyond'
    else:
        where = 'near'
    return steady, where


def write_report(results: Dict[str, Dict[int, Dict[str, float]]],
                 out: str, steps: int, checkpoint: str) -> str:
    lines = ['# Critical batch per module on the shapes data', '',
             'Written by `python tools/benchmark_critical_batch.py` (its '
             'docstring has the setup and the rule for reading the table, '
             f'fixed before the runs); {steps} optimizer steps per batch, '
             'B_noise over the last half of them, in images. The pretrained '
             f'backbone: {checkpoint} (sha256 prefix, held-out accuracy %).',
             '']
    verdict_rows = []
    for key, by_batch in results.items():
        family, backbone = key.split('-')
        modules = list(next(iter(by_batch.values())))
        lines += [f'## {family}, {backbone} backbone', '',
                  '| module | ' + ' | '.join(f'b{b}' for b in BATCHES) +
                  ' | across batch | batch 128 |',
                  '|---|' + '---|' * (len(BATCHES) + 2)]
        for m in modules:
            values = {b: by_batch[b][m] for b in BATCHES}
            steady, where = judge(values)
            if backbone == 'pretrained':
                verdict_rows.append(where)
            lines.append(f'| {m} | ' + ' | '.join(
                describe_critical_batch(values[b]) for b in BATCHES) +
                f' | {steady} | {where} |')
        lines += ['', f'![{key}](critical_batch_{key}.png)', '']
    if verdict_rows and all(w == 'beyond' for w in verdict_rows):
        verdict = 'consistent with'
    elif any(w == 'below' for w in verdict_rows):
        verdict = 'not consistent with'
    else:
        verdict = 'neither consistent nor inconsistent with'
    lines += [f'Reading (the rule): the estimate is {verdict} the '
              "miniatures' loss at batch 128 (pretrained backbone).", '']
    path = osp.join(out, 'critical_batch.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--steps', type=int, default=60)
    parser.add_argument('--out', default='docs/results')
    parser.add_argument('--report-only', action='store_true')
    args = parser.parse_args()
    os.chdir(ROOT)
    keys = [(f, b) for f in FAMILIES for b in BACKBONES]
    if not args.report_only:
        if not osp.exists(CHECKPOINT):
            raise SystemExit(f'{CHECKPOINT} is missing: run python '
                             'tools/pretrain_backbone.py first.')
        from agvm_mm.datasets import generate_shapes
        generate_shapes('data/shapes', NUM_TRAIN, 200)
        with ThreadPoolExecutor(args.jobs) as pool:
            for csv in pool.map(lambda k: run_one(*k, args.steps,
                                                  args.threads), keys):
                print(f'done: {csv}', flush=True)
    os.makedirs(args.out, exist_ok=True)
    results: Dict[str, Dict[int, Dict[str, float]]] = {}
    for family, backbone in keys:
        key = f'{family}-{backbone}'
        work = osp.join(WORK, key)
        csv = osp.join(work, 'gradient_variance.csv')
        if not osp.exists(csv):
            continue
        rows = read_rows(csv)
        results[key] = critical_batches(rows)
        shutil.copy(csv, osp.join(args.out, f'critical_batch_{key}.csv'))
        png = osp.join(work, 'gradient_variance.png')
        if osp.exists(png):
            shutil.copy(png, osp.join(args.out, f'critical_batch_{key}.png'))
        print(f'{key}: modules {modules_of(rows)}')
    with open(osp.join(args.out, 'critical_batch.json'), 'w') as f:
        json.dump({k: {str(b): v for b, v in by.items()}
                   for k, by in results.items()}, f, indent=1)
    from tools.paper_regime.driver import checkpoint_id
    verdict = write_report(results, args.out, args.steps,
                           checkpoint_id(CHECKPOINT)
                           if osp.exists(CHECKPOINT) else 'missing')
    print(open(osp.join(args.out, 'critical_batch.md')).read())
    print(f'verdict: {verdict}')


if __name__ == '__main__':
    main()
