"""Plot AGVM's per-module variance and factor from an mmengine log."""
import json
from collections import defaultdict
from typing import Dict, List, Tuple

Series = Dict[str, List[Tuple[int, float]]]


def read_agvm_scalars(scalars_json: str) -> Tuple[Series, Series]:
    """``(phi, scale)``: module -> [(iteration, value)] from the local
    visualizer backend's ``scalars.json`` (one JSON object per line)."""
    phi: Series = defaultdict(list)
    scale: Series = defaultdict(list)
    with open(scalars_json) as f:
        for line in f:
            record = json.loads(line)
            step = record.get('step', record.get('iter'))
            for key, value in record.items():
                for prefix, series in (('agvm_phi/', phi),
                                       ('agvm_scale/', scale)):
                    if key.startswith(prefix):
                        series[key[len(prefix):]].append((step, value))
    return dict(phi), dict(scale)


def plot_agvm(scalars_json: str, out_png: str, title: str = '') -> str:
    """Two panels: ``Phi_m = 1 - cos`` (log scale) and ``s_m`` per module
    over training iterations. Returns ``out_png``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    phi, scale = read_agvm_scalars(scalars_json)
    if not phi:
        raise ValueError(f'{scalars_json} holds no agvm_phi/* scalars: was '
                         'AGVMHook in custom_hooks?')
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for name, points in phi.items():
        axes[0].plot(*zip(*points), label=name)
    for name, points in scale.items():
        axes[1].plot(*zip(*points), label=name)
    axes[0].set(yscale='log', ylabel='gradient variance  1 - cos(g_A, g_B)',
                xlabel='iteration')
    axes[1].set(ylabel='AGVM factor s_m (lr multiplier)', xlabel='iteration')
    axes[1].axhline(1.0, color='gray', lw=0.5)
    axes[1].legend(fontsize=8)
    fig.suptitle(title or 'AGVM per-module statistics')
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
