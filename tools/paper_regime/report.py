"""The verdict (the issue's rule) and the files of the paper-regime grid:
paper_regime.json (a record per run), paper_regime.md (tables and the
verdict) and paper_regime.png (mAP against lr)."""
import json
import math
import os
import os.path as osp
from dataclasses import asdict
from typing import Dict, List, Optional, Sequence, Tuple

from .grid import (ARMS, EPOCHS, LARGE, NUM_TRAIN, REF_BATCH, Record, Run,
                   best, plan, sweep)


def compare(done: Dict[str, Record],
            batch: int) -> Tuple[Optional[dict], List[str]]:
    """The rule's figures at ``batch`` (best-of-sweep SGD and AGVM, each
    over its two seeds; a diverged run counts as 0 mAP) and the facts to
    print; None and why while a run they need is missing."""
    ref = [done[r.name].bbox_mAP for r in plan(done)
           if r.batch == REF_BATCH and r.name in done]
    tops = {arm: best(sweep(arm, batch, done), done)
            for arm in ('sgd', 'agvm')}
    if len(ref) < 2 or None in tops.values():
        return None, [f'the reference or a sweep at batch {batch} has not '
                      'finished']
    seeds = {}
    for arm, top in tops.items():
        again = done.get(Run(arm, batch, top.lr, 1, top.rule).name)
        if again is None:
            return None, [f'the seed-1 rerun of the best {arm} lr at batch '
                          f'{batch} has not finished']
        seeds[arm] = [done[top.name].bbox_mAP or 0.0, again.bbox_mAP or 0.0]
    ref_mean = sum(ref) / len(ref)
    sgd, agvm = (sum(v) / 2 for v in (seeds['sgd'], seeds['agvm']))
    gap, gain = ref_mean - sgd, agvm - sgd
    figures = dict(
        gap=gap, gain=gain, recovered=gain / gap if gap > 0 else math.nan,
        each=all(a - s >= 1.0 for a, s in zip(seeds['agvm'], seeds['sgd'])))
    per_seed = [round(a - s, 2)
                for a, s in zip(seeds['agvm'], seeds['sgd'])]
    facts = [f'reference b{REF_BATCH}: {ref_mean:.2f} mAP (seeds {ref})',
             f'best SGD b{batch}: {sgd:.2f} (lr {tops["sgd"].lr:.4g}, seeds '
             f'{seeds["sgd"]}); gap to the reference {gap:.2f}',
             f'best AGVM b{batch}: {agvm:.2f} (lr {tops["agvm"].lr:.4g}, '
             f'seeds {seeds["agvm"]}); gain over SGD {gain:.2f} (per seed '
             f'{per_seed}), {100 * figures["recovered"]:.0f} % of the gap '
             'recovered']
    diverged = [f'{ARMS[arm]} seed {seed}' for arm, top in tops.items()
                for seed in (0, 1)
                if done[Run(arm, batch, top.lr, seed, top.rule).name].diverged]
    if diverged:
        facts.append('diverged, counted as 0 mAP: ' + ', '.join(diverged))
    return figures, facts


def verdict(done: Dict[str, Record]) -> Tuple[str, List[str]]:
    """The issue's rule at the largest batch, with the figures it used."""
    figures, facts = compare(done, max(LARGE))
    if figures is None:
        return 'pending', facts
    gap, gain = figures['gap'], figures['gain']
    if gap >= 1.5 and gain >= 1.0 and figures['each'] and \
            figures['recovered'] >= 0.4:
        return 'reproduces', facts
    if gap >= 1.5 and gain <= 0.3:
        return 'does not reproduce', facts
    return 'inconclusive', facts


def write_report(done: Dict[str, Record], out: str) -> None:
    os.makedirs(out, exist_ok=True)
    records = [done[r.name] for r in plan(done) if r.name in done]
    with open(osp.join(out, 'paper_regime.json'), 'w') as f:
        json.dump([asdict(r) for r in records], f, indent=1)
    word, facts = verdict(done)
    lines = ['# AGVM in the authors\' regime on the shapes data', '',
             f'RetinaNet, pretrained tiny ResNet-18, {EPOCHS} epochs of '
             f'{NUM_TRAIN} images at every batch; COCO bbox mAP (%) on 200 '
             'validation images. Written by '
             '`python tools/benchmark_paper_regime.py`. A note `ckpt` names '
             'the pretrained checkpoint a run started from (sha256 prefix, '
             'held-out accuracy); runs without one used the first '
             "machine's, which was not recorded.", '',
             f'Verdict: {word}', ''] + [f'* {f}' for f in facts]
    for batch in sorted(LARGE)[:-1]:  # the same figures, not the verdict
        lines += ['', f'The rule\'s figures at batch {batch} (the verdict is '
                  'taken at the largest batch):', ''] + [
                      f'* {f}' for f in compare(done, batch)[1]]
    lines += ['', '| optimizer | batch | lr rule | lr | seed | steps | '
              'bbox mAP | final loss | note |',
              '|---|---|---|---|---|---|---|---|---|']
    for r in records:
        notes = ['diverged'] if r.diverged else []
        if r.lr_mult:
            notes.append('lr x ' + ', '.join(f'{m} {v}' for m, v in
                                               r.lr_mult.items()))
        if r.optimizer == ARMS['agvm'] and r.mean_factors:
            notes.append('mean s ' + ', '.join(
                f'{m} {v:.2f}' for m, v in r.mean_factors.items()))
        if r.pretrained_ckpt and r.backbone == 'pretrained':
            digest, accuracy = r.pretrained_ckpt.split()
            notes.append(f'ckpt {digest[:8]} ({accuracy} %)')
        note = '; '.join(notes)
        mAP = 'NaN' if r.bbox_mAP is None else f'{r.bbox_mAP:.1f}'
        loss = '—' if r.final_train_loss is None else \
            f'{r.final_train_loss:.3f}'
        lines.append(f'| {_label(r)} | {r.batch} | {r.rule or "—"} | '
                     f'{r.lr:.4g} | {r.seed} | {r.steps} | {mAP} | {loss} | '
                     f'{note} |')
    with open(osp.join(out, 'paper_regime.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    plot(records, osp.join(out, 'paper_regime.png'))


def _label(record: Record) -> str:
    if record.backbone == 'pretrained':
        return record.optimizer
    return f'{record.optimizer} ({record.backbone} init)'


def plot(records: Sequence[Record], path: str) -> None:
    """mAP against lr, a panel per large batch, a line per optimizer; the
    reference as a horizontal band."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ref = [r.bbox_mAP for r in records if r.batch == REF_BATCH]
    fig, axes = plt.subplots(1, len(LARGE), figsize=(5 * len(LARGE), 4),
                             sharey=True, squeeze=False)
    for ax, batch in zip(axes[0], sorted(LARGE)):
        for name in dict.fromkeys(_label(r) for r in records
                                  if r.batch == batch):
            pts = sorted((r.lr, r.bbox_mAP or 0.0) for r in records
                         if r.batch == batch and _label(r) == name)
            ax.plot(*zip(*pts), 'o-', label=name)
        if ref:
            ax.axhline(sum(ref) / len(ref), color='k', ls='--',
                       label=f'SGD b{REF_BATCH} (reference)')
        ax.set(xscale='log', xlabel='lr', title=f'batch {batch}')
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('bbox mAP (%)')
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
