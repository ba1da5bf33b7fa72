"""The two sources of AGVM's two gradient estimates (docs/algorithm.md §2).

:class:`RankHalves` splits the ranks of a DDP run, :class:`MicroBatchHalves`
the accumulated micro-batches of one process. The wrapper picks one at build
time (:func:`build_estimates`) and only talks to this interface: each source
hands a :class:`~agvm_mm.optim.moments.MomentSink` flat pieces ``x``, ``y``
of gradient and the ``mixing`` that makes the halves' mean gradients of them,
so the rest of AGVM does not care where the halves come from.
"""
import abc
import logging
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.dist import all_reduce, broadcast
from mmengine.logging import print_log
from torch import Tensor

from .layout import ModuleLayout
from .moments import MomentSink, Mixing

BUCKET_MB = 25  # DDP's default bucket size


class Halves(NamedTuple):
    """How a source's two halves make the step's two estimates.

    Args:
        mixing (Mixing): Of the pieces the source gives the sink: the
            halves' mean gradients from them (:class:`MomentSink`).
        shares (tuple[float, float]): The halves' shares ``(f_A, f_B)`` of
            the global batch.
    """
    mixing: Mixing
    shares: Tuple[float, float]


class GradientEstimates(abc.ABC):
    """Interface of a source of two gradient estimates.

    ``size`` is the number of micro-batches in the current accumulation
    cycle; ``sink`` is set by the wrapper for the cycle of a statistics step
    and cleared by :meth:`clear`.
    """

    #: DDP must skip its own reduction on a statistics step (``step()``
    #: reduces instead).
    skips_ddp_reduction = False
    #: The source's DDP communication hook is registered: it reduces a
    #: statistics step inside DDP's buckets.
    hooked = False

    def __init__(self) -> None:
        self.sink: Optional[MomentSink] = None
        self.layout = ModuleLayout()

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the estimates come from, for the log."""

    def attach(self, model: nn.Module) -> None:
        """Called once, before the first backward, with the model as the
        runner trains it; refuses a model this source cannot work with."""

    def set_layout(self, layout: ModuleLayout) -> None:
        """The AGVM modules and parameters (set when the wrapper binds its
        partition): ``layout.params`` is the layout of the flat vectors."""
        self.layout = layout

    def can_take_statistics(self, size: int) -> bool:
        """Whether a cycle of ``size`` micro-batches gives two estimates."""
        return True

    @abc.abstractmethod
    def halves(self, size: int) -> Halves:
        """The halves of a cycle of ``size`` micro-batches."""

    def after_backward(self, done: int, size: int) -> None:
        """Called after each backward of a statistics step; ``done``
        micro-batches of the cycle are accumulated in ``.grad``."""

    def collect(self, size: int) -> None:
        """At the step: give :attr:`sink` what it still lacks. Afterwards
        ``.grad`` holds the global mean gradient, as without AGVM."""

    def agree(self, stats: Tensor, device: torch.device) -> Tensor:
        """The statistics every rank uses (identical on all ranks)."""
        return stats

    def clear(self) -> None:
        """Forget what was gathered for the step just taken."""
        self.sink = None

    def pending_state(self, params: List[nn.Parameter]) -> Optional[dict]:
        """What a checkpoint taken mid-cycle must hold for an exact resume
        (None: nothing)."""
        return None

    def load_pending(self, params: List[nn.Parameter], pending: dict) -> bool:
        """Restore :meth:`pending_state`; True if it was restored."""
        return False


class RankHalves(GradientEstimates):
    """Ranks ``[0, W//2)`` form half A, the others half B (odd ``W`` works).

    Every rank reduces ``x = g / W`` and the half-signed ``y = ±g / W``
    (``+`` on half A) of its local gradient ``g``, which gives the global
    mean ``S / W`` and ``D / W``, with ``S = sum_A + sum_B`` and
    ``D = sum_A - sum_B``: ``g_A = W (x + y) / (2 n_A)``,
    ``g_B = W (x - y) / (2 n_B)``.

    With a :class:`~torch.nn.parallel.DistributedDataParallel` model this
    happens inside DDP's own buckets, as they are reduced during backward,
    through a communication hook (:func:`agvm_comm_hook`); on other steps the
    hook is DDP's default all-reduce, bit for bit. Where the hook cannot be
    used (a hook is registered already, or a wrapper that is not DDP but has
    ``no_sync``), DDP skips its reduction on statistics steps and
    :meth:`collect` reduces the gradients in buckets of :data:`BUCKET_MB`
    after backward. The reductions run in the process group the model was
    built with, as DDP's own do; one that leaves processes out is refused.

    Args:
        world (int): World size, >= 2.
        rank (int): This process's rank.
    """

    def __init__(self, world: int, rank: int) -> None:
        super().__init__()
        self.world, self.rank = world, rank
        self.sign = 1.0 if rank < world // 2 else -1.0
        self.hooked = False
        self.group: Optional[dist.ProcessGroup] = None  # None: the world

    @property
    def skips_ddp_reduction(self) -> bool:
        return not self.hooked

    def describe(self) -> str:
        where = ("inside DDP's buckets during backward" if self.hooked else
                 'after backward')
        n_a = self.world // 2  # across nodes: the first ranks' nodes are A
        return (f'{self.world} processes (halves: ranks '
                f'{_span(0, n_a)} and {_span(n_a, self.world)}; reduced '
                f'{where})')

    def attach(self, model: nn.Module) -> None:
        name = type(model).__name__
        if 'FullyShardedDataParallel' in name or not hasattr(
                model, 'no_sync'):
            raise TypeError(
                f'model_wrapper_cfg: AGVMOptimWrapper with several processes '
                f'needs every rank\'s full gradient of the model wrapped in '
                f'DistributedDataParallel (MMDistributedDataParallel, the '
                f"Runner's default), but the model is a {name}.")
        group = getattr(model, 'process_group', None)
        if group is not None and (dist.get_world_size(group) !=
                                  dist.get_world_size()):
            raise ValueError(
                f'model_wrapper_cfg: AGVMOptimWrapper splits all '
                f'{dist.get_world_size()} processes into two halves, but the '
                f'{name} reduces its gradients in a process group of '
                f'{dist.get_world_size(group)} of them. Build it with the '
                'default process group (process_group=None).')
        self.group = group
        if not isinstance(model, nn.parallel.DistributedDataParallel):
            print_log(
                f'AGVM: {name} is not DistributedDataParallel, so no DDP '
                'communication hook: on statistics steps its reduction is '
                'skipped and AGVM reduces the gradients after backward.',
                'current')
            return
        other = [getattr(h, '__qualname__', repr(h))
                 for h, _ in getattr(model, '_comm_hooks', [])]
        if not other:
            try:
                model.register_comm_hook(self, agvm_comm_hook)
                self.hooked = True
                return
            except RuntimeError:  # one hook per model: a builtin one is in
                other = ['a builtin one']  # place (not in _comm_hooks)
        print_log(
            f'AGVM: model_wrapper_cfg: the DDP model already has a '
            f'communication hook ({", ".join(other)}). AGVM composes with '
            'it: ordinary steps keep it; on statistics steps DDP\'s '
            'reduction (and so the hook) is skipped and AGVM reduces the '
            'full-precision gradients after backward.', 'current',
            logging.WARNING)

    def halves(self, size: int) -> Halves:
        n_a = self.world // 2
        n_b = self.world - n_a
        c_a, c_b = self.world / (2 * n_a), self.world / (2 * n_b)
        return Halves(((c_a, c_a), (c_b, -c_b)),
                      (n_a / self.world, n_b / self.world))

    def reduce_bucket(self, flat: Tensor, params: List[Tensor],
                      sink: MomentSink) -> torch.futures.Future:
        """Start the all-reduces of ``flat / W`` (in place) and of
        ``±flat / W``; when both are done, ``sink`` gets the piece and
        ``flat`` holds the global mean. Two collectives issued back to back
        rather than one over a concatenation: that would need a copy of the
        bucket besides the half-signed one."""
        diff = torch.mul(flat, self.sign / self.world)
        flat.mul_(1.0 / self.world)
        futures = [dist.all_reduce(t, group=self.group,
                                   async_op=True).get_future()
                   for t in (flat, diff)]

        def finish(_) -> Tensor:
            sink.add(params, flat, diff, consume='y')
            return flat

        return torch.futures.collect_all(futures).then(finish)

    def collect(self, size: int) -> None:
        if self.hooked:
            return  # the hook gave the sink everything during backward
        params = self.layout.params
        # a gradient missing on every rank stays missing, as with DDP
        has_grad = torch.tensor([float(p.grad is not None) for p in params],
                                device=params[0].device)
        all_reduce(has_grad)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets(params):  # one at a time: bounded memory
            flat = torch.cat([p.grad.reshape(-1) for p in bucket])
            self.reduce_bucket(flat, bucket, self.sink).wait()
            torch._foreach_copy_([p.grad for p in bucket], [
                v.view_as(p) for v, p in zip(flat.split(
                    [p.numel() for p in bucket]), bucket)])
        for p, used in zip(params, has_grad.tolist()):
            if not used:
                p.grad = None

    def agree(self, stats: Tensor, device: torch.device) -> Tensor:
        # the reduction's floating-point order may differ between ranks:
        # rank 0's statistics decide (docs/algorithm.md §4)
        stats = stats.to(device)
        broadcast(stats, 0)
        return stats.cpu()


def agvm_comm_hook(state: RankHalves, bucket: dist.GradBucket
                   ) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook of :class:`RankHalves`: DDP's default
    all-reduce on ordinary steps (the gradient times ``1 / W``, then summed,
    as DDP does without a hook), and on a statistics step the all-reduces of
    the bucket and of its half-signed copy, whose statistics are taken as
    soon as they arrive; all in the model's process group
    (``state.group``)."""
    buffer = bucket.buffer()
    if state.sink is None:
        buffer.mul_(1.0 / state.world)
        return dist.all_reduce(
            buffer, group=state.group, async_op=True).get_future().then(
                lambda fut: fut.value()[0])
    return state.reduce_bucket(buffer, bucket.parameters(), state.sink)


class MicroBatchHalves(GradientEstimates):
    """The first ``K//2`` accumulated micro-batches form half A, the rest B.

    After half A the gradients are gathered into one flat vector in module
    order, ``.grad`` becomes views of it (half B accumulates into it in
    place, exactly as into the separate tensors) and half A's sum is copied:
    one extra gradient-sized buffer, freed at the step. There ``x`` is half
    A's sum and ``y`` the total: ``g_A = K x / n_A``,
    ``g_B = K (y - x) / n_B``.

    Args:
        accumulative_counts (int): ``K``, even and >= 2.
    """

    def __init__(self, accumulative_counts: int) -> None:
        super().__init__()
        if accumulative_counts < 2 or accumulative_counts % 2:
            raise ValueError(
                'AGVMOptimWrapper needs two independent gradient estimates '
                f'per step, but this run has 1 process and optim_wrapper.'
                f'accumulative_counts={accumulative_counts}. Launch >= 2 '
                'processes (tools/dist_train.sh) or set optim_wrapper.'
                'accumulative_counts to an even number >= 2.')
        self.accumulative_counts = accumulative_counts
        self._half_a: Optional[Tensor] = None  # flat, module order
        self._total: Optional[Tensor] = None  # flat, the gradients' storage
        self._views: Dict[int, Tensor] = {}  # id(param) -> its .grad view

    def describe(self) -> str:
        return f'{self.accumulative_counts} accumulated micro-batches'

    def can_take_statistics(self, size: int) -> bool:
        return size >= 2  # a short last cycle may have a single micro-batch

    def halves(self, size: int) -> Halves:
        n_a, n_b = size // 2, size - size // 2
        c_a, c_b = size / n_a, size / n_b
        return Halves(((c_a, 0.0), (-c_b, c_b)), (n_a / size, n_b / size))

    def after_backward(self, done: int, size: int) -> None:
        params = self.layout.params
        if done != size // 2 or not params:
            return
        grads = [p.grad for p in params]
        flat = _flatten(params, grads)
        if len({(g.device, g.dtype) for g in grads if g is not None}) > 1:
            self._half_a = flat  # mixed devices or dtypes: a copy only
            return
        used = [g is not None for g in grads]
        del grads  # each old .grad is freed as soon as its view replaces it
        offset = 0
        for param, has_grad in zip(params, used):
            if has_grad:  # a missing gradient stays missing
                param.grad = flat[offset:offset + param.numel()].view_as(
                    param)
                self._views[id(param)] = param.grad
            offset += param.numel()
        self._half_a, self._total = flat.clone(), flat

    def collect(self, size: int) -> None:
        params, half_a = self.layout.params, self._half_a
        if half_a is None:  # no copy of half A: it summed to 0
            half_a = _flatten(params, [None] * len(params))
        run: List[nn.Parameter] = []  # gradients that are views of _total
        begin = offset = 0
        for param in params:
            grad = param.grad
            if grad is not None and grad is self._views.get(id(param)):
                begin = begin if run else offset
                run.append(param)
            else:
                self._add_run(run, begin, half_a)
                run = []
                if grad is not None:  # not a view, e.g. restored by resume
                    y = grad.reshape(-1)
                    self.sink.add([param], half_a[offset:offset +
                                                  param.numel()].to(y), y,
                                  consume='x')
            offset += param.numel()
        self._add_run(run, begin, half_a)

    def _add_run(self, run: List[nn.Parameter], begin: int,
                 half_a: Tensor) -> None:
        if run:
            end = begin + sum(p.numel() for p in run)
            self.sink.add(run, half_a[begin:end], self._total[begin:end],
                          consume='x')

    def clear(self) -> None:
        super().clear()
        self._half_a = self._total = None
        self._views = {}

    def pending_state(self, params: List[nn.Parameter]) -> Optional[dict]:
        # the gradients gathered so far and half A's sum (docs §7)
        return dict(grads=[_clone(p.grad) for p in params],
                    half_a=self._half_a)

    def load_pending(self, params: List[nn.Parameter], pending: dict) -> bool:
        for param, grad in zip(params, pending['grads']):
            param.grad = None if grad is None else grad.to(param)
        self._half_a = pending['half_a']  # flat, in module order
        return True


def build_estimates(world: int, rank: int,
                    accumulative_counts: int) -> GradientEstimates:
    """:class:`RankHalves` with several processes, else
    :class:`MicroBatchHalves` (which refuses ``K`` odd or < 2)."""
    if world > 1:
        return RankHalves(world, rank)
    return MicroBatchHalves(accumulative_counts)


def _flatten(params: Sequence[nn.Parameter],
             grads: List[Optional[Tensor]]) -> Tensor:
    """The gradients as one flat vector in ``params``' order (0 where a
    gradient is missing): one kernel."""
    ref = next((g for g in grads if g is not None), params[0])
    return torch.cat([
        (g if g is not None else ref.new_zeros(p.shape)).reshape(-1)
        for p, g in zip(params, grads)
    ]) if params else ref.new_zeros(0)


def _buckets(params: Sequence[nn.Parameter]
             ) -> List[List[nn.Parameter]]:
    """Consecutive groups of about :data:`BUCKET_MB` of gradient."""
    buckets, current, size = [], [], 0
    for param in params:
        current.append(param)
        size += param.numel() * param.element_size()
        if size >= BUCKET_MB * 2**20:
            buckets.append(current)
            current, size = [], 0
    return buckets + ([current] if current else [])


def _clone(tensor: Optional[Tensor]) -> Optional[Tensor]:
    return None if tensor is None else tensor.detach().clone()


def _span(begin: int, end: int) -> str:
    """Ranks ``[begin, end)`` as the log writes them."""
    return str(begin) if end - begin == 1 else f'{begin}-{end - 1}'
