"""Runs the check and reports it: the partition, the frozen parameters, the
rule, the window, Phi and s of every check step, and the problems."""
import itertools
import math
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.hooks import Hook

from agvm_mm.hooks.agvm_hook import samples_per_step, statistics_steps
from tools.harness.variance import describe_critical_batch
from tools.runner_setup import build_runner
from .build import detect_task, make_check_config
from .hooks import dropped_hooks
from .retry import cuda_only_op, inputs_it_needs, message_of
from .window import Window, agvm_window, type_name

# wrappers the check runs as AGVMOptimWrapper (fp32: no GPU here)
KNOWN_WRAPPERS = ('OptimWrapper', 'AmpOptimWrapper', 'AGVMOptimWrapper',
                  'AGVMAmpOptimWrapper')
# numbers the check runs of a process: mmengine keeps one visualizer, logger
# and message hub per name (the timestamp, or 'visualizer' in the stock
# configs), so a retry would reuse the first run's, logging to its removed
# work_dir
_RUNS = itertools.count()
# exit status of tools/check_config.py when the check steps need CUDA
CUDA_ONLY_STATUS = 3


class StatisticsRecorder(Hook):
    """Keeps each AGVM step's Phi and s, the running critical batches, and
    each iteration's loss."""
    priority = 'LOW'

    def __init__(self) -> None:
        self.steps: List[Tuple[Dict[str, float], Dict[str, float]]] = []
        self.critical: Dict[str, float] = {}
        self.losses: List[float] = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if outputs and 'loss' in outputs:
            loss = outputs['loss']
            self.losses.append(float(getattr(loss, 'detach', lambda: loss)()))
        for stats in statistics_steps(runner):
            self.steps.append((stats.variances, stats.scales))
            self.critical = stats.wrapper.agvm_noise_scale(
                samples_per_step(runner, stats.wrapper))


@dataclass
class Report:
    """What :func:`check_config` found; ``str(report)`` is the printout."""
    config: str
    task: str = ''
    setup: str = ''
    modules: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    contents: Dict[str, List[str]] = field(default_factory=dict)
    frozen: Dict[str, Tuple[int, int, List[str]]] = field(
        default_factory=dict)
    anchor: str = ''
    rule: str = ''
    window: Optional[Window] = None
    steps: List[Tuple[Dict[str, float], Dict[str, float]]] = field(
        default_factory=list)
    critical: Dict[str, float] = field(default_factory=dict)
    global_batch: Optional[Tuple[int, str]] = None
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    cuda_only: str = ''

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_status(self) -> int:
        """0: OK; 1: a problem; :data:`CUDA_ONLY_STATUS`: no problem, but
        the check steps need an op without a CPU kernel."""
        if self.problems:
            return 1
        return CUDA_ONLY_STATUS if self.cuda_only else 0

    def __str__(self) -> str:
        out = [f'AGVM check of {self.config}', f'  {self.setup}']
        width = max([22] + [len(m) for m in [*self.modules, *self.frozen]])
        if self.modules:
            out.append(f'Modules (anchor {self.anchor!r}), trainable '
                       'parameters')
            # a module made of more than its name: what a rule put in it
            out += [f'  {m:<{width}} {n / 1e6:8.3f} M  ({t} tensors)' + (
                f'  = {" + ".join(self.contents[m])}'
                if m in self.contents else '')
                for m, (n, t) in self.modules.items()]
        if self.frozen:
            out.append('Frozen parameters, left out of AGVM')
            out += [f'  {m:<{width}} {n / 1e6:8.3f} M  ({t} tensors: '
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
        if self.critical:
            out += self._critical_lines()
        for title, items in (('Notes', self.notes),
                             ('Problems', self.problems)):
            if items:
                out.append(title)
                out += [f'  - {item}' for item in items]
        if not self.ok:
            out.append(f'Result: {len(self.problems)} problem(s)')
        elif self.cuda_only:
            out.append('Result: no problem in what was checked; not trained '
                       f'on this CPU ({self.cuda_only})')
        else:
            out.append('Result: OK')
        return '\n'.join(out)


    def _critical_lines(self) -> List[str]:
        """Each module's critical batch after the check's steps, and how far
        the real run's global batch is beyond it (docs/algorithm.md §9)."""
        steps = len(self.steps)
        out = [f'Critical batch per module (gradient noise scale, in images '
               f'of the check\'s data) after {steps} step(s)']
        width = max(len(m) for m in self.critical) + 2
        batch, source = self.global_batch or (None, '')
        worst = None
        for module, value in self.critical.items():
            line = f'  {module:<{width}}{describe_critical_batch(value):<28}'
            if batch and math.isfinite(value) and value > 0:
                line += f'global batch {batch} is {_times(batch / value)} it'
                if worst is None or value < worst[1]:
                    worst = module, value
            out.append(line.rstrip())
        if batch is None:
            out.append('  (give --global-batch B for the real run\'s ratio)')
        elif worst is not None:
            module, value = worst
            out.append(
                f'  global batch {batch} ({source}) is {_times(batch / value)} '
                f"the {module}'s critical batch (about {value:.3g} images) "
                f'after {steps} step(s); this estimate is rough this early '
                'and on the check\'s small images: see the gradient-variance '
                'tool (tools/analysis_tools/gradient_variance.py).')
        return out


def _times(ratio: float) -> str:
    return f'{ratio:,.0f}x' if ratio >= 100 else f'{ratio:.2g}x'


def _describe(model, wrapper, report: Report) -> None:
    """Partition, frozen parameters, anchor and rule of the built model."""
    from agvm_mm.partition import (longest_prefix, module_contents,
                                   partition_modules, unwrap)
    net = unwrap(model)
    parts = partition_modules(net, wrapper.agvm_cfg.modules)
    report.modules = {m: (sum(p.numel() for p in ps), len(ps))
                      for m, ps in parts.items()}
    report.contents = {
        m: shown for m, shown in module_contents(
            net, wrapper.agvm_cfg.modules).items() if shown != [m]}
    # configured prefixes too: a frozen one (e.g. backbone.layer1) is shown
    prefixes = (list(wrapper.agvm_cfg.modules or []) + list(parts) +
                [n for n, _ in net.named_children()])
    for name, param in net.named_parameters():
        if param.requires_grad:
            continue
        module = longest_prefix(name, prefixes) or name.split('.')[0]
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


def _try(report: Report, cfg: Config, data_root: str,
         work_dir: Optional[str], steps: int, img_size: int,
         batch_size: int) -> Tuple[object, StatisticsRecorder,
                                   Optional[Exception], str]:
    """Train the check config of ``cfg`` once; returns the runner (None if
    it was not built), the recorder, the error (None: trained) and its
    traceback. Sets the report's setup line and adds the check's notes."""
    check_cfg, notes = make_check_config(cfg, data_root, '', steps, img_size,
                                         batch_size)
    report.notes += [n for n in notes if n not in report.notes]
    report.setup = (f'task {report.task}: shapes data at {img_size} px, '
                    f'{steps} optimizer steps of 2 micro-batches x '
                    f'{batch_size} image(s), 1 CPU process, AGVM statistics '
                    "on every step, the lr of the run's first steps")
    check_cfg.experiment_name = f'agvm_check_{next(_RUNS)}'
    if check_cfg.get('visualizer'):
        check_cfg.visualizer.name = check_cfg.experiment_name
    recorder, runner = StatisticsRecorder(), None
    with tempfile.TemporaryDirectory(prefix='agvm_check_') as tmp:
        check_cfg.work_dir = work_dir or tmp
        try:
            runner = build_runner(check_cfg)
            runner.register_hook(recorder)
            runner.train()
        except Exception as error:  # reported, with the key when it has one
            return runner, recorder, error, traceback.format_exc(limit=-3)
    return runner, recorder, None, ''


def real_global_batch(cfg: Config, given: Optional[int] = None
                      ) -> Optional[Tuple[int, str]]:
    """The real run's global batch and where it comes from: ``given``
    (``--global-batch``), else the config's ``auto_scale_lr.base_batch_size``
    (mmdet's and mmseg's convention: the recipe's GPUs x images per GPU);
    None if neither."""
    if given:
        return given, '--global-batch'
    base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    return (int(base), 'auto_scale_lr.base_batch_size') if base else None


def check_config(cfg: Config, name: str, data_root: str,
                 work_dir: Optional[str] = None, steps: int = 3,
                 img_size: int = 64, batch_size: int = 1,
                 iters_per_epoch: Optional[int] = None,
                 global_batch: Optional[int] = None) -> Report:
    """Check ``cfg`` (named ``name`` in the report) as :mod:`tools.check`
    describes. The shapes data must exist under ``data_root``.

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
        global_batch (int, optional): Of the real run, to compare with the
            modules' critical batches; default from the config
            (:func:`real_global_batch`).
    """
    report = Report(config=name,
                    global_batch=real_global_batch(cfg, global_batch))
    kind = type_name(cfg.get('optim_wrapper') or {}) or 'OptimWrapper'
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

    report.problems += dropped_hooks(cfg)

    report.task = detect_task(cfg)
    runner, recorder, error, trace = _try(
        report, cfg, data_root, work_dir, steps, img_size, batch_size)
    retry = inputs_it_needs(cfg, error, img_size, batch_size)
    if retry is not None:
        size, batch, why = retry
        report.notes.append(
            f'Retried with --img-size {size} --batch-size {batch}: {why} '
            f'(the first try, at {img_size} px x {batch_size} image(s), '
            f'failed: {type(error).__name__}: {message_of(error, 160)}).')
        runner, recorder, error, trace = _try(
            report, cfg, data_root, work_dir, steps, size, batch)
    if error is not None:
        message = message_of(error)
        op = cuda_only_op(message)
        if op is not None:
            report.cuda_only = f'CUDA only: {op}'
            report.notes.append(
                f'The model needs the op {op!r}, which has no CPU kernel '
                f'here ({message_of(error, 160)}): the check steps did not run. '
                'The '
                'partition and the window above are checked; check Phi and s '
                'on a GPU machine.')
        elif 'optim_wrapper' in message or 'agvm' in message:
            report.problems.append(message)  # names the key already
        else:
            report.problems.append(
                f'the check run failed: {type(error).__name__}: '
                f'{message}\n{trace}')
    wrapper = getattr(runner, 'optim_wrapper', None)
    if hasattr(wrapper, 'agvm_cfg'):  # built, even if training failed
        _describe(runner.model, wrapper, report)
    if error is None:
        report.steps, report.critical = recorder.steps, recorder.critical
        _check_statistics(report, recorder, steps)
    return report
