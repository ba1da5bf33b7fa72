"""Hook that records every AGVM statistics step's per-module variance and
gradient noise into a CSV (the data of the gradient-variance analysis, the
paper's Figure 1)."""
import csv
import math
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .agvm_hook import agvm_wrappers, samples_per_step, statistics_steps

CSV_NAME = 'gradient_variance.csv'
COLUMNS = ('batch', 'step', 'iteration', 'module', 'phi', 'scale', 'gsq',
           'trsigma', 'bnoise')


@HOOKS.register_module()
class GradientVarianceHook(Hook):
    """Appends each module's ``Phi_m`` and ``s_m`` and its gradient noise to
    ``<work_dir>/<filename>`` at every AGVM statistics step (not only at
    logger intervals), one row per module: ``batch, step, iteration, module,
    phi, scale, gsq, trsigma, bnoise``.

    ``step`` is the 0-based optimizer step the statistics were taken on,
    ``iteration`` the 1-based runner iteration (micro-batch) that ended it;
    ``gsq`` and ``trsigma`` are that step's estimates of ``|G|^2`` and of
    ``tr(Sigma)`` (per sample), ``bnoise`` the running critical batch
    (docs/algorithm.md §9); NaN where there is none.

    Args:
        batch (int, optional): Global batch written in the ``batch`` column.
            None: world size x train batch size x accumulative counts.
        filename (str): CSV name inside the work dir.

    Examples:
        >>> custom_hooks = [dict(type='GradientVarianceHook')]
    """
    priority = 'LOW'

    def __init__(self, batch: Optional[int] = None,
                 filename: str = CSV_NAME) -> None:
        self.batch = batch
        self.filename = filename
        self.path: Optional[str] = None

    def before_train(self, runner) -> None:
        wrappers = agvm_wrappers(runner)
        if not wrappers:
            raise RuntimeError(
                'GradientVarianceHook needs an AGVM optim wrapper '
                "(optim_wrapper.type='AGVMOptimWrapper'; agvm.modulate=False "
                'only measures).')
        if self.batch is None:
            self.batch = samples_per_step(runner, wrappers[0])
        self.path = osp.join(runner.work_dir, self.filename)
        if is_main_process() and not (runner._resume and
                                      osp.exists(self.path)):
            with open(self.path, 'w', newline='') as f:
                csv.writer(f).writerow(COLUMNS)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        rows = []
        for stats in statistics_steps(runner):
            bnoise = stats.wrapper.agvm_noise_scale(self.batch)
            for module, phi in stats.variances.items():
                gsq, trace = stats.gradient_noise.get(module,
                                                      (math.nan, math.nan))
                running = bnoise.get(module, math.nan)
                values = (phi, stats.scales.get(module, 1.0), gsq,
                          trace * self.batch,
                          running if math.isfinite(running) else math.nan)
                rows.append((self.batch, stats.step, runner.iter + 1, module)
                            + tuple(repr(float(v)) for v in values))
        if rows and is_main_process():
            with open(self.path, 'a', newline='') as f:
                csv.writer(f).writerows(rows)
