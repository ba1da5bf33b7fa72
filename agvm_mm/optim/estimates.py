"""The two sources of AGVM's two gradient estimates (docs/algorithm.md §2).

:class:`RankHalves` splits the ranks of a DDP run, :class:`MicroBatchHalves`
the accumulated micro-batches of one process. The wrapper picks one at build
time (:func:`build_estimates`) and only talks to this interface, so the rest
of AGVM does not care where the halves come from.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce_params, broadcast
from torch import Tensor

BUCKET_MB = 25  # DDP's default bucket size
Halves = List[Tuple[nn.Parameter, Tensor, Tensor]]


class GradientEstimates:
    """Interface of a source of two gradient estimates.

    ``params`` are the optimizer's parameters, in its order; ``size`` is the
    number of micro-batches in the current accumulation cycle.
    """

    #: DDP must skip its own reduction on a statistics step (``step()``
    #: reduces instead).
    skips_ddp_reduction = False

    def describe(self) -> str:
        """Where the estimates come from, for the log."""
        raise NotImplementedError

    def check_model(self, model: nn.Module) -> None:
        """Refuse a model this source cannot work with."""

    def can_take_statistics(self, size: int) -> bool:
        """Whether a cycle of ``size`` micro-batches gives two estimates."""
        return True

    def after_backward(self, params: List[nn.Parameter], done: int,
                       size: int) -> None:
        """Called after each backward of a statistics step; ``done``
        micro-batches of the cycle are accumulated in ``.grad``."""

    def halves(self, params: List[nn.Parameter], size: int) -> Halves:
        """``(param, g_A, g_B)`` for every parameter with a gradient, the two
        halves' mean gradients; afterwards ``.grad`` holds the global mean
        gradient, exactly as without AGVM."""
        raise NotImplementedError

    def agree(self, stats: Tensor, device: torch.device) -> Tensor:
        """The statistics every rank uses (identical on all ranks)."""
        return stats

    def clear(self) -> None:
        """Forget what was gathered for the step just taken."""

    def pending_state(self, params: List[nn.Parameter]) -> Optional[dict]:
        """What a checkpoint taken mid-cycle must hold for an exact resume
        (None: nothing)."""
        return None

    def load_pending(self, params: List[nn.Parameter], pending: dict) -> bool:
        """Restore :meth:`pending_state`; True if it was restored."""
        return False


class RankHalves(GradientEstimates):
    """Ranks ``[0, W//2)`` form half A, the others half B (odd ``W`` works).

    One bucketed all-reduce of the local gradients ``g``, the half-signed
    ones (``+g`` on A, ``-g`` on B) and a has-gradient mask gives
    ``S = sum_A + sum_B`` and ``D = sum_A - sum_B`` on every rank.

    Args:
        world (int): World size, >= 2.
        rank (int): This process's rank.
    """
    skips_ddp_reduction = True

    def __init__(self, world: int, rank: int) -> None:
        self.world, self.rank = world, rank

    def describe(self) -> str:
        return f'{self.world} processes'

    def check_model(self, model: nn.Module) -> None:
        if not hasattr(model, 'no_sync'):
            raise TypeError(
                'AGVMOptimWrapper with several processes needs the model '
                'wrapped in DistributedDataParallel (the Runner does this; '
                'check model_wrapper_cfg).')

    def halves(self, params: List[nn.Parameter], size: int) -> Halves:
        world, half = self.world, self.world // 2
        sign = 1.0 if self.rank < half else -1.0
        has_grad = torch.tensor([float(p.grad is not None) for p in params],
                                device=params[0].device)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        total = [p.grad for p in params]
        diff = [g.detach() * sign for g in total]
        all_reduce_params(total + diff + [has_grad], bucket_size_mb=BUCKET_MB)
        n_a, n_b = half, world - half
        out = []
        for p, s, d, used in zip(params, total, diff, has_grad.tolist()):
            if not used:
                p.grad = None
                continue
            out.append((p, (s + d) / (2 * n_a), (s - d) / (2 * n_b)))
            s.div_(world)  # .grad: the global mean, as DDP gives
        return out

    def agree(self, stats: Tensor, device: torch.device) -> Tensor:
        # the reduction's floating-point order may differ between ranks:
        # rank 0's statistics decide (docs/algorithm.md §4)
        stats = stats.to(device)
        broadcast(stats, 0)
        return stats.cpu()


class MicroBatchHalves(GradientEstimates):
    """The first ``K//2`` accumulated micro-batches form half A, the rest B:
    ``.grad`` is copied after half A, and at the step it holds
    ``sum_A + sum_B``.

    Args:
        accumulative_counts (int): ``K``, even and >= 2.
    """

    def __init__(self, accumulative_counts: int) -> None:
        if accumulative_counts < 2 or accumulative_counts % 2:
            raise ValueError(
                'AGVMOptimWrapper needs two independent gradient estimates '
                f'per step, but this run has 1 process and optim_wrapper.'
                f'accumulative_counts={accumulative_counts}. Launch >= 2 '
                'processes (tools/dist_train.sh) or set optim_wrapper.'
                'accumulative_counts to an even number >= 2.')
        self.accumulative_counts = accumulative_counts
        self._half_a: Optional[List[Optional[Tensor]]] = None

    def describe(self) -> str:
        return f'{self.accumulative_counts} accumulated micro-batches'

    def can_take_statistics(self, size: int) -> bool:
        return size >= 2  # a short last cycle may have a single micro-batch

    def after_backward(self, params: List[nn.Parameter], done: int,
                       size: int) -> None:
        if done == size // 2:
            self._half_a = [_clone(p.grad) for p in params]

    def halves(self, params: List[nn.Parameter], size: int) -> Halves:
        n_a, n_b = size // 2, size - size // 2
        half_a = self._half_a or [None] * len(params)
        out = []
        for param, snap in zip(params, half_a):
            if param.grad is None:
                continue
            total = param.grad.detach()
            sum_a = snap if snap is not None else torch.zeros_like(total)
            out.append((param, sum_a * (size / n_a),
                        (total - sum_a) * (size / n_b)))
        return out

    def clear(self) -> None:
        self._half_a = None

    def pending_state(self, params: List[nn.Parameter]) -> Optional[dict]:
        # the gradients gathered so far and half A's copy (docs §7)
        return dict(grads=[_clone(p.grad) for p in params],
                    half_a=self._half_a)

    def load_pending(self, params: List[nn.Parameter], pending: dict) -> bool:
        for param, grad in zip(params, pending['grads']):
            param.grad = None if grad is None else grad.to(param)
        self._half_a = pending['half_a']
        return True


def build_estimates(world: int, rank: int,
                    accumulative_counts: int) -> GradientEstimates:
    """:class:`RankHalves` with several processes, else
    :class:`MicroBatchHalves` (which refuses ``K`` odd or < 2)."""
    if world > 1:
        return RankHalves(world, rank)
    return MicroBatchHalves(accumulative_counts)


def _clone(tensor: Optional[Tensor]) -> Optional[Tensor]:
    return None if tensor is None else tensor.detach().clone()
