"""Per-module moments of AGVM's two gradient estimates, from flat pieces of
gradient (docs/algorithm.md §3).

A source of the two estimates (:mod:`~agvm_mm.optim.estimates`) hands
:class:`MomentSink` flat vectors ``x``, ``y`` holding the gradients of some
parameters (a DDP bucket, or all of them), and a fixed ``mixing`` that makes
the two halves' mean gradients of them, ``a = p x + q y`` and
``b = r x + s y``. Each piece costs a constant number of kernels, whatever
the number of parameter tensors in it: per-parameter moments of ``(x, y)``
(:func:`~agvm_mm.core.pair_moments`, mixed once per module at the end, as
:func:`~agvm_mm.core.mix_moments` is linear), and for the Adam rule a few
element-wise kernels per chunk of at most ``chunk`` elements. The moments are
summed into modules in one fixed parameter order on the CPU, so they do not
depend on how the pieces were cut.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..core import mix_moments, pair_moments, precondition
from .layout import ModuleLayout

#: The Adam rule preconditions chunks of 1/16 of the gradient, but at least
#: 4 M elements (16 MB of float32): its temporaries, a few chunks, stay below
#: about 0.4 gradient copies for large models (a few MB for small ones), and
#: the number of chunks, so of kernels, does not grow with the number of
#: tensors.
CHUNKS = 16
MIN_CHUNK = 1 << 22


def chunk_size(numel: int) -> int:
    """Elements per preconditioned chunk for a gradient of ``numel``."""
    return max(MIN_CHUNK, numel // CHUNKS)

#: The name of :meth:`MomentSink.add`'s work in a torch.profiler trace.
PROFILE_LABEL = 'agvm::moments'

Mixing = Tuple[Tuple[float, float], Tuple[float, float]]
#: ``param -> (exp_avg_sq or None, beta2, eps)``: the Adam rule's view of the
#: optimizer (docs/algorithm.md §3).
AdamState = Callable[[Tensor], Tuple[Optional[Tensor], float, float]]


class MomentSink:
    """Collects the moments of one statistics step.

    :meth:`add` only appends, so pieces may arrive from DDP's communication
    threads while backward goes on.

    Args:
        layout (ModuleLayout): The AGVM modules and parameters; pieces'
            other parameters are left out.
        mixing (Mixing): ``((p, q), (r, s))``: the halves' mean gradients
            ``a = p x + q y``, ``b = r x + s y`` of every piece (the loss
            scale of AMP folded in).
        adam_state (AdamState, optional): For the Adam rule; None: the SGD
            rule (raw gradients).
        chunk (int): Elements per preconditioned chunk
            (:func:`chunk_size`).
    """

    def __init__(self, layout: ModuleLayout, mixing: Mixing,
                 adam_state: Optional[AdamState] = None,
                 chunk: int = MIN_CHUNK) -> None:
        self.layout = layout
        self.mixing = mixing
        self._adam = adam_state
        self._chunk = chunk
        (p, q), (r, s) = mixing
        # z of pair_moments along g_A - g_B: rounding there matters least
        # (Phi = 1 - cos is small when the difference is); else along g_A
        self._combo = (p - r, q - s) if (p - r) * (q - s) else (p, q)
        self._raw: List[Tuple[List[int], Tensor]] = []
        self._rule: List[Tuple[List[int], Tensor]] = []

    def add(self, params: Sequence[Tensor], x: Tensor, y: Tensor,
            consume: str = '') -> None:
        """One piece: ``x``, ``y`` are 1-D, the concatenated gradients of
        ``params`` in the source's two vectors; ``consume`` (``'x'``,
        ``'y'``) names one the source no longer needs (scratch space, see
        :func:`~agvm_mm.core.pair_moments`)."""
        # named in profiles: it may run on a communication thread, which a
        # profiler of the training thread does not see
        with torch.profiler.record_function(PROFILE_LABEL):
            if x.dtype in (torch.float16, torch.bfloat16):
                x, y = x.float(), y.float()
            if self._adam is not None:  # before x or y is consumed
                (p, q), (r, s) = self.mixing
                for lo, hi, group, v, beta2, eps in self._chunks(params):
                    xs, ys = x[lo:hi], y[lo:hi]
                    a = torch.mul(xs, p).add_(ys, alpha=q)
                    b = torch.mul(xs, r).add_(ys, alpha=s)
                    self._rule.append(([id(t) for t in group], pair_moments(
                        precondition(a, v, beta2, eps),
                        precondition(b, v, beta2, eps),
                        [t.numel() for t in group], (1.0, -1.0), 'y')))
            self._raw.append(([id(t) for t in params], pair_moments(
                x, y, [t.numel() for t in params], self._combo, consume)))

    def result(self) -> Tuple[Tensor, Tensor]:
        """``(raw, rule)``: float64 ``(M, 3)`` moments
        ``[<g_A, g_B>, |g_A|^2, |g_B|^2]`` per module of the raw gradients
        and of the vectors of the variance rule (the same tensor for the SGD
        rule), on the CPU."""
        raw = mix_moments(self._modules(self._raw), self.mixing)
        return raw, raw if self._adam is None else self._modules(self._rule)

    def _modules(self, items: List[Tuple[List[int], Tensor]]) -> Tensor:
        """Sum per-parameter rows into modules, in module order."""
        position, module_of = self.layout.position, self.layout.module_of
        out = torch.zeros(len(self.layout.modules), 3, dtype=torch.float64)
        items = list(items)
        if not items:
            return out
        rows = torch.cat([r for _, r in items]).cpu()  # the one transfer
        keep = [(position[i], module_of[i], k)
                for k, i in enumerate(i for ids, _ in items for i in ids)
                if i in position]
        keep.sort()
        if keep:
            _, modules, index = zip(*keep)
            out.index_add_(0, torch.tensor(modules), rows[list(index)])
        return out

    def _chunks(self, params: Sequence[Tensor]):
        """``(begin, end, params, exp_avg_sq, beta2, eps)`` of consecutive
        chunks of ``params`` with one ``(beta2, eps)`` and at most ``chunk``
        elements (a larger tensor is a chunk of its own); ``exp_avg_sq``
        flattened, None before the optimizer's first step."""
        chunks, group, begin, offset, key = [], [], 0, 0, None
        for param in params:
            if id(param) not in self.layout.position:  # not AGVM's
                if group:
                    chunks.append((begin, offset, group, key))
                group, offset = [], offset + param.numel()
                begin = offset
                continue
            state, beta2, eps = self._adam(param)
            if group and ((beta2, eps) != key
                          or offset + param.numel() - begin > self._chunk):
                chunks.append((begin, offset, group, key))
                group, begin = [], offset
            group.append((param, state))
            key = (beta2, eps)
            offset += param.numel()
        if group:
            chunks.append((begin, offset, group, key))
        for lo, hi, group, (beta2, eps) in chunks:
            if all(state is None for _, state in group):
                v = None
            else:  # a tensor without state yet (no gradient so far): 0
                v = torch.cat([
                    (state if state is not None else torch.zeros_like(p)
                     ).reshape(-1) for p, state in group])
            yield lo, hi, [p for p, _ in group], v, beta2, eps
