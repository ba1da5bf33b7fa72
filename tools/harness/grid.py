"""The grid of the paper's tables: families and their metrics, batch specs,
cells, and the paper configs found by their names."""
import glob
import hashlib
import json
import os.path as osp
import pprint
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from tools.checkout import ROOT
from .optims import OPTIMS, normalize_optim

# files in a cell's work dir (the generated config is not in the work dir
# itself, where mmengine dumps the full config under the same file name)
STATE_FILE = 'reproduce_cell.json'
TRAIN_LOG = 'reproduce_train.log'
CONFIG_SUBDIR = 'reproduce_config'
# what every generated config imports: AGVM, the baselines, the shapes data
# (and panopticapi stand-in), DivergenceHook
DIVERGENCE_IMPORTS = dict(
    imports=['agvm_mm', 'agvm_mm.datasets',
             'agvm_mm.hooks.divergence_hook'],
    allow_failed_imports=False)


@dataclass(frozen=True)
class Metric:
    key: str  # key in mmengine's log, e.g. 'coco/bbox_mAP'
    label: str  # column title, e.g. 'bbox mAP'
    scale: float  # to the paper's percent units


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    shapes: str  # configs/shapes/<shapes>_{agvm,sgd}.py
    metrics: Tuple[Metric, ...]  # the first one is plotted


BBOX = Metric('coco/bbox_mAP', 'bbox mAP', 100.0)
FAMILIES: Dict[str, Family] = {f.name: f for f in (
    Family('retinanet', 'RetinaNet', 'retinanet_tiny_shapes', (BBOX, )),
    Family('faster_rcnn', 'Faster R-CNN', 'faster-rcnn_tiny_shapes',
           (BBOX, )),
    # the authors' regime: pretrained backbone, their schedule's shape
    Family('retinanet_paper', 'RetinaNet (pretrained, paper schedule)',
           'retinanet_tiny_shapes_paper', (BBOX, )),
    Family('faster_rcnn_paper', 'Faster R-CNN (pretrained, paper schedule)',
           'faster-rcnn_tiny_shapes_paper', (BBOX, )),
    Family('mask_rcnn', 'Mask R-CNN', 'mask-rcnn_tiny_shapes',
           (Metric('coco/segm_mAP', 'segm mAP', 100.0), BBOX)),
    Family('panoptic_fpn', 'Panoptic FPN', 'panoptic-fpn_tiny_shapes',
           (Metric('coco_panoptic/PQ', 'PQ', 1.0), )),
    Family('sem_fpn', 'Semantic FPN', 'sem-fpn_tiny_shapes',
           (Metric('mIoU', 'mIoU', 1.0), )),
)}
# Read for every family next to its metrics: a run that ends with a high
# loss was under-trained, not only badly generalising.
TRAIN_LOSS = Metric('loss', 'final train loss', 1.0)

CONFIG_NAME = re.compile(
    r'^(?P<model>.+?)_(?P<optim>' + '|'.join(map(re.escape, OPTIMS)) +
    r')_(?P<G>\d+)xb(?P<S>\d+)(?:x(?P<K>\d+))?-(?P<sched>[^_]+)_'
    r'(?P<data>.+)-b(?P<B>\d+)\.py$')


def family_metrics(family: str) -> Tuple[Metric, ...]:
    """The metrics of a family's tables: its evaluation metrics (the first
    is plotted), then the final training loss."""
    return FAMILIES[family].metrics + (TRAIN_LOSS, )


def normalize_family(name: str) -> str:
    key = name.strip().lower().replace('-', '_')
    if key not in FAMILIES:
        raise ValueError(f'unknown family {name!r}; use one of '
                         f'{sorted(FAMILIES)}')
    return key


def parse_batches(specs: Sequence[str], optims: Sequence[str]
                  ) -> Tuple[List[int], Dict[int, Tuple[str, ...]]]:
    """``--batches`` items: ``B`` runs every optimizer, ``B:OPT,OPT`` only
    those (e.g. ``32:sgd`` for the small-batch reference row). Returns the
    batch sizes and ``{B: optimizers}`` for the restricted ones."""
    batches, only = [], {}
    for spec in specs:
        head, _, tail = str(spec).partition(':')
        try:
            batch = int(head)
        except ValueError:
            raise ValueError(f'--batches: {spec!r} is not B or B:OPT,OPT '
                             '(e.g. 256 or 32:sgd,agvm)') from None
        if batch < 1:
            raise ValueError(f'--batches: batch {batch} must be >= 1')
        if tail:
            names = tuple(normalize_optim(o) for o in tail.split(',') if o)
            missing = [o for o in names if o not in optims]
            if missing:
                raise ValueError(f'--batches {spec}: {missing} not in '
                                 f'--optims {list(optims)}')
            only[batch] = names
        if batch not in batches:
            batches.append(batch)
    return batches, only


@dataclass
class Cell:
    """One run of the grid: what it trains and how it is launched."""
    family: str
    optim: str
    batch: int
    work_dir: str
    config: Optional[str] = None  # what is trained (written by plan_*)
    source_config: Optional[str] = None  # the paper / shapes config
    argv: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)  # extra env vars
    config_text: Optional[str] = None  # generated wrapper config
    info: Dict[str, object] = field(default_factory=dict)
    reason: Optional[str] = None  # set: the cell cannot run
    local: bool = False  # one process of tools/train.py (may pick a GPU)

    @property
    def name(self) -> str:
        return f'{self.family} {self.optim} b{self.batch}'

    def fingerprint(self) -> str:
        """What the cell trains (generated config, arguments, environment;
        not the Python executable): a finished cell whose fingerprint
        differs ran with other settings and is run again."""
        text = '\n'.join([self.config_text or '', shlex.join(self.argv[1:]),
                          json.dumps(self.env, sort_keys=True)])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def command_line(self) -> str:
        env = ' '.join(f'{k}={shlex.quote(str(v))}'
                       for k, v in self.env.items())
        return (env + ' ' if env else '') + shlex.join(self.argv)


def restrict_cells(cells: Sequence[Cell],
                   only: Dict[int, Tuple[str, ...]]) -> List[Cell]:
    """Drop the cells of a restricted batch (:func:`parse_batches`) whose
    optimizer is not among its own."""
    return [c for c in cells if c.batch not in only or c.optim in
            only[c.batch]]


def cell_work_dir(work_root: str, family: str, optim: str,
                  batch: int) -> str:
    return osp.join(work_root, family, f'{optim}-b{batch}')


def parse_config_name(filename: str) -> Optional[dict]:
    """The fields of a paper config's name (``configs/README.md``): model,
    optim, G, S, K, sched, data, B; None if the name does not follow it."""
    match = CONFIG_NAME.match(osp.basename(filename))
    if match is None:
        return None
    info = match.groupdict()
    for key in ('G', 'S', 'B'):
        info[key] = int(info[key])
    info['K'] = int(info['K'] or 1)
    return info


def find_paper_config(family: str, optim: str, batch: int,
                      model: Optional[str] = None,
                      config_root: Optional[str] = None) -> Tuple[str, dict]:
    """``(path, name fields)`` of the paper config of a cell, found by name in
    ``configs/<family>/``. Raises LookupError with the reason otherwise.

    Several models at one cell (Faster R-CNN R50 and Swin-T at 256/512):
    ``model`` (a substring of the model part) picks one, else R50 wins."""
    folder = osp.join(config_root or osp.join(ROOT, 'configs'), family)
    found = []
    for path in sorted(glob.glob(osp.join(folder, '*.py'))):
        info = parse_config_name(path)
        if info and info['optim'] == optim and info['B'] == batch:
            found.append((path, info))
    if model:
        found = [(p, i) for p, i in found if model in i['model']]
    if len(found) > 1:
        r50 = [(p, i) for p, i in found if 'r50' in i['model']]
        found = r50 or found
    if not found:
        raise LookupError(
            f'no paper config {family}/*_{optim}_<G>xb<S>-*-b{batch}.py' +
            (f' for model {model!r}' if model else ''))
    if len(found) > 1:
        raise LookupError('several configs match, pick one with --model: ' +
                          ', '.join(osp.basename(p) for p, _ in found))
    return found[0]


def plain(value):
    """Config values as plain python (ConfigDict -> dict)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def render_config(base: str, header: str,
                  items: Sequence[Tuple[str, object]]) -> str:
    """A config file: ``header`` as comments, ``_base_ = base``, then one
    ``key = value`` per item."""
    lines = [f'# {line}' if line else '#' for line in header.splitlines()]
    lines.append(f'_base_ = {base!r}')
    for key, value in items:
        text = pprint.pformat(value, width=76, sort_dicts=False)
        lines.append(f'{key} = {text}')
    return '\n'.join(lines) + '\n'
