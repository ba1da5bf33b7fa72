"""The main job: shapes data -> train a detector with AGVM -> evaluate -> plot.

    python tools/main_job.py [--config CFG] [--work-dir DIR] [--iters N]
        [--threads T]

Generates the built-in shapes dataset once (data/shapes), trains the config
(RetinaNet with AGVM by default) through tools/train.py with its log
streamed, evaluates the final checkpoint through tools/test.py, writes a PNG
of each module's variance Phi and factor s over training next to the logs,
and prints the metrics and where everything is.

The run is reproducible on a given machine: the config fixes the seed, the
data loads in the main process in a seeded order, and the tools run with a
fixed number of torch threads (``--threads``, default 1, whatever
OMP_NUM_THREADS says), because CPU convolutions and reductions split their
sums by thread and so round differently with another thread count.
"""
import argparse
import glob
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
DEFAULT_CONFIG = 'configs/shapes/retinanet_tiny_shapes_agvm.py'


def run(args, threads: int) -> str:
    """Run a tool with ``threads`` torch threads, streaming its output;
    return the output."""
    from tools.harness.process import run_tool, tool_env
    env = tool_env(threads=threads)

    def show(line: str) -> None:
        if ' - mmengine - ' in line or line.startswith(('{', 'Average')):
            print(line, end='', flush=True)

    result = run_tool([sys.executable] + args, env, cwd=ROOT, on_line=show,
                      keep=None)
    if result.returncode:
        print(''.join(result.lines[-60:]))
        raise SystemExit(f'{args[0]} failed with exit code '
                         f'{result.returncode}')
    return result.output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    parser.add_argument('--iters', type=int, default=None,
                        help='override train_cfg.max_iters (runner iters)')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of training and evaluation '
                        '(default 1; the metrics depend on it slightly)')
    args = parser.parse_args()
    start = time.time()

    from agvm_mm.datasets import generate_shapes
    from tools.harness.plot import plot_agvm, read_agvm_scalars
    info = generate_shapes(osp.join(ROOT, 'data/shapes'), args.num_train,
                           args.num_val)
    print(f'[main job] shapes data: {info["out_dir"]} '
          f'({"reused" if info["skipped"] else "generated"})', flush=True)

    work_dir = osp.abspath(osp.join(ROOT, args.work_dir))
    options = []
    if args.iters:
        options = ['--cfg-options', f'train_cfg.max_iters={args.iters}',
                   f'train_cfg.val_interval={args.iters}']
    print(f'[main job] training {args.config} -> {work_dir}', flush=True)
    run(['tools/train.py', args.config, '--work-dir', work_dir] + options,
        args.threads)

    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print(f'[main job] evaluating {checkpoint}', flush=True)
    out = run(['tools/test.py', args.config, checkpoint, '--work-dir',
               osp.join(work_dir, 'test')], args.threads)
    metrics = out.strip().splitlines()[-1]

    scalars = sorted(glob.glob(osp.join(work_dir, '*/vis_data/scalars.json')))
    plot = None
    if scalars and read_agvm_scalars(scalars[-1])[0]:  # none without AGVM
        plot = plot_agvm(scalars[-1], osp.join(work_dir, 'agvm_factors.png'),
                         title=osp.basename(args.config))
    print('\n[main job] done in %.1f min' % ((time.time() - start) / 60))
    print(f'[main job] final metrics: {metrics}')
    print(f'[main job] work dir (logs, checkpoints): {work_dir}')
    print(f'[main job] scalars: {scalars[-1] if scalars else None}')
    print(f'[main job] AGVM plot: {plot}')


if __name__ == '__main__':
    main()
