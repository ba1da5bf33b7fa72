"""A CPU check of an mmdet / mmseg config with AGVM before its real run
(``tools/check_config.py``).

:func:`check_config` takes the config as it is, reads the AGVM window its
real run implies (:func:`agvm_window`), then trains it for a few optimizer
steps on one CPU process on the built-in shapes data of its task
(:func:`make_check_config`): two accumulated micro-batches of small images,
AGVM taking statistics on every step, no downloads, SyncBN as BN, no DDP.
The :class:`Report` lists the module partition, the frozen parameters, the
anchor, the variance rule, the window, Phi and s per module for every step
and each problem found with the config key to change.
"""
import copy
import inspect
import math
import os.path as osp
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.hooks import Hook

from ..hooks.agvm_hook import clip_window_around
from tools.runner_setup import _replace_syncbn

INF = int(1e9)  # mmengine's "no end" of a scheduler
TASKS = ('detection', 'instance', 'panoptic', 'semantic')
DATASET_TYPES = dict(detection='mmdet.ShapesCocoDataset',
                     instance='mmdet.ShapesCocoDataset',
                     panoptic='mmdet.ShapesPanopticDataset',
                     semantic='mmseg.ShapesSegDataset')
# wrappers the check runs as AGVMOptimWrapper (fp32: no GPU here)
KNOWN_WRAPPERS = ('OptimWrapper', 'AmpOptimWrapper', 'AGVMOptimWrapper',
                  'AGVMAmpOptimWrapper')
AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')


def _type_name(node: Any) -> str:
    """A config node's ``type`` without its scope, '' if it has none."""
    kind = node.get('type', '') if isinstance(node, dict) else ''
    return kind.split('.')[-1] if isinstance(kind, str) else kind.__name__


# ------------------------------------------------------------ the window
@dataclass
class Window:
    """The AGVM window of the real run, in optimizer steps; ``None`` where
    the value depends on the epoch length and none was given."""
    accumulative_counts: int
    interval: int
    start: Optional[int]
    start_source: str
    stop: Optional[int]
    clip: Optional[Tuple[int, int]]
    clip_source: str
    total_steps: Optional[int]
    epochs: Optional[int] = None

    def lines(self) -> List[str]:
        k = self.accumulative_counts

        def at(step: Optional[int]) -> str:
            return ('unknown' if step is None else
                    f'optimizer step {step} = runner iteration {step * k}')

        clip = (self.clip_source if self.clip is None else
                f'optimizer steps [{self.clip[0]}, {self.clip[1]}) = runner '
                f'iterations [{self.clip[0] * k}, {self.clip[1] * k}) '
                f'({self.clip_source})')
        total = (f'{self.total_steps} optimizer steps' if self.total_steps
                 else f'{self.epochs} epochs (--iters-per-epoch N gives '
                 'the steps)')
        return [
            f'accumulative_counts {k}; training {total}',
            f'start     {at(self.start)} ({self.start_source})',
            f'stop      {at(self.stop) if self.stop is not None else "none"}'
            + ('' if self.stop is not None else ' (to the end of training)'),
            f'interval  every {self.interval} optimizer steps '
            f'(= {self.interval * k} runner iterations)',
            f'clip      {clip}',
        ]


def _scheduler_by_epoch(sched: dict, scope: Optional[str]) -> bool:
    """``by_epoch`` of a scheduler config, with its class's default."""
    if 'by_epoch' in sched:
        return bool(sched['by_epoch'])
    from mmengine.registry import PARAM_SCHEDULERS
    with PARAM_SCHEDULERS.switch_scope_and_registry(scope) as registry:
        cls = registry.get(sched['type'])
    param = inspect.signature(cls).parameters.get('by_epoch') if cls else None
    return True if param is None else bool(param.default)


def _max_iters(cfg: Config,
               iters_per_epoch: Optional[int]) -> Optional[int]:
    loop = cfg.get('train_cfg') or {}
    if 'max_iters' in loop:
        return int(loop['max_iters'])
    if 'max_epochs' in loop and iters_per_epoch:
        return int(loop['max_epochs']) * iters_per_epoch
    return None


def warmup_end(cfg: Config, iters_per_epoch: Optional[int] = None
               ) -> Tuple[Optional[int], str, bool]:
    """Where the warm-up ends, by the rule :class:`AGVMHook` uses
    (:func:`~agvm_mm.optim.agvm_config.find_warmup`).

    Returns:
        tuple: the runner iteration (None: no warm-up, or one in epochs of
        unknown length), a description, and whether the epoch length was
        missing.
    """
    from ..optim.agvm_config import find_warmup
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = ([schedulers] if 'type' in schedulers else
                      [s for group in schedulers.values() for s in group])
    max_iters = _max_iters(cfg, iters_per_epoch)
    scope = cfg.get('default_scope')
    found = find_warmup(
        [(s.get('begin', 0), s.get('end', INF),
          s.get('begin', 0) == 0 and _scheduler_by_epoch(s, scope))
         for s in schedulers],
        max_iters if max_iters is not None else INF, iters_per_epoch)
    if found is None:
        return None, 'no warm-up scheduler', False
    sched = schedulers[found[0]]
    if found[1] is None:
        return None, (f'the warm-up {_type_name(sched)} ends at epoch '
                      f'{sched.get("end", INF)}: give --iters-per-epoch'), True
    return found[1], (f'{_type_name(sched)} ends at runner iteration '
                      f'{found[1]}'), False


def _start(agvm, hook: Optional[dict], warm: Optional[int], why: str,
           unknown: bool, problems: List[str]) -> Tuple[Optional[int], str]:
    """AGVM's first optimizer step and where it comes from."""
    if agvm.start_iter is not None:
        return agvm.start_iter, 'optim_wrapper.agvm.start_iter'
    if hook is None or not hook.get('start_after_warmup', True):
        if warm is not None:
            problems.append(
                f'optim_wrapper.agvm.start_iter: AGVM would start at step 0, '
                f'inside the warm-up ({why}). Add custom_hooks=[dict(type='
                "'AGVMHook')] (starts it when the warm-up ends) or set "
                'agvm.start_iter.')
        return (agvm.resolve_start(None),
                'agvm.start_iter is None and no AGVMHook sets it')
    offset = int(hook.get('start_offset', 0))
    if unknown:
        return None, f'AGVMHook: {why}'
    start = agvm.resolve_start(warm, offset)  # as AGVMHook fixes it
    if warm is None:
        return start, f'AGVMHook: {why}, so step {offset}'
    return start, (f'AGVMHook: {why} = optimizer step {warm}' +
                   (f', + start_offset {offset}' if offset else ''))


def _clip(agvm, wrapper: dict, hook: Optional[dict], warm: Optional[int],
          why: str, problems: List[str]
          ) -> Tuple[Optional[Tuple[int, int]], str]:
    """The clipping window (None: every step or never) and its source."""
    clip, source = agvm.clip_grad_window, 'optim_wrapper.agvm.' \
        'clip_grad_window'
    max_norm = (wrapper.get('clip_grad') or {}).get('max_norm')
    if clip is None and hook is not None and hook.get('clip_window'):
        if max_norm is None:
            problems.append(
                'optim_wrapper.clip_grad: AGVMHook.clip_window clips around '
                'the warm-up, but clip_grad is None; set optim_wrapper.'
                'clip_grad=dict(max_norm=1.0).')
        elif warm is None:
            problems.append(
                'custom_hooks AGVMHook.clip_window: it is placed around the '
                f'warm-up, but {why}. Set optim_wrapper.agvm.'
                'clip_grad_window instead.')
        else:
            clip = clip_window_around(warm, hook['clip_window'])
            source = 'AGVMHook.clip_window around the warm-up'
    if clip is not None:  # the wrapper's default max_norm is 1.0
        return clip, f'{source}, max_norm {max_norm or 1.0}'
    if max_norm is None:
        return None, 'none (optim_wrapper.clip_grad is None)'
    return None, (f'every optimizer step, max_norm {max_norm} '
                  '(optim_wrapper.clip_grad, no agvm.clip_grad_window)')


def agvm_window(cfg: Config, iters_per_epoch: Optional[int] = None
                ) -> Tuple[Window, List[str]]:
    """The AGVM window the config implies for its real run, and the problems
    found in it (each naming the config key to change).

    Args:
        cfg (Config): The config as it will be trained.
        iters_per_epoch (int, optional): Runner iterations per epoch of the
            real run, to place epoch-based warm-ups and ends.
    """
    from ..optim import AGVMConfig
    wrapper = cfg.optim_wrapper
    k = int(wrapper.get('accumulative_counts', 1))
    agvm = AGVMConfig.build(wrapper.get('agvm'))
    hooks = [h for h in cfg.get('custom_hooks') or []
             if _type_name(h) == 'AGVMHook']
    hook = dict(hooks[0]) if hooks else None
    end, why, unknown = warmup_end(cfg, iters_per_epoch)
    warm = None if end is None else math.ceil(end / k)
    max_iters = _max_iters(cfg, iters_per_epoch)
    total = None if max_iters is None else math.ceil(max_iters / k)
    problems: List[str] = []
    start, source = _start(agvm, hook, warm, why, unknown, problems)
    clip, clip_source = _clip(agvm, wrapper, hook, warm, why, problems)
    if start is not None and agvm.stop_iter is not None and \
            agvm.stop_iter <= start:
        problems.append(
            f'optim_wrapper.agvm.stop_iter={agvm.stop_iter}: the window '
            f'[{start}, {agvm.stop_iter}) is empty; use stop_iter > start '
            'or None.')
    if start is not None and total is not None and start >= total:
        problems.append(
            f'optim_wrapper.agvm.start_iter: AGVM starts at optimizer step '
            f'{start}, but training has only {total} steps; it never runs. '
            'Lower agvm.start_iter (optimizer steps = runner iterations / '
            'accumulative_counts).')
    return Window(k, agvm.interval, start, source, agvm.stop_iter, clip,
                  clip_source, total,
                  (cfg.get('train_cfg') or {}).get('max_epochs')), problems


# -------------------------------------------------------- the check run
def detect_task(cfg: Config) -> str:
    """'semantic' for mmseg configs, else from the training pipeline:
    'panoptic', 'instance' (masks loaded) or 'detection'."""
    if cfg.get('default_scope') == 'mmseg':
        return 'semantic'
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        dataset = dataset['dataset']
    for step in dataset.get('pipeline') or []:
        kind = _type_name(step)
        if kind == 'LoadPanopticAnnotations':
            return 'panoptic'
        if kind == 'LoadAnnotations' and step.get('with_mask'):
            return 'instance'
    model = cfg.model
    if any(model.get(k) is not None
           for k in ('semantic_head', 'panoptic_fusion_head')):
        return 'panoptic'
    if (model.get('roi_head') or {}).get('mask_head') is not None:
        return 'instance'
    return 'detection'


def shapes_pipeline(task: str, img_size: int) -> List[dict]:
    """The deterministic training pipeline of the shapes data, scoped so
    that it builds under any default scope (as configs/_base_/datasets/)."""
    if task == 'semantic':
        return [
            dict(type='LoadImageFromFile'),
            dict(type='mmseg.LoadAnnotations'),
            dict(type='mmseg.Resize', scale=(img_size, img_size),
                 keep_ratio=True),
            dict(type='mmseg.PackSegInputs')
        ]
    load = (dict(type='mmdet.LoadPanopticAnnotations')
            if task == 'panoptic' else dict(
                type='mmdet.LoadAnnotations', with_bbox=True,
                with_mask=task == 'instance'))
    return [
        dict(type='LoadImageFromFile'), load,
        dict(type='mmdet.Resize', scale=(img_size, img_size),
             keep_ratio=True),
        dict(type='mmdet.PackDetInputs')
    ]


def _no_downloads(node: Any) -> None:
    """Drop every pretrained checkpoint of a model config, in place."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key == 'pretrained' and isinstance(value, str):
                node[key] = None
            elif key == 'init_cfg' and 'Pretrained' in str(value):
                node[key] = None
            else:
                _no_downloads(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _no_downloads(value)


def _small_inputs(preprocessor: Optional[dict], img_size: int) -> None:
    """Fixed-size padding (mmseg's crop size, batch augments) to the check's
    image size, in place."""
    if not preprocessor:
        return
    if preprocessor.get('size') is not None:
        preprocessor['size'] = (img_size, img_size)
    for augment in preprocessor.get('batch_augments') or []:
        if augment.get('size') is not None:
            augment['size'] = (img_size, img_size)


def make_check_config(cfg: Config, data_root: str, work_dir: str,
                      steps: int = 3, img_size: int = 64,
                      batch_size: int = 1) -> Tuple[Config, List[str]]:
    """A copy of ``cfg`` that trains ``steps`` optimizer steps of two
    accumulated micro-batches of ``batch_size`` shapes images on one CPU
    process, AGVM taking statistics on every step; and notes on what the
    check changes beyond that."""
    cfg = copy.deepcopy(cfg)
    notes = []
    task = detect_task(cfg)
    cfg.train_dataloader = dict(
        batch_size=batch_size, num_workers=0, persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=False),
        dataset=dict(type=DATASET_TYPES[task], data_root=data_root,
                     pipeline=shapes_pipeline(task, img_size)))
    if task != 'semantic':
        cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=True)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2 * steps,
                         val_interval=INF)
    # the lr of the real run's first steps: its iteration-based schedulers
    # (warm-up); epoch-based ones never step in an iteration loop
    schedulers = cfg.get('param_scheduler') or []
    cfg.param_scheduler = [
        s for s in ([schedulers] if isinstance(schedulers, dict) else
                    schedulers)
        if 'type' in s and not _scheduler_by_epoch(s, cfg.get(
            'default_scope'))] or None
    cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr') or {}, enable=False)
    cfg.load_from, cfg.resume, cfg.launcher = None, False, 'none'
    cfg.work_dir, cfg.log_level = work_dir, 'ERROR'
    cfg.randomness = dict(seed=0)

    model = cfg.model
    if _replace_syncbn(model):
        notes.append('SyncBN runs as BN here (one CPU process).')
    if model.get('backbone') is not None:
        model.backbone.init_cfg = None
    if 'pretrained' in model:
        model.pretrained = None
    _no_downloads(model)
    _small_inputs(model.get('data_preprocessor'), img_size)

    wrapper = cfg.optim_wrapper
    kind = _type_name(wrapper) or 'OptimWrapper'
    if kind in ('AmpOptimWrapper', 'AGVMAmpOptimWrapper'):
        notes.append(f'{kind} is checked in fp32 as AGVMOptimWrapper (AMP '
                     'needs a GPU).')
    for key in AMP_ONLY_KEYS:
        wrapper.pop(key, None)
    wrapper.type = 'AGVMOptimWrapper'
    wrapper.accumulative_counts = 2
    wrapper.agvm = dict(wrapper.get('agvm') or {}, interval=1, start_iter=0,
                        stop_iter=None)

    hooks = dict(cfg.get('default_hooks') or {})
    hooks['checkpoint'] = None  # None drops one of mmengine's defaults
    hooks.pop('visualization', None)  # not one of them
    cfg.default_hooks = hooks
    # the check starts AGVM itself; other custom hooks run as configured
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks') or []
                        if _type_name(h) != 'AGVMHook']
    imports = dict(cfg.get('custom_imports') or {})
    names = list(imports.get('imports') or [])
    # the check trains on the shapes data: its dataset types too
    cfg.custom_imports = dict(
        imports, allow_failed_imports=False,
        imports=names + [m for m in ('agvm_mm', 'agvm_mm.datasets')
                         if m not in names])
    return cfg, notes


class StatisticsRecorder(Hook):
    """Keeps each AGVM step's Phi and s, and each iteration's loss."""
    priority = 'LOW'

    def __init__(self) -> None:
        self.steps: List[Tuple[Dict[str, float], Dict[str, float]]] = []
        self.losses: List[float] = []
        self._seen = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if outputs and 'loss' in outputs:
            loss = outputs['loss']
            self.losses.append(float(getattr(loss, 'detach', lambda: loss)()))
        wrapper = runner.optim_wrapper
        if wrapper.agvm_steps != self._seen:
            self._seen = wrapper.agvm_steps
            self.steps.append((wrapper.agvm_variances, wrapper.agvm_scales))


# ---------------------------------------------------------------- report
@dataclass
class Report:
    """What :func:`check_config` found; ``str(report)`` is the printout."""
    config: str
    task: str = ''
    setup: str = ''
    modules: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    frozen: Dict[str, Tuple[int, int, List[str]]] = field(
        default_factory=dict)
    anchor: str = ''
    rule: str = ''
    window: Optional[Window] = None
    steps: List[Tuple[Dict[str, float], Dict[str, float]]] = field(
        default_factory=list)
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        out = [f'AGVM check of {self.config}', f'  {self.setup}']
        if self.modules:
            out.append(f'Modules (anchor {self.anchor!r}), trainable '
                       'parameters')
            out += [f'  {m:<22} {n / 1e6:8.3f} M  ({t} tensors)'
                    for m, (n, t) in self.modules.items()]
        if self.frozen:
            out.append('Frozen parameters, left out of AGVM')
            out += [f'  {m:<22} {n / 1e6:8.3f} M  ({t} tensors: '
                    f'{", ".join(names)})'
                    for m, (n, t, names) in self.frozen.items()]
        elif self.modules:
            out.append('Frozen parameters: none')
        if self.rule:
            out.append(f'Variance rule: {self.rule}')
        if self.window is not None:
            out.append('AGVM window of the real run')
            out += [f'  {line}' for line in self.window.lines()]
        if self.steps:
            names = list(self.steps[-1][1])
            width = max(15, max(len(n) for n in names) + 2)
            out.append('Phi / s per module at each check step')
            out.append(('  step  ' + ''.join(n.ljust(width)
                                             for n in names)).rstrip())
            for step, (phi, scale) in enumerate(self.steps):
                cells = [f'{phi.get(n, math.nan):.3f} / {scale[n]:.3f}'
                         for n in names]
                out.append((f'  {step:<6}' + ''.join(
                    c.ljust(width) for c in cells)).rstrip())
        for title, items in (('Notes', self.notes),
                             ('Problems', self.problems)):
            if items:
                out.append(title)
                out += [f'  - {item}' for item in items]
        out.append('Result: ' + ('OK' if self.ok else
                                 f'{len(self.problems)} problem(s)'))
        return '\n'.join(out)


def _describe(model, wrapper, report: Report) -> None:
    """Partition, frozen parameters, anchor and rule of the built model."""
    from ..partition import _match, partition_modules, unwrap
    net = unwrap(model)
    parts = partition_modules(net, wrapper.agvm_cfg.modules)
    report.modules = {m: (sum(p.numel() for p in ps), len(ps))
                      for m, ps in parts.items()}
    # configured prefixes too: a frozen one (e.g. backbone.layer1) is shown
    prefixes = (list(wrapper.agvm_cfg.modules or []) + list(parts) +
                [n for n, _ in net.named_children()])
    for name, param in net.named_parameters():
        if param.requires_grad:
            continue
        module = _match(name, prefixes) or name.split('.')[0]
        count, tensors, names = report.frozen.get(module, (0, 0, []))
        sub = name[len(module) + 1:].split('.')[0] or name
        report.frozen[module] = (count + param.numel(), tensors + 1,
                                 names + [sub] * (sub not in names))
    report.anchor = wrapper.agvm_cfg.anchor
    kind = type(wrapper.optimizer).__name__
    report.rule = (f"'sgd' (raw gradients) for {kind}"
                   if wrapper.agvm_rule == 'sgd' else
                   f"'adam' (gradients preconditioned by exp_avg_sq) for "
                   f'{kind}')
    if wrapper.agvm_cfg.rule == 'auto':
        report.rule += ' (agvm.rule=auto)'


def _check_statistics(report: Report, recorder: StatisticsRecorder,
                      steps: int) -> None:
    if any(not math.isfinite(loss) for loss in recorder.losses):
        report.problems.append(
            'optim_wrapper.optimizer.lr: the loss became non-finite in the '
            'check steps; lower the lr or set optim_wrapper.clip_grad.')
    if len(recorder.steps) < steps:
        report.problems.append(
            f'AGVM took statistics on {len(recorder.steps)} of {steps} '
            'steps: a gradient was non-finite (see optim_wrapper.optimizer.'
            'lr, optim_wrapper.clip_grad).')
    seen = {m for phi, _ in recorder.steps for m in phi}
    unused = [m for m in report.modules if m not in seen]
    if recorder.steps and unused:
        report.problems.append(
            f'optim_wrapper.agvm.modules: {unused} got no gradient in any '
            'check step (not in the loss?); AGVM holds their factor at 1. '
            'Freeze them or leave them out of the modules.')


def check_config(cfg: Config, name: str, data_root: str,
                 work_dir: Optional[str] = None, steps: int = 3,
                 img_size: int = 64, batch_size: int = 1,
                 iters_per_epoch: Optional[int] = None) -> Report:
    """Check ``cfg`` (named ``name`` in the report) as described in the
    module docstring. The shapes data must exist under ``data_root``.

    Args:
        cfg (Config): The config as the real run would train it.
        name (str): Shown as the config's name.
        data_root (str): The shapes data (see :func:`generate_shapes`).
        work_dir (str, optional): For the check's logs; None: a temporary
            directory, removed afterwards.
        steps (int): Optimizer steps of the check.
        img_size (int): Side of the check's images.
        batch_size (int): Images per micro-batch.
        iters_per_epoch (int, optional): Of the real run, to place
            epoch-based schedules in iterations.
    """
    from tools.runner_setup import build_runner
    report = Report(config=name)
    kind = _type_name(cfg.get('optim_wrapper') or {}) or 'OptimWrapper'
    if kind not in KNOWN_WRAPPERS:
        report.problems.append(
            f'optim_wrapper.type={kind!r}: the check knows {KNOWN_WRAPPERS}; '
            'AGVM needs AGVMOptimWrapper (or AGVMAmpOptimWrapper).')
        return report
    if not kind.startswith('AGVM'):
        report.problems.append(
            f"optim_wrapper.type={kind!r} does not run AGVM: set type="
            f"'AGVM{kind}' (the check runs it so).")
    if 'agvm_mm' not in ((cfg.get('custom_imports') or {}).get('imports')
                         or []):
        report.problems.append(
            "custom_imports: add dict(imports=['agvm_mm'], "
            'allow_failed_imports=False); without it stock mmdet/mmseg tools '
            'do not find the AGVM types.')
    try:
        report.window, problems = agvm_window(cfg, iters_per_epoch)
        report.problems += problems
    except (KeyError, ValueError) as error:
        report.problems.append(str(error).strip('"'))
        return report
    counts = report.window.accumulative_counts
    if counts < 2 or counts % 2:
        report.notes.append(
            f'optim_wrapper.accumulative_counts={counts}: the real run needs '
            '>= 2 processes (AGVM compares the two halves of the ranks), '
            'or an even accumulative_counts >= 2 on one process.')

    check_cfg, notes = make_check_config(cfg, data_root, '', steps, img_size,
                                         batch_size)
    report.notes += notes
    report.task = detect_task(cfg)
    report.setup = (f'task {report.task}: shapes data at {img_size} px, '
                    f'{steps} optimizer steps of 2 micro-batches x '
                    f'{batch_size} image(s), 1 CPU process, AGVM statistics '
                    "on every step, the lr of the run's first steps")
    recorder, runner, trained = StatisticsRecorder(), None, False
    with tempfile.TemporaryDirectory(prefix='agvm_check_') as tmp:
        check_cfg.work_dir = work_dir or tmp
        try:
            runner = build_runner(check_cfg)
            runner.register_hook(recorder)
            runner.train()
            trained = True
        except Exception as error:  # reported, with the key when it has one
            message = str(error).strip('"')
            if 'more than 1 value per channel' in message:
                message += (' (a BN layer saw one value per channel: use '
                            '--batch-size 2)')
            report.problems.append(
                message if 'optim_wrapper' in message or 'agvm' in message
                else f'the check run failed: {type(error).__name__}: '
                f'{message}\n{traceback.format_exc(limit=-3)}')
    wrapper = getattr(runner, 'optim_wrapper', None)
    if hasattr(wrapper, 'agvm_cfg'):  # built, even if training failed
        _describe(runner.model, wrapper, report)
    if trained:
        report.steps = recorder.steps
        _check_statistics(report, recorder, steps)
    return report


def check_data_root(data_root: str, img_size: int) -> str:
    """Generate the small shapes set the check trains on (reused when it is
    there already); returns ``data_root``."""
    from ..datasets import generate_shapes
    generate_shapes(data_root, num_train=8, num_val=1, img_size=img_size,
                    workers=1)
    return osp.join(data_root, '')
