"""Reproduce a grid of the AGVM paper's tables with one command.

Cluster (the paper's configs, configs/<family>/, one launch per cell):
    python tools/reproduce.py --families retinanet faster_rcnn \\
        --batches 32 256 512 --optims sgd agvm lamb \\
        --launcher slurm --partition PART [--dry-run]
    python tools/reproduce.py ... --launcher pytorch     # tools/dist_train.sh

Local (a miniature grid on the shapes data, one process, configs/shapes/):
    python tools/reproduce.py --local --families retinanet \\
        --batches 32:sgd 256 512 --optims sgd agvm lamb [--epochs 12] \\
        [--jobs 2]

Each cell trains into work_dirs/reproduce/<family>/<optim>-b<B>; finished
cells are skipped unless --force; an interrupted local cell resumes from
its last checkpoint (one every ~10 % of its steps). The table
(results.md), the numbers (results.json) and the plot (results.png) are
written into --out-dir from the runs' own logs. Diverged runs are stopped by DivergenceHook and shown
as NaN.
"""
import argparse
import shlex
import sys

import checkout  # noqa: F401  this checkout first on sys.path

from tools import harness as R


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 1)[1])
    grid = parser.add_argument_group('grid')
    grid.add_argument('--families', nargs='+', default=['retinanet'],
                      help=f'any of {sorted(R.FAMILIES)}')
    grid.add_argument('--batches', nargs='+', required=True,
                      metavar='B[:OPT,...]',
                      help='global batch sizes; B:OPT,OPT runs only those '
                      'optimizers at B (e.g. 32:sgd, a reference row)')
    grid.add_argument('--optims', nargs='+', default=['sgd', 'agvm'],
                      help=f'any of {list(R.OPTIMS)}')
    mode = parser.add_argument_group('mode')
    mode.add_argument('--local', action='store_true',
                      help='miniature grid on the shapes data (one process)')
    mode.add_argument('--launcher', choices=['slurm', 'pytorch'],
                      help='cluster mode: tools/slurm_train.sh or '
                      'tools/dist_train.sh with the G of each config name')
    cluster = parser.add_argument_group('cluster mode')
    cluster.add_argument('--partition', help='slurm partition (default: '
                         '$PARTITION)')
    cluster.add_argument('--job-name', help='slurm job name prefix '
                         '(default: $JOB, else "agvm")')
    cluster.add_argument('--gpus-per-node', type=int, default=8)
    cluster.add_argument('--model', help='substring of the model part of the '
                         'config name where a cell has several (e.g. swin)')
    local = parser.add_argument_group('local mode')
    local.add_argument('--batch-per-proc', type=int,
                       help='images per micro-batch (default: the shapes '
                       "config's); accumulation = batch / this")
    local.add_argument('--epochs', type=float,
                       help="epochs for every batch size (default: the "
                       "shapes config's on this data)")
    local.add_argument('--lr-scaling', choices=['sqrt', 'linear'],
                       default='sqrt')
    local.add_argument('--base-lr', nargs='+', default=[], metavar='OPT=LR',
                       help="lr at the shapes config's batch B0, per "
                       'optimizer: a number, or xM for M times the default '
                       "(the config's SGD lr; Adam family 1e-4*sqrt(B0/16))")
    local.add_argument('--num-train', type=int,
                       help='training images of data/shapes: generated '
                       'when missing (default 2000, as the main job) or '
                       'regenerated when it holds another number')
    local.add_argument('--num-val', type=int, default=200)
    common = parser.add_argument_group('common')
    common.add_argument('--work-root', default='work_dirs/reproduce')
    common.add_argument('--out-dir', help='table and plot (default: '
                        '--work-root)')
    common.add_argument('--dry-run', action='store_true',
                        help='write the cell configs, print the commands, '
                        'launch nothing')
    common.add_argument('--force', action='store_true',
                        help='re-run finished cells (the old work dir is '
                        'moved to <dir>.old-<time>)')
    common.add_argument('--jobs', type=int, default=1,
                        help='cells run at once (default 1); each gets '
                        'cores/jobs threads and, on several GPUs, its own '
                        'GPU (local mode)')
    common.add_argument('--verbose', action='store_true',
                        help="stream the trainings' own log lines")
    common.add_argument('--timeout', type=float,
                        help='seconds per cell before it is killed')
    common.add_argument('--max-loss', type=float,
                        help='local mode: a finite loss above this also '
                        'counts as diverged')
    common.add_argument('--no-divergence-hook', action='store_true')
    common.add_argument('--train-args', default='',
                        help='extra tools/train.py options, one string')
    common.add_argument('--report-only', action='store_true',
                        help='only (re)write the table and plot')
    args = parser.parse_args(argv)
    if args.local == bool(args.launcher):
        parser.error('choose one mode: --local or --launcher slurm|pytorch')
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    try:
        args.families = [R.normalize_family(f) for f in args.families]
        args.optims = [R.normalize_optim(o) for o in args.optims]
        args.batches, args.only = R.parse_batches(args.batches, args.optims)
        if any('=' not in item for item in args.base_lr):
            raise ValueError('--base-lr takes OPT=LR items, e.g. lars=x10 '
                             'or lamb=0.001')
        args.base_lr = {R.normalize_optim(k): v for k, v in (
            item.split('=', 1) for item in args.base_lr)}
        for value in args.base_lr.values():
            R.parse_base_lr(value, 1.0)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    common = dict(work_root=args.work_root,
                  divergence_hook=not args.no_divergence_hook,
                  train_args=shlex.split(args.train_args))
    if args.local:
        if not args.dry_run and not args.report_only:
            ensure_data(args)
        cells = R.plan_local(args.families, args.batches, args.optims,
                             R.LocalOptions(
                                 batch_per_proc=args.batch_per_proc,
                                 epochs=args.epochs,
                                 lr_scaling=args.lr_scaling,
                                 base_lrs=args.base_lr,
                                 max_loss=args.max_loss, **common))
    else:
        try:
            cells = R.plan_cluster(args.families, args.batches, args.optims,
                                   R.ClusterOptions(
                                       launcher=args.launcher,
                                       partition=args.partition,
                                       job_name=args.job_name,
                                       gpus_per_node=args.gpus_per_node,
                                       model=args.model, **common))
        except ValueError as error:
            print(f'tools/reproduce.py: {error}', file=sys.stderr)
            return 2
    cells = R.restrict_cells(cells, args.only)
    if not args.report_only:
        try:
            R.run_grid(cells, dry_run=args.dry_run, force=args.force,
                       verbose=args.verbose, timeout=args.timeout,
                       jobs=args.jobs)
        except KeyboardInterrupt:
            print('[reproduce] interrupted: run the same command again to '
                  'continue (finished cells are skipped)', flush=True)
            return 130
    if args.dry_run:
        return 0
    paths = R.write_report(cells, args.out_dir or args.work_root)
    with open(paths['markdown']) as f:
        print('\n' + f.read())
    print(f'[reproduce] table: {paths["markdown"]}\n[reproduce] numbers: '
          f'{paths["json"]}\n[reproduce] plot: {paths["png"]}')
    return 0


def ensure_data(args) -> None:
    """The shapes data where the shapes configs expect it (data/shapes under
    the current directory): generated when missing, regenerated when
    --num-train asks for another size, else reused as it is."""
    from agvm_mm.datasets import generate_shapes
    size = R.data_size('data/shapes/')
    if size is not None and args.num_train in (None, size):
        return
    num_train = args.num_train or 2000
    print(f'[reproduce] generating the shapes data in data/shapes '
          f'({num_train} training images)', flush=True)
    info = generate_shapes('data/shapes', num_train, args.num_val)
    if R.data_size('data/shapes/') != num_train:
        raise SystemExit(f'data/shapes: expected {num_train} training '
                         f'images after generation, see {info["out_dir"]}')


if __name__ == '__main__':
    sys.exit(main())
