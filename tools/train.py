"""Train an mmdet or mmseg model (with AGVM), as mmdet's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse

import checkout  # noqa: F401  this checkout first on sys.path
from mmengine.config import Config

import agvm_mm  # noqa: F401  registers AGVM's wrapper, constructor, hook
from tools.runner_setup import (amp_available, atomic_checkpoints,
                                build_runner, enable_amp,
                                enable_auto_scale_lr, parse_args, prepare,
                                shutdown)


def get_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a dense predictor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (AGVMOptimWrapper '
                        'becomes AGVMAmpOptimWrapper); needs a GPU (or '
                        'NPU/MLU/MUSA): mmengine refuses AMP on the CPU')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the global batch (GPUs x '
                        'batch per GPU x accumulative_counts)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest '
                        'checkpoint in the work dir if none is given')
    args = parse_args(parser)
    if args.amp and not amp_available():  # before anything is built
        parser.error('--amp needs a GPU (or NPU/MLU/MUSA), and none is '
                     "available: mmengine's AmpOptimWrapper, and with it "
                     'AGVMAmpOptimWrapper, refuses to train on the CPU. Drop '
                     '--amp to train in fp32.')
    return args


def main() -> None:
    args = get_args()
    cfg = prepare(Config.fromfile(args.config), args)
    atomic_checkpoints(cfg)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    build_runner(cfg).train()
    shutdown()


if __name__ == '__main__':
    main()
