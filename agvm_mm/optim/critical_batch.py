"""Each module's critical batch over a run: the running averages of its
gradient-noise estimates (docs/algorithm.md §9)."""
import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from ..core import gradient_noise, noise_scale


class CriticalBatch:
    """Keeps, per module, bias-corrected EMAs of one statistics step's
    ``|G|^2`` and ``tr(Sigma) / B`` estimates, each on its own (a mean of
    per-step ratios would be dominated by the steps whose ``|G|^2`` is near
    0), and gives the critical batch ``B_noise`` from them.

    Args:
        momentum (float): The EMAs' momentum (AGVM's ``agvm.momentum``).

    Examples:
        >>> critical = CriticalBatch(momentum=0.97)
        >>> critical.update(['backbone', 'neck'], raw_moments, (0.5, 0.5))
        >>> critical.scale(['backbone', 'neck'], samples=128)
        {'backbone': 17.2, 'neck': 5.1}
        >>> critical.whole_model(['backbone', 'neck'], samples=128)
        12.9
    """

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        # module -> [EMA of |G|^2, EMA of tr(Sigma) / B, the EMA's weight]
        self.averages: Dict[str, List[float]] = {}
        # module -> (|G|^2, tr(Sigma) / B) of the last statistics step
        self.last: Dict[str, Tuple[float, float]] = {}

    def update(self, modules: Sequence[str], raw: Tensor,
               shares: Tuple[float, float]) -> None:
        """Add one statistics step: ``raw`` are the ``(M, 3)`` raw moments
        of the two halves, which hold the shares ``(f_A, f_B)`` of the
        batch; a module without a usable gradient is left as it was."""
        usable = ((raw[:, 1] > 0) & (raw[:, 2] > 0)).tolist()
        beta = self.momentum
        self.last = {}
        for module, (gsq, trace), ok in zip(
                modules, gradient_noise(raw, shares).tolist(), usable):
            if not ok:
                continue
            self.last[module] = (gsq, trace)
            old = self.averages.get(module, (0.0, 0.0, 0.0))
            self.averages[module] = [beta * o + (1.0 - beta) * v
                                     for o, v in zip(old, (gsq, trace, 1.0))]

    def scale(self, modules: Sequence[str],
              samples: float) -> Dict[str, float]:
        """module -> ``B_noise`` in samples for a global batch of
        ``samples``: NaN without an estimate, ``inf`` where the averaged
        ``|G|^2`` is not positive."""
        return dict(zip(modules, noise_scale(self._means(modules),
                                             samples).tolist()))

    def whole_model(self, modules: Sequence[str], samples: float) -> float:
        """The whole model's ``B_noise``: both estimates summed over
        ``modules`` before the ratio (``|G|^2`` and ``tr(Sigma)`` add up
        over disjoint parameters; a sum of the modules' ratios would not),
        NaN while a module has no estimate."""
        total = self._means(modules).sum(0, keepdim=True)
        return noise_scale(total, samples).item()

    def _means(self, modules: Sequence[str]) -> Tensor:
        """``(M, 2)`` bias-corrected averages, NaN without one."""
        return torch.tensor(
            [[g / w, t / w] if w > 0 else [math.nan] * 2
             for g, t, w in (self.averages.get(m, (0.0, 0.0, 0.0))
                             for m in modules)],
            dtype=torch.float64).view(-1, 2)
