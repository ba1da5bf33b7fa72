"""Check an mmdet / mmseg config with AGVM on this CPU before the real run.

    python tools/check_config.py CONFIG [--steps 3] [--img-size 64]
        [--batch-size 1] [--data-root data/shapes_check]
        [--iters-per-epoch N] [--global-batch B] [--work-dir DIR]
        [--cfg-options k=v ...]

Loads CONFIG as it is (with --cfg-options applied), reads the AGVM window
its real run implies, then trains it for a few optimizer steps on one CPU
process on the built-in shapes data of its task (detection / instance,
panoptic or semantic; generated under --data-root when missing), with two
accumulated micro-batches of --batch-size small images, AGVM taking
statistics on every step, pretrained downloads off, SyncBN as BN and no DDP.
Prints the module partition with parameter counts (and what a rule put in
each module), the frozen parameters, the anchor, the variance rule, the
window (optimizer steps and runner iterations), Phi and s per module for
every step, each module's critical batch (gradient noise scale) against the
real run's global batch, and each problem found with the config key to
change. When the
images or the batch are too small for the model (a head pooling to 1x1
before BN, a DETR taking the top-k of more queries than the images give
tokens), it retries once with inputs that fit and says so.

Exit status: 0 OK; 1 a problem was found; 3 no problem in what was checked,
but the model needs an op without a CPU kernel (CUDA only), so the check
steps did not run.
"""
import argparse
import sys

import checkout  # noqa: F401  this checkout first on sys.path
from mmengine.config import Config, DictAction

import agvm_mm  # noqa: F401  registers the AGVM types
from tools.check import check_config, check_data_root


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check a config with AGVM on this CPU before the real '
        'run (exit status 1 on a problem).')
    parser.add_argument('config', help='mmdet / mmseg config file')
    parser.add_argument('--steps', type=int, default=3,
                        help='optimizer steps of the check (default 3)')
    parser.add_argument('--img-size', type=int, default=64,
                        help='side of the check images (default 64; '
                        'larger once if the model needs it)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per micro-batch (default 1; 2 once if '
                        'the model needs it)')
    parser.add_argument('--data-root', default='data/shapes_check',
                        help='the small shapes set of the check, generated '
                        'when missing (default data/shapes_check)')
    parser.add_argument('--iters-per-epoch', type=int,
                        help='runner iterations per epoch of the real run, '
                        'to place epoch-based schedules')
    parser.add_argument('--global-batch', type=int,
                        help="the real run's global batch (GPUs x images per "
                        'GPU x accumulative_counts), compared with each '
                        "module's critical batch; default: the config's "
                        'auto_scale_lr.base_batch_size')
    parser.add_argument('--work-dir', help='keep the check logs here '
                        '(default: a temporary directory)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.img_size < 32:
        parser.error('use --steps >= 1, --batch-size >= 1, --img-size >= 32')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    data_root = check_data_root(args.data_root, args.img_size)
    report = check_config(cfg, args.config, data_root, args.work_dir,
                          args.steps, args.img_size, args.batch_size,
                          args.iters_per_epoch, args.global_batch)
    print(report, flush=True)
    return report.exit_status


if __name__ == '__main__':
    sys.exit(main())
