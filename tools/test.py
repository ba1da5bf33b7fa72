"""Evaluate a checkpoint of an mmdet or mmseg model, as mmdet's tools/test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse

import checkout  # noqa: F401  this checkout first on sys.path
from mmengine.config import Config
from mmengine.dist import get_rank

import agvm_mm  # noqa: F401
from tools.runner_setup import build_runner, parse_args, prepare, shutdown


def get_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a dense predictor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    return parse_args(parser)


def main() -> None:
    args = get_args()
    cfg = prepare(Config.fromfile(args.config), args)
    cfg.load_from = args.checkpoint
    metrics = build_runner(cfg).test()
    if get_rank() == 0:  # the last line printed: the metrics as a dict
        print({k: round(float(v), 4) for k, v in metrics.items()},
              flush=True)
    shutdown()


if __name__ == '__main__':
    main()
