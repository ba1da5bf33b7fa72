"""The report of a grid: ``results.md`` (one table per family and metric in
the paper's layout), ``results.json`` and ``results.png``."""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

from .grid import FAMILIES, Cell, Metric, family_metrics
from .optims import OPTIMIZERS
from .results import CellResult, read_cell_result

DASH = '\u2014'  # "—": cell not run / failed


def format_value(result: CellResult, metric: Metric) -> str:
    """The table's text of one metric of one cell: the logged value in the
    paper's units (percent, one decimal for COCO mAP, two otherwise), "NaN"
    for a diverged run, "—" when there is none."""
    if result.status == 'diverged':
        return 'NaN'
    if result.status != 'done' or metric.key not in result.values:
        return DASH
    value = result.values[metric.key] * metric.scale
    if not math.isfinite(value):
        return 'NaN'
    return f'{value:.1f}' if metric.scale == 100.0 else f'{value:.2f}'


def describe_settings(cell: Cell) -> str:
    """One line with what a local cell trained: batch layout, steps, epochs,
    lr and warm-up ('' for cells without them, e.g. cluster cells)."""
    info = cell.info
    if 'steps' not in info:
        return ''
    text = (f"1 x {info['batch_per_proc']} x {info['accumulation']}, "
            f"{info['steps']} steps ({info['epochs']:g} epochs of "
            f"{info['data_size']} images), lr {info['lr']:.4g}")
    if info.get('warmup_iters'):
        text += (f", warm-up {info['warmup_iters']} iterations ("
                 f"{math.ceil(info['warmup_iters'] / info['accumulation'])} "
                 'steps)')
    return text


def _ordered(values: Sequence) -> List:
    return list(dict.fromkeys(values))


def build_report(cells: Sequence[Cell]) -> Tuple[str, dict]:
    """Markdown (one table per family and metric: rows = optimizers,
    columns = batch sizes) and a JSON-able dict of every cell."""
    results = {id(c): read_cell_result(c) for c in cells}
    lines = ['# AGVM reproduction', '',
             'Numbers read from each cell\'s work dir (mmengine logs). '
             '"NaN": the run diverged and was stopped; '
             f'"{DASH}": no result (reason below the table).', '']
    data = {'cells': []}
    for family in _ordered(c.family for c in cells):
        fam = FAMILIES[family]
        fcells = [c for c in cells if c.family == family]
        batches = _ordered(c.batch for c in fcells)
        optims = _ordered(c.optim for c in fcells)
        by_key = {(c.optim, c.batch): c for c in fcells}
        for metric in family_metrics(family):
            lines += [f'## {fam.title}: {metric.label}', '',
                      '| optimizer | ' + ' | '.join(
                          f'b{b}' for b in batches) + ' |',
                      '|---|' + '---|' * len(batches)]
            for optim in optims:
                row = [format_value(results[id(by_key[optim, b])], metric)
                       if (optim, b) in by_key else DASH for b in batches]
                lines.append(f'| {OPTIMIZERS[optim].title} | ' +
                             ' | '.join(row) + ' |')
            lines.append('')
        notes, zeros = [], []
        for cell in fcells:
            result = results[id(cell)]
            if result.status != 'done':
                mark = 'NaN' if result.status == 'diverged' else DASH
                notes.append(f'* {cell.optim} b{cell.batch}: {mark} '
                             f'{result.reason}')
            elif result.reason:
                zeros.append(f'* {cell.optim} b{cell.batch}: '
                             f'{result.reason}')
        if notes:
            lines += ['Cells without a number:', ''] + notes + ['']
        if zeros:
            lines += ['Scored 0 (COCO metrics of an empty result):', ''] + \
                zeros + ['']
        settings = [f'* {c.optim} b{c.batch}: {describe_settings(c)}'
                    for c in fcells if describe_settings(c)]
        if settings:
            lines += ['Settings:', ''] + settings + ['']
        sources = [f'* {c.optim} b{c.batch}: `{results[id(c)].source}`'
                   for c in fcells if results[id(c)].status == 'done']
        if sources:
            lines += ['Read from:', ''] + sources + ['']
    for cell in cells:
        result = results[id(cell)]
        data['cells'].append(dict(
            family=cell.family, optim=cell.optim, batch=cell.batch,
            work_dir=cell.work_dir, config=cell.config,
            source_config=cell.source_config, status=result.status,
            values=result.values, source=result.source,
            reason=result.reason, info=cell.info,
            table={m.label: format_value(result, m)
                   for m in family_metrics(cell.family)}))
    return '\n'.join(lines), data


def plot_report(cells: Sequence[Cell], out_png: str) -> str:
    """Main metric vs batch size (log2 axis), one line per optimizer, one
    panel per family; a diverged cell is an ``x`` on the lower edge."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    families = _ordered(c.family for c in cells)
    fig, axes = plt.subplots(1, len(families), squeeze=False,
                             figsize=(4.6 * len(families), 3.8))
    for ax, family in zip(axes[0], families):
        fam = FAMILIES[family]
        metric = fam.metrics[0]
        fcells = [c for c in cells if c.family == family]
        for optim in _ordered(c.optim for c in fcells):
            title = OPTIMIZERS[optim].title
            points, diverged = [], []
            for cell in sorted((c for c in fcells if c.optim == optim),
                               key=lambda c: c.batch):
                result = read_cell_result(cell)
                text = format_value(result, metric)
                if text == 'NaN':
                    diverged.append(cell.batch)
                elif text != DASH:
                    points.append((cell.batch, float(text)))
            line = None
            if points:
                line, = ax.plot(*zip(*points), marker='o', label=title)
            if diverged:
                ax.plot(diverged, [0.0] * len(diverged), linestyle='none',
                        marker='x', markersize=9,
                        color=line.get_color() if line else None,
                        transform=ax.get_xaxis_transform(),
                        label=None if line else f'{title} (diverged)',
                        clip_on=False)
        batches = sorted({c.batch for c in fcells})
        ax.set_xscale('log', base=2)
        ax.set_xticks(batches)
        ax.set_xticklabels([str(b) for b in batches])
        ax.set(title=fam.title, xlabel='global batch size',
               ylabel=metric.label + ' (%)')
        if not ax.lines:
            ax.text(0.5, 0.5, 'no results', transform=ax.transAxes,
                    ha='center', va='center', color='gray')
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle('x: diverged (NaN)', fontsize=8, y=0.02, x=0.98,
                 ha='right')
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def write_report(cells: Sequence[Cell], out_dir: str) -> Dict[str, str]:
    """``results.md``, ``results.json`` and ``results.png`` in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    text, data = build_report(cells)
    paths = dict(markdown=osp.join(out_dir, 'results.md'),
                 json=osp.join(out_dir, 'results.json'),
                 png=osp.join(out_dir, 'results.png'))
    with open(paths['markdown'], 'w') as f:
        f.write(text)
    with open(paths['json'], 'w') as f:
        json.dump(data, f, indent=1)
    plot_report(cells, paths['png'])
    return paths
