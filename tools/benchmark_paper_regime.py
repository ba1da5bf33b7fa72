"""Does AGVM keep the small-batch accuracy in the authors' regime? The
shapes miniature with a pretrained backbone, the authors' schedule shape and
fair lr sweeps, over tools/reproduce.py.

    python tools/benchmark_paper_regime.py [--jobs 2] [--threads 1]
        [--plan] [--report-only] [--out docs/results]

RetinaNet (configs/shapes/retinanet_tiny_shapes_paper_agvm.py: the tiny
ResNet-18 of tools/pretrain_backbone.py, stem and stage 1 frozen), 13
epochs of 4000 images at every batch size, runs in this order:

1. the reference: batch 8, SGD at the linear rule's lr (0.02 x B / 16),
   seeds 0 and 1;
2. batch 128 (16x): SGD and SGD + AGVM, each at the square-root rule's lr,
   the authors' (0.65x linear) and the linear rule's, extended by halving
   (doubling) the lr while the best is the lowest (highest) point, twice at
   most; the best lr of each again with seed 1;
3. at 128: SGD with AGVM's time-averaged factors of its best run as fixed
   per-module lr multipliers (the static control); LAMB, PMD-LAMB and LARS,
   two lrs each;
4. batch 64 (8x): the sweeps and reruns of 2.;
5. the contrast: the best SGD and AGVM lrs at 128 from a random-init
   backbone (nothing frozen, BN training), the regime of the README's first
   miniature.

"SGD" is the AGVM wrapper with ``agvm.modulate=False`` (bit-identical to
SGD, AGVM only measures), so every SGD-type run has the same clip window,
warm-up and lr steps and the only difference between SGD and AGVM is the
modulation. Every run is one tools/reproduce.py call with its own work root
(work_dirs/paper_regime/<run>); finished runs are skipped, so the command
continues an interrupted grid. After each run the results are written to
``--out``: paper_regime.json (a record per run), paper_regime.md (tables,
every lr of every sweep, and the verdict by the rule below) and
paper_regime.png.

Verdict (fixed before the runs; issue 10), at the largest batch:
*reproduces*: best SGD >= 1.5 mAP below the reference, best-of-sweep AGVM
beats best-of-sweep SGD by >= 1.0 mAP on the mean of two seeds and in each
seed, and recovers >= 40 % of SGD's gap; *does not reproduce*: SGD loses
>= 1.5 but AGVM gains <= 0.3; *inconclusive* otherwise.
"""
import os.path as osp
import sys
from typing import Optional, Sequence

from checkout import ROOT  # this checkout, first on sys.path

from tools.harness.process import run_tool, tool_env
from tools.paper_regime import collect, plan, write_report
from tools.paper_regime.driver import checkpoint_id, drive, parse_args
from tools.pretrain_backbone import CHECKPOINT


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__, 'work_dirs/paper_regime', argv)

    done = collect(args.work_root, args.out)
    if args.plan or args.report_only:
        for run in plan(done):
            print(('done   ' if run.name in done else 'pending') + ' ' +
                  run.name)
        if args.report_only:
            write_report(done, args.out)
        return 0
    pretrain_backbone()
    drive('paper regime', lambda: collect(args.work_root, args.out), plan,
          lambda done: write_report(done, args.out), args.work_root,
          args.jobs, args.threads, checkpoint_id(CHECKPOINT))
    print(open(osp.join(args.out, 'paper_regime.md')).read())
    return 0


def pretrain_backbone() -> None:
    """tools/pretrain_backbone.py (nothing to do when its checkpoint is
    there with the same settings)."""
    pretrain = run_tool([sys.executable, osp.join(ROOT, 'tools',
                                                  'pretrain_backbone.py')],
                        tool_env(), on_line=_show)
    if pretrain.returncode:
        raise SystemExit('tools/pretrain_backbone.py failed with exit code '
                         f'{pretrain.returncode}')


def _show(line: str) -> None:
    print(line, end='', flush=True)


if __name__ == '__main__':
    sys.exit(main())
