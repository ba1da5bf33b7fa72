"""Per-module gradient variance at several batch sizes (the AGVM paper's
Figure 1) for any mmdet / mmseg config.

Trains the config for --steps optimizer steps at each --batches global batch
size (same config and seed; lr as configured unless --lr-scaling), records
each module's Phi_m = 1 - cos(g_A, g_B) at every --interval-th step, writes a
CSV and a figure (one panel per batch size, one line per module) and prints a
summary. Without --agvm nothing is modulated: the run is the configured
optimizer, AGVM only measures.

    python tools/analysis_tools/gradient_variance.py CONFIG \
        --batches 32 256 512 1024 --steps 200 [--nproc 8] \
        [--batch-per-proc 4] [--interval 1] [--agvm] \
        [--lr-scaling none|sqrt|linear --base-batch 32] \
        [--schedule steps|iters|constant] [--seed 0] [--work-dir DIR] \
        [--out FIG.png] [--csv FILE.csv] [--cfg-options k=v ...]
    python tools/analysis_tools/gradient_variance.py --plot-only FILE.csv \
        [--out FIG.png] [--title TEXT]

Global batch = nproc x batch-per-proc x accumulative_counts; with one
process the accumulation must be even and >= 2.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmengine.config import DictAction  # noqa: E402

from agvm_mm.analysis import (plot_gradient_variance, read_rows,  # noqa: E402
                              run_analysis, summarize)


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
    run_analysis(
        args.config, args.batches, args.steps, nproc=args.nproc,
        batch_per_proc=args.batch_per_proc, interval=args.interval,
        agvm=args.agvm, lr_scaling=args.lr_scaling,
        base_batch=args.base_batch, schedule=args.schedule, seed=args.seed,
        work_dir=args.work_dir, out_csv=args.csv, out_png=args.out,
        cfg_options=args.cfg_options)


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
