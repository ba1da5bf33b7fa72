"""The gradient-variance CSV (``GradientVarianceHook``'s rows): read,
write, check and summarise it: Phi and the critical batch ``B_noise`` per
module and batch size."""
import csv
import math
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, Iterable, List, Sequence, Tuple

from agvm_mm.hooks.gradient_variance_hook import COLUMNS


def modules_of(rows: Sequence[dict]) -> List[str]:
    """Module names in the order they were first recorded (model order)."""
    return list(dict.fromkeys(r['module'] for r in rows))


def read_rows(path: str) -> List[dict]:
    """Rows of a gradient-variance CSV, typed (the noise columns NaN in a
    CSV written before they existed)."""
    with open(path, newline='') as f:
        return [dict(batch=int(r['batch']), step=int(r['step']),
                     iteration=int(r['iteration']), module=r['module'],
                     phi=float(r['phi']), scale=float(r['scale']),
                     **{k: float(r.get(k) or math.nan)
                        for k in ('gsq', 'trsigma', 'bnoise')})
                for r in csv.DictReader(f)]


def write_csv(rows: Iterable[dict], path: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def check_rows(rows: Sequence[dict], batch: int, steps: int,
               interval: int) -> None:
    """Every measurement step ``0, interval, ...`` below ``steps`` has one
    row per module."""
    expected = set(range(0, steps, interval))
    got = defaultdict(set)
    for r in rows:
        got[r['step']].add(r['module'])
    modules = set(modules_of(rows))
    missing = sorted(s for s in expected if got.get(s) != modules)
    if missing or set(got) - expected:
        raise RuntimeError(
            f'batch {batch}: measurements expected at optimizer steps '
            f'{sorted(expected)[:5]}... for modules {sorted(modules)}; '
            f'missing or incomplete at {missing[:10]}, unexpected at '
            f'{sorted(set(got) - expected)[:10]} (non-finite gradients '
            'are skipped: see the cell log).')


def describe_critical_batch(value: float) -> str:
    """A critical batch as a user reads it: never 0, inf or negative."""
    if math.isnan(value):
        return 'not yet'
    if not value > 0 or math.isinf(value):
        return 'noise-dominated (>> batch)'
    return f'{value:.3g}'


def critical_batches(rows: Sequence[dict]) -> Dict[int, Dict[str, float]]:
    """``B_noise`` per batch and module over the last half of its steps:
    the mean ``tr(Sigma)`` over the mean ``|G|^2``, each averaged on its own
    (a mean of per-step ratios would be dominated by the steps whose
    ``|G|^2`` estimate is near 0). NaN without data; ``inf`` where the mean
    ``|G|^2`` is not positive."""
    out: Dict[int, Dict[str, float]] = defaultdict(dict)
    for batch, batch_rows in _by_batch(rows).items():
        for m in modules_of(rows):
            out[batch][m] = _ratio(*_mean_noise(batch_rows, [m]))
    return dict(out)


def whole_model_critical_batch(rows: Sequence[dict]) -> Dict[int, float]:
    """The whole model's ``B_noise`` per batch over the same steps as
    :func:`critical_batches`: both estimates summed over the modules before
    the ratio (they add up over disjoint parameters), what plans the batch
    (:func:`agvm_mm.large_batch_plan`). NaN where a module has no finite
    estimate; ``inf`` where the summed ``|G|^2`` is not positive."""
    return {batch: _ratio(*_mean_noise(batch_rows, modules_of(batch_rows)))
            for batch, batch_rows in _by_batch(rows).items()}


def _mean_noise(batch_rows: Sequence[dict],
                modules: Sequence[str]) -> Tuple[float, float]:
    """``(|G|^2, tr(Sigma))`` of ``modules`` together: each module's mean
    over the last half of the steps, summed; NaN if one has none."""
    late = _late_steps(batch_rows)
    gsq = trace = 0.0
    for m in modules:
        picked = [r for r in batch_rows if r['module'] == m
                  and r['step'] in late and math.isfinite(r['gsq'])]
        if not picked:
            return math.nan, math.nan
        gsq += sum(r['gsq'] for r in picked) / len(picked)
        trace += sum(r['trsigma'] for r in picked) / len(picked)
    return gsq, trace


def _ratio(gsq: float, trace: float) -> float:
    if math.isnan(gsq):
        return math.nan
    return trace / gsq if gsq > 0 else math.inf


def _by_batch(rows: Sequence[dict]) -> Dict[int, List[dict]]:
    by_batch = defaultdict(list)
    for r in rows:
        by_batch[r['batch']].append(r)
    return by_batch


def _late_steps(batch_rows: Sequence[dict]) -> set:
    steps = sorted({r['step'] for r in batch_rows})
    return set(steps[len(steps) // 2:])


def summarize(rows: Sequence[dict], anchor: str = 'backbone') -> str:
    """Mean Phi per module and batch over the last half of each batch's
    measurement steps, with the ratio anchor / module."""
    modules = modules_of(rows)
    anchor = anchor if anchor in modules else modules[0]
    by_batch = _by_batch(rows)
    width = max(12, max(len(m) for m in modules) + 2)
    lines = [f'Mean Phi = 1 - cos(g_A, g_B) over the last half of the '
             f'measurement steps; ({anchor} / module) in brackets',
             'batch  steps  ' + ''.join(m.ljust(width + 9) for m in modules)]
    for batch in sorted(by_batch):
        batch_rows = by_batch[batch]
        late = _late_steps(batch_rows)
        means = {}
        for m in modules:
            values = [r['phi'] for r in batch_rows
                      if r['module'] == m and r['step'] in late]
            means[m] = sum(values) / len(values) if values else math.nan
        cells = []
        for m in modules:
            ratio = means[anchor] / means[m] if means[m] else math.inf
            cells.append(f'{means[m]:.4g}'.ljust(width) +
                         f'({ratio:.2f})'.ljust(9))
        lines.append(f'{batch:<7d}{len(late):<7d}' + ''.join(cells))
    critical = critical_batches(rows)
    if any(math.isfinite(v) or math.isinf(v)
           for values in critical.values() for v in values.values()):
        lines += ['', 'Critical batch B_noise = mean tr(Sigma) / mean |G|^2 '
                  'over the same steps, in images; (batch / B_noise) in '
                  'brackets',
                  'batch  ' + ''.join(m.ljust(width + 9) for m in modules)]
        for batch in sorted(critical):
            cells = []
            for m in modules:
                value = critical[batch][m]
                ratio = (f'({batch / value:.2g}x)'
                         if math.isfinite(value) and value > 0 else '')
                cells.append(describe_critical_batch(value).ljust(width) +
                             ratio.ljust(9))
            lines.append(f'{batch:<7d}' + ''.join(cells))
    return '\n'.join(lines)
