"""Generate the synthetic shapes dataset (COCO instances + COCO panoptic +
mmseg semantic labels); a no-op if it already exists with the same args.

Example::

    python tools/generate_shapes.py --out data/shapes --num-train 400 \
        --num-val 100 --img-size 128 --seed 0 --workers 2
"""
import argparse

try:  # run as a script
    import checkout  # noqa: F401  this checkout first on sys.path
except ImportError:  # run (runpy) in a process that has the checkout
    pass

from agvm_mm.datasets.generate import ALL_TASKS, generate_shapes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/shapes', help='dataset root')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--img-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=None,
                        help='worker processes (default: all CPUs)')
    parser.add_argument('--tasks', nargs='+', default=list(ALL_TASKS),
                        choices=ALL_TASKS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    res = generate_shapes(args.out, num_train=args.num_train,
                          num_val=args.num_val, img_size=args.img_size,
                          seed=args.seed, workers=args.workers,
                          tasks=args.tasks)
    verb = 'already up to date' if res['skipped'] else 'wrote'
    print(f"{verb}: {res['out_dir']}  images {res['num_images']}  "
          f"instances {res['num_instances']}  tasks {res['params']['tasks']}")
    for key, path in sorted(res['paths'].items()):
        print(f'  {key:20s} {path}')
    print(f"time: {res['seconds']:.2f} s")


if __name__ == '__main__':
    main()
