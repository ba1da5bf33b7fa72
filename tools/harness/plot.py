"""The tools' figures of AGVM's per-module statistics: the main job's
factors over training (from an mmengine log) and the gradient-variance
tool's Phi and critical batch per batch size."""
import json
import math
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from .variance import modules_of

Series = Dict[str, List[Tuple[int, float]]]


PREFIXES = ('agvm_phi/', 'agvm_scale/', 'agvm_bnoise/')


def read_agvm_scalars(scalars_json: str) -> Tuple[Series, Series, Series]:
    """``(phi, scale, bnoise)``: module -> [(iteration, value)] from the
    local visualizer backend's ``scalars.json`` (one JSON object per line);
    NaN critical batches (none yet, or noise-dominated) are left out."""
    series: Tuple[Series, ...] = tuple(defaultdict(list) for _ in PREFIXES)
    with open(scalars_json) as f:
        for line in f:
            record = json.loads(line)
            step = record.get('step', record.get('iter'))
            for key, value in record.items():
                for prefix, found in zip(PREFIXES, series):
                    if key.startswith(prefix) and not math.isnan(value):
                        found[key[len(prefix):]].append((step, value))
    return tuple(dict(s) for s in series)


def plot_agvm(scalars_json: str, out_png: str, title: str = '') -> str:
    """Panels over training iterations, one line per module: ``Phi_m = 1 -
    cos`` (log scale), ``s_m`` and, where logged, the critical batch
    ``B_noise`` (log scale). Returns ``out_png``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    phi, scale, bnoise = read_agvm_scalars(scalars_json)
    if not phi:
        raise ValueError(f'{scalars_json} holds no agvm_phi/* scalars: was '
                         'AGVMHook in custom_hooks?')
    panels = [(phi, dict(yscale='log', ylabel='gradient variance  '
                         '1 - cos(g_A, g_B)')),
              (scale, dict(ylabel='AGVM factor s_m (lr multiplier)'))]
    if bnoise:
        panels.append((bnoise, dict(yscale='log', ylabel='critical batch '
                                    'B_noise (images)')))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4),
                             sharex=True)
    for ax, (series, style) in zip(axes, panels):
        for name, points in series.items():
            ax.plot(*zip(*points), label=name)
        ax.set(xlabel='iteration', **style)
    axes[1].axhline(1.0, color='gray', lw=0.5)
    axes[1].legend(fontsize=8)
    fig.suptitle(title or 'AGVM per-module statistics')
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_gradient_variance(rows: Sequence[dict], out_png: str,
                           title: str = '', dpi: int = 100,
                           panel_size=(4.0, 3.4),
                           log_y: Optional[bool] = None) -> str:
    """The paper's Figure 1: one panel per batch size (shared y axis), one
    line per module, Phi against the optimizer step; below it, where the
    rows have it, the running critical batch ``B_noise`` of each module
    against the batch itself (dashed): the same figure in units a user can
    act on. Each row of panels measures ``len(batches) * panel_size[0] x
    panel_size[1]`` inches at ``dpi``. ``log_y`` None: log scale when Phi
    spans more than a factor 20."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not rows:
        raise ValueError('no gradient-variance rows to plot.')
    batches = sorted({r['batch'] for r in rows})
    modules = modules_of(rows)
    positive = [r['phi'] for r in rows if r['phi'] > 0]
    if log_y is None:
        log_y = bool(positive) and max(positive) > 20 * min(positive)
    colors = {m: f'C{i % 10}' for i, m in enumerate(modules)}
    noise = any(math.isfinite(r.get('bnoise', math.nan)) for r in rows)
    fig, axes = plt.subplots(
        1 + noise, len(batches), sharey='row', squeeze=False,
        figsize=(panel_size[0] * len(batches), panel_size[1] * (1 + noise)))
    for ax, batch in zip(axes[0], batches):
        for m in modules:
            points = sorted((r['step'], r['phi']) for r in rows
                            if r['batch'] == batch and r['module'] == m
                            and (r['phi'] > 0 or not log_y))
            if not points:
                continue
            x, y = zip(*points)
            window = max(1, len(y) // 10)
            if window > 1:  # raw values faint, moving average solid
                ax.plot(x, y, color=colors[m], lw=0.6, alpha=0.3)
                y = [sum(y[max(0, i - window + 1):i + 1]) /
                     len(y[max(0, i - window + 1):i + 1])
                     for i in range(len(y))]
            ax.plot(x, y, color=colors[m], lw=1.5, label=m,
                    marker='o' if len(x) < 12 else None, ms=3)
        ax.set_title(f'batch {batch}', fontsize=10)
        ax.set_xlabel('optimizer step')
        ax.grid(alpha=0.3, which='both' if log_y else 'major')
        if log_y:
            ax.set_yscale('log')
    axes[0][0].set_ylabel(r'$\Phi_m = 1 - \cos(g_A, g_B)$')
    axes[0][-1].legend(fontsize=8, loc='best')
    if noise:
        _plot_critical_batch(axes[1], rows, batches, modules, colors)
    fig.suptitle(title or 'Gradient variance per module', fontsize=11)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=dpi)
    plt.close(fig)
    return out_png


def _plot_critical_batch(axes, rows: Sequence[dict], batches: List[int],
                         modules: List[str], colors: Dict[str, str]) -> None:
    """One panel per batch: each module's running ``B_noise`` (gaps where
    there is no estimate or it is noise-dominated), the batch dashed."""
    for ax, batch in zip(axes, batches):
        for m in modules:
            points = sorted((r['step'], r['bnoise']) for r in rows
                            if r['batch'] == batch and r['module'] == m
                            and r.get('bnoise', 0) > 0)
            if points:
                ax.plot(*zip(*points), color=colors[m], lw=1.5, label=m)
        ax.axhline(batch, color='gray', ls='--', lw=1, label='batch')
        ax.set_yscale('log')
        ax.set_xlabel('optimizer step')
        ax.grid(alpha=0.3, which='both')
    axes[0].set_ylabel('critical batch $B_{noise}$ (images)')
    axes[-1].legend(fontsize=8, loc='best')
