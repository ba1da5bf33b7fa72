"""The main job: shapes data -> train a detector with AGVM -> evaluate -> plot.

    python tools/main_job.py [--config CFG] [--work-dir DIR] [--nproc 2]
        [--iters N] [--threads T]

Generates the built-in shapes dataset once (data/shapes), trains the config
(RetinaNet with AGVM by default) on ``--nproc`` processes with its log
streamed, evaluates the final checkpoint through tools/test.py, writes a PNG
of each module's variance Phi, factor s and critical batch over training
next to the logs, and prints the metrics and where everything is.

Two processes (the default) run the way tools/dist_train.sh runs on two
GPUs (gloo on the CPU): AGVM's two estimates are the two ranks' halves of
the batch. The config is run with the same global batch and the same
optimizer steps as written for one process: its accumulative_counts, the
runner iterations and the iteration-based schedules divided by the number
of processes (the config run is written to the work dir). ``--nproc 1``
runs the config as it is (the halves of its accumulated micro-batches).

The run is reproducible on a given machine: the config fixes the seed, the
data load in each process in the seeded order of its sampler, and every
process runs with a fixed number of torch threads (``--threads``, default
1, whatever OMP_NUM_THREADS says), because CPU convolutions and reductions
split their sums by thread and so round differently with another thread
count.
"""
import argparse
import glob
import os
import os.path as osp
import sys
import time

from checkout import ROOT  # this checkout, first on sys.path

DEFAULT_CONFIG = 'configs/shapes/retinanet_tiny_shapes_agvm.py'


def run(args, threads: int, extra_env=None) -> str:
    """Run a tool with ``threads`` torch threads per process, streaming its
    output; return the output."""
    from tools.harness.process import run_tool, tool_env
    env = tool_env(extra_env, threads=threads)

    def show(line: str) -> None:
        if ' - mmengine - ' in line or line.startswith(('{', 'Average')):
            print(line, end='', flush=True)

    result = run_tool(args, env, cwd=ROOT, on_line=show, keep=None)
    if result.returncode:
        print(''.join(result.lines[-60:]))
        raise SystemExit(f'{args[1]} failed with exit code '
                         f'{result.returncode}')
    return result.output


def for_processes(config: str, nproc: int, work_dir: str,
                  iters: int = None) -> str:
    """The config as ``nproc`` processes run it: the same global batch and
    optimizer steps (accumulative_counts, runner iterations and the
    iteration-based schedules divided by ``nproc``), optionally cut to
    ``iters`` runner iterations; written to ``work_dir`` (returns its
    path)."""
    from mmengine.config import Config
    from tools.harness.grid import plain
    from tools.harness.schedules import scale_schedulers
    cfg = Config.fromfile(config)
    counts = int(cfg.optim_wrapper.get('accumulative_counts', 1))
    if counts % nproc:
        raise SystemExit(
            f'{config}: optim_wrapper.accumulative_counts={counts} cannot be '
            f'shared by {nproc} processes (the global batch would change); '
            'use --nproc 1 or a divisor of it.')
    loop = cfg.train_cfg
    if nproc > 1:
        cfg.optim_wrapper.accumulative_counts = counts // nproc
        cfg.param_scheduler = scale_schedulers(
            plain(cfg.param_scheduler), 1, nproc, end=loop.max_iters)
        loop.max_iters //= nproc
        loop.val_interval = max(1, loop.val_interval // nproc)
        checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
        if checkpoint and checkpoint.get('interval'):
            checkpoint.interval = max(1, checkpoint.interval // nproc)
    if iters:
        loop.max_iters = loop.val_interval = iters
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, f'{nproc}proc_' + osp.basename(config))
    cfg.dump(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    parser.add_argument('--nproc', type=int, default=2,
                        help='training processes (default 2, as '
                        'tools/dist_train.sh; 1: one process)')
    parser.add_argument('--iters', type=int, default=None,
                        help='override train_cfg.max_iters (runner '
                        'iterations of the run)')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of each process (default 1; the '
                        'metrics depend on it slightly)')
    args = parser.parse_args()
    start = time.time()

    from agvm_mm.datasets import generate_shapes
    from tools.harness.plot import plot_agvm, read_agvm_scalars
    from tools.harness.process import free_port
    info = generate_shapes(osp.join(ROOT, 'data/shapes'), args.num_train,
                           args.num_val)
    print(f'[main job] shapes data: {info["out_dir"]} '
          f'({"reused" if info["skipped"] else "generated"})', flush=True)

    work_dir = osp.abspath(osp.join(ROOT, args.work_dir))
    config = for_processes(osp.join(ROOT, args.config), args.nproc,
                           work_dir, args.iters)
    print(f'[main job] training {args.config} on {args.nproc} process(es) '
          f'-> {work_dir}', flush=True)
    if args.nproc == 1:
        run([sys.executable, 'tools/train.py', config, '--work-dir',
             work_dir], args.threads)
    else:
        run(['bash', 'tools/dist_train.sh', config, str(args.nproc),
             '--work-dir', work_dir], args.threads,
            dict(PYTHON=sys.executable, PORT=str(free_port())))

    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print(f'[main job] evaluating {checkpoint}', flush=True)
    out = run([sys.executable, 'tools/test.py', config, checkpoint,
               '--work-dir', osp.join(work_dir, 'test')], args.threads)
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
