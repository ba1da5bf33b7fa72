"""Check the popular stock mmdet / mmseg configs with AGVM, as a user would.

    python tools/zoo_check.py [--only NAME ...] [--steps 2] [--jobs 2]
        [--keep DIR] [--list]

Each config of :data:`ZOO` is written with the three-line switch
(:data:`SWITCH`, the form that keeps the base's custom hooks) into a
temporary directory and run through ``tools/check_config.py`` with its
defaults (but ``--steps``), at most ``--jobs`` at a time, one torch thread
each. Its modules (and what a rule put in each) are compared with the ones
the partition rules promise (docs/algorithm.md §1). Prints a table (config,
family, modules, result, seconds); exit status 1 on any failure or module
mismatch. A model that needs an op without a CPU kernel is reported as
``CUDA only: <op>``, not as a failure.
"""
import argparse
import os
import os.path as osp
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

#: The README's switch to AGVM; ``*_base_.get('custom_hooks', [])`` keeps
#: the base's own hooks (EMA, pipeline and mode switches, sync-norm).
SWITCH = """_base_ = '{config}'
custom_imports = dict(imports=['agvm_mm'], allow_failed_imports=False)
optim_wrapper = dict(type='AGVMOptimWrapper')  # keeps the base's optimizer
custom_hooks = [*_base_.get('custom_hooks', []), dict(type='AGVMHook')]
"""

# the modules each family gets (docs/algorithm.md §1)
ONE_STAGE = ('backbone', 'neck', 'bbox_head')
TWO_STAGE = ('backbone', 'neck', 'rpn_head', 'roi_head')
MASK_RCNN = ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head',
             'roi_head.mask_head')
DETR = ('backbone', 'neck', 'encoder', 'decoder', 'bbox_head')
SEG_AUX = ('backbone', 'decode_head', 'auxiliary_head')


def maskformer(head: str) -> Tuple[str, ...]:
    """The modules of a MaskFormer / Mask2Former whose head is ``head``."""
    return ('backbone', f'{head}.pixel_decoder',
            f'{head}.transformer_decoder', head)


def maskformer_contents(head: str, queries: Sequence[str]
                        ) -> Dict[str, str]:
    return {
        f'{head}.transformer_decoder': ' + '.join(
            [f'{head}.transformer_decoder'] +
            [f'{head}.{q}' for q in queries]),
        head: f'{head}.cls_embed + {head}.mask_embed'
    }


@dataclass
class Entry:
    """A stock config of the zoo and what its check must show.

    Args:
        name (str): Short name (``--only``).
        config (str): The stock config, ``mmdet::...`` / ``mmseg::...``.
        family (str): Shown in the table.
        modules (tuple[str]): The modules the rules give, in order.
        contents (dict[str, str]): Modules a rule put more in, as the check
            prints them (``decoder + query_embedding``); all others must be
            just themselves.
        slow (bool): Started first, so that the lanes end together.
    """
    name: str
    config: str
    family: str
    modules: Tuple[str, ...]
    contents: Dict[str, str] = field(default_factory=dict)
    slow: bool = False


ZOO: List[Entry] = [
    # CNN detectors, two-stage and one-stage
    Entry('faster-rcnn', 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
          'two-stage', TWO_STAGE),
    Entry('carafe-faster-rcnn',
          'mmdet::carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py',
          'two-stage (CARAFE neck)', TWO_STAGE),
    Entry('retinanet', 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
          'one-stage', ONE_STAGE),
    Entry('fcos', 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
          'one-stage', ONE_STAGE),
    Entry('rtmdet-tiny', 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
          'one-stage (RTMDet)', ONE_STAGE),
    Entry('yolox-tiny', 'mmdet::yolox/yolox_tiny_8xb8-300e_coco.py',
          'one-stage (YOLOX)', ONE_STAGE),
    # DETR family
    Entry('detr', 'mmdet::detr/detr_r50_8xb2-150e_coco.py', 'DETR', DETR,
          {'decoder': 'decoder + query_embedding'}),
    Entry('dab-detr', 'mmdet::dab_detr/dab-detr_r50_8xb2-50e_coco.py',
          'DETR', DETR, {'decoder': 'decoder + query_embedding'}),
    Entry('deformable-detr',
          'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
          'DETR', DETR, {
              'encoder': 'encoder + level_embed',
              'decoder': 'decoder + query_embedding + reference_points_fc'
          }),
    Entry('deformable-detr-2stage',
          'mmdet::deformable_detr/'
          'deformable-detr-refine-twostage_r50_16xb2-50e_coco.py',
          'DETR (two-stage)', DETR, {
              'encoder': 'encoder + level_embed',
              'decoder': 'decoder + pos_trans_fc + pos_trans_norm',
              'bbox_head': 'bbox_head + memory_trans_fc + memory_trans_norm'
          }, slow=True),
    Entry('dino', 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
          'DETR (two-stage)', DETR, {
              'encoder': 'encoder + level_embed',
              'decoder': 'decoder + query_embedding + dn_query_generator',
              'bbox_head': 'bbox_head + memory_trans_fc + memory_trans_norm'
          }, slow=True),
    # instance segmentation
    Entry('mask-rcnn', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
          'instance', MASK_RCNN),
    Entry('cascade-mask-rcnn',
          'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
          'instance (cascade)', MASK_RCNN),
    Entry('solov2', 'mmdet::solov2/solov2_r50_fpn_1x_coco.py', 'instance',
          ('backbone', 'neck', 'mask_head')),
    # panoptic
    Entry('panoptic-fpn',
          'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py', 'panoptic',
          MASK_RCNN + ('semantic_head', )),
    Entry('maskformer',
          'mmdet::maskformer/maskformer_r50_ms-16xb1-75e_coco.py',
          'panoptic (MaskFormer)', maskformer('panoptic_head'),
          maskformer_contents('panoptic_head', ['query_embed'])),
    Entry('mask2former-panoptic',
          'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
          'panoptic (Mask2Former)', maskformer('panoptic_head'),
          maskformer_contents('panoptic_head',
                              ['query_embed', 'query_feat', 'level_embed']),
          slow=True),
    # mmseg CNNs
    Entry('sem-fpn', 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
          'semantic CNN', ('backbone', 'neck', 'decode_head')),
    Entry('fcn', 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
          'semantic CNN', SEG_AUX),
    Entry('pspnet', 'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py',
          'semantic CNN', SEG_AUX),
    Entry('deeplabv3plus', 'mmseg::deeplabv3plus/'
          'deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512.py', 'semantic CNN',
          SEG_AUX),
    Entry('upernet', 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py',
          'semantic CNN', SEG_AUX),
    # mmseg transformers
    Entry('segformer-b0',
          'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
          'semantic transformer', ('backbone', 'decode_head')),
    Entry('swin-upernet', 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_'
          'upernet_8xb2-160k_ade20k-512x512.py', 'semantic transformer',
          SEG_AUX),
    Entry('mask2former-seg',
          'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
          'semantic (Mask2Former)', maskformer('decode_head'),
          maskformer_contents('decode_head',
                              ['query_embed', 'query_feat', 'level_embed']),
          slow=True),
]

MODULE_LINE = re.compile(
    r'^  (\S+) +[\d.]+ M  \((\d+) tensors\)(?:  = (.*))?$')


@dataclass
class Outcome:
    """One config's check: its exit status, report and verdict."""
    entry: Entry
    status: Optional[int]
    seconds: float
    output: str
    modules: List[str] = field(default_factory=list)
    contents: Dict[str, str] = field(default_factory=dict)
    result: str = ''
    failed: bool = False


def parse_modules(output: str) -> Tuple[List[str], Dict[str, str]]:
    """The modules of a check report, and the contents of those a rule put
    more in."""
    modules, contents = [], {}
    if 'Modules (anchor' not in output:
        return modules, contents
    for line in output[output.index('Modules (anchor'):].splitlines()[1:]:
        match = MODULE_LINE.match(line)
        if match is None:
            break
        modules.append(match.group(1))
        if match.group(3):
            contents[match.group(1)] = match.group(3)
    return modules, contents


def judge(outcome: Outcome) -> Outcome:
    """Set the result and whether it is a failure."""
    entry, out = outcome.entry, outcome.output
    outcome.modules, outcome.contents = parse_modules(out)
    if outcome.status is None:
        outcome.result, outcome.failed = 'TIMEOUT', True
        return outcome
    if outcome.status == 1 or outcome.status not in (0, 3):
        problems = out[out.rfind('\nProblems'):].splitlines()[1:2] \
            if '\nProblems' in out else out.strip().splitlines()[-1:]
        outcome.result = f'FAIL (exit {outcome.status}): ' + ' '.join(
            p.strip(' -') for p in problems)[:100]
        outcome.failed = True
        return outcome
    if tuple(outcome.modules) != entry.modules or \
            outcome.contents != entry.contents:
        outcome.result = ('MODULES DIFFER: expected '
                          f'{_modules_text(entry.modules, entry.contents)}')
        outcome.failed = True
        return outcome
    if outcome.status == 3:
        match = re.search(r'\((CUDA only: [^)]*)\)', out)
        outcome.result = match.group(1) if match else 'CUDA only'
        return outcome
    outcome.result = 'OK'
    retried = re.search(r'Retried with --img-size (\d+) --batch-size (\d+)',
                        out)
    if retried:
        outcome.result += (f' (retried at {retried.group(1)} px x '
                           f'{retried.group(2)})')
    return outcome


def _modules_text(modules: Sequence[str], contents: Dict[str, str]) -> str:
    return ', '.join(f'{m} ({contents[m]})' if m in contents else m
                     for m in modules)


def run_one(entry: Entry, workdir: str, data_root: str, steps: int,
            timeout: float) -> Outcome:
    """Write ``entry``'s config with the switch and check it."""
    from tools.checkout import ROOT
    from tools.harness.process import run_tool, tool_env
    config = osp.join(workdir, f'{entry.name}_agvm.py')
    with open(config, 'w') as f:
        f.write(SWITCH.format(config=entry.config))
    args = [sys.executable, osp.join(ROOT, 'tools', 'check_config.py'),
            config, '--steps', str(steps), '--data-root', data_root]
    start = time.time()
    result = run_tool(args, tool_env(threads=1), cwd=workdir,
                      timeout=timeout, keep=None)
    return judge(Outcome(entry, result.returncode, time.time() - start,
                         result.output))


def table(outcomes: Sequence[Outcome]) -> str:
    """The printed table: config, family, modules, result, seconds."""
    rows = [('config', 'family', 'modules', 'result', 's')]
    rows += [(o.entry.name, o.entry.family,
              ', '.join(o.modules) or '-', o.result, f'{o.seconds:.0f}')
             for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r[:4], widths)) +
             '  ' + r[4].rjust(3) for r in rows]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(line.rstrip() for line in lines)


def run_zoo(entries: Sequence[Entry], steps: int = 2, jobs: int = 2,
            keep: Optional[str] = None, timeout: float = 900
            ) -> List[Outcome]:
    """Check ``entries``, ``jobs`` at a time (slow ones first); the
    outcomes in the order of ``entries``."""
    from tools.check import check_data_root
    with tempfile.TemporaryDirectory(prefix='agvm_zoo_') as tmp:
        workdir = keep or tmp
        os.makedirs(workdir, exist_ok=True)
        # generated once here, not by two checks at the same time
        data_root = check_data_root(osp.join(tmp, 'shapes_check'), 64)
        order = sorted(entries, key=lambda e: not e.slow)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {e.name: pool.submit(run_one, e, workdir, data_root,
                                           steps, timeout) for e in order}
            outcomes = [futures[e.name].result() for e in entries]
        if keep:
            for o in outcomes:
                with open(osp.join(keep, f'{o.entry.name}.txt'), 'w') as f:
                    f.write(o.output)
    return outcomes


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check popular stock mmdet / mmseg configs with AGVM '
        '(exit status 1 on a failure or a module mismatch).')
    parser.add_argument('--only', nargs='+', metavar='NAME',
                        help='check only these (see --list)')
    parser.add_argument('--steps', type=int, default=2,
                        help='optimizer steps of each check (default 2)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='checks at a time, one thread each (default 2)')
    parser.add_argument('--keep', metavar='DIR',
                        help='keep the configs and reports here')
    parser.add_argument('--list', action='store_true',
                        help='list the zoo and exit')
    args = parser.parse_args(argv)
    names = [e.name for e in ZOO]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f'--only: unknown {unknown}; the zoo has {names}')
    if args.steps < 1 or args.jobs < 1:
        parser.error('use --steps >= 1 and --jobs >= 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for e in ZOO:
            print(f'{e.name:<24} {e.config}  '
                  f'[{_modules_text(e.modules, e.contents)}]')
        return 0
    entries = [e for e in ZOO if not args.only or e.name in args.only]
    start = time.time()
    outcomes = run_zoo(entries, args.steps, args.jobs, args.keep)
    print(table(outcomes))
    failed = [o for o in outcomes if o.failed]
    for o in failed:
        print(f'\n--- {o.entry.name} ({o.entry.config}): {o.result}\n'
              + '\n'.join(o.output.strip().splitlines()[-40:]))
    print(f'\n{len(outcomes) - len(failed)} of {len(outcomes)} configs '
          f'passed, {len(failed)} failed; wall time {time.time() - start:.0f}'
          f' s ({args.jobs} at a time, {args.steps} steps each)')
    return 1 if failed else 0


if __name__ == '__main__':  # (imported, the checkout is on sys.path)
    import checkout  # noqa: F401  this checkout first on sys.path
    sys.exit(main())
