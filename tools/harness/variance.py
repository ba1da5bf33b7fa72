"""The gradient-variance CSV (``GradientVarianceHook``'s rows): read,
write, check and summarise it."""
import csv
import math
import os
import os.path as osp
from collections import defaultdict
from typing import Iterable, List, Sequence

from agvm_mm.hooks.gradient_variance_hook import COLUMNS


def modules_of(rows: Sequence[dict]) -> List[str]:
    """Module names in the order they were first recorded (model order)."""
    return list(dict.fromkeys(r['module'] for r in rows))


def read_rows(path: str) -> List[dict]:
    """Rows of a gradient-variance CSV, typed."""
    with open(path, newline='') as f:
        return [dict(batch=int(r['batch']), step=int(r['step']),
                     iteration=int(r['iteration']), module=r['module'],
                     phi=float(r['phi']), scale=float(r['scale']))
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


def summarize(rows: Sequence[dict], anchor: str = 'backbone') -> str:
    """Mean Phi per module and batch over the last half of each batch's
    measurement steps, with the ratio anchor / module."""
    modules = modules_of(rows)
    anchor = anchor if anchor in modules else modules[0]
    by_batch = defaultdict(list)
    for r in rows:
        by_batch[r['batch']].append(r)
    width = max(12, max(len(m) for m in modules) + 2)
    lines = [f'Mean Phi = 1 - cos(g_A, g_B) over the last half of the '
             f'measurement steps; ({anchor} / module) in brackets',
             'batch  steps  ' + ''.join(m.ljust(width + 9) for m in modules)]
    for batch in sorted(by_batch):
        batch_rows = by_batch[batch]
        steps = sorted({r['step'] for r in batch_rows})
        late = set(steps[len(steps) // 2:])
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
    return '\n'.join(lines)
