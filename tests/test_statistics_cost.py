"""What a statistics step costs beyond an ordinary one, counted rather than
timed (docs/algorithm.md §3): the operator calls do not grow with the number
of parameter tensors, and the extra memory is one gradient copy.

Operator calls are counted with torch.profiler on the CPU: the top-level
ATen calls that compute something (tools/harness/profiling.py). Memory is
the peak of the tensors allocated during one accumulation cycle, from the
profiler's allocation events.
"""
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from agvm_mm import AGVMOptimWrapper
from agvm_mm.optim.moments import MomentSink
from tests.toy import run_ranks
from tools.harness.profiling import (operator_calls, peak_tensor_bytes,
                                     profiled)

MODULES = ('backbone', 'neck', 'bbox_head')


class Layers(nn.Module):
    """Three modules of ``layers`` linear layers each: 6 x layers tensors."""

    def __init__(self, layers: int, width: int = 32) -> None:
        super().__init__()
        torch.manual_seed(0)
        for name in MODULES:
            setattr(self, name, nn.Sequential(
                *[nn.Linear(width, width) for _ in range(layers)]))
        self.width = width

    def forward(self, x):
        return self.bbox_head(self.neck(self.backbone(x))).square().mean()


#: ``(layers, width)``: 12 and 198 tensors in the same 3 modules, with
#: about the same number of elements (about 200 k)
SMALL, LARGE = (2, 128), (33, 32)


def _one_process(shape, kind, memory=False):
    """(calls, peak bytes) of a statistics cycle and of an ordinary one,
    and the gradient's size; 2 accumulated micro-batches, AGVM every 2nd
    step."""
    model = Layers(*shape)
    params = model.parameters()
    optimizer = (torch.optim.SGD(params, lr=0.01, momentum=0.9)
                 if kind == 'SGD' else torch.optim.AdamW(params, lr=1e-3))
    wrapper = AGVMOptimWrapper(optimizer, accumulative_counts=2,
                               agvm=dict(start_iter=0, interval=2))
    data = [torch.randn(4, model.width) for _ in range(2)]

    def cycle():
        for x in data:
            with wrapper.optim_context(model):
                loss = model(x)
            wrapper.update_params(loss)

    cycle(), cycle()  # warm: optimizer state exists
    stats, ordinary = profiled(cycle, memory), profiled(cycle, memory)
    assert wrapper.agvm_steps == 2
    grad = sum(p.numel() * p.element_size() for p in model.parameters())
    if memory:
        return peak_tensor_bytes(stats), peak_tensor_bytes(ordinary), grad
    return operator_calls(stats), operator_calls(ordinary)


@pytest.mark.parametrize('kind', ['SGD', 'AdamW'])
def test_one_process_calls_do_not_grow_with_tensors(kind):
    extra = {}
    for shape in (SMALL, LARGE):
        stats, ordinary = _one_process(shape, kind)
        extra[shape] = stats - ordinary
    assert abs(extra[LARGE] - extra[SMALL]) <= 8, extra


def test_one_process_holds_one_extra_gradient_copy():
    """Half A's sum is the one extra buffer (the SGD rule; the Adam rule
    adds the temporaries of one preconditioned chunk, moments.CHUNKS)."""
    stats, ordinary, grad = _one_process(LARGE, 'SGD', memory=True)
    assert (stats - ordinary) / grad <= 1.05


def test_moment_sink_calls_do_not_grow_with_tensors():
    """The work a DDP bucket's callback does (in a communication thread,
    which the profiler does not follow): the same calls for a bucket of 12
    or 198 tensors."""
    calls = {}
    for shape in (SMALL, LARGE):
        params = list(Layers(*shape).parameters())
        order = {id(p): i for i, p in enumerate(params)}
        sink = MomentSink(order, {i: 0 for i in order}, 1,
                          ((1.0, 1.0), (1.0, -1.0)))
        n = sum(p.numel() for p in params)
        x, y = torch.randn(n), torch.randn(n)
        calls[shape] = operator_calls(profiled(
            lambda: sink.add(params, x, y, consume='y')))
    assert calls[SMALL] == calls[LARGE], calls


def _ranks_worker(rank, shape, out):
    model = Layers(*shape)
    ddp = nn.parallel.DistributedDataParallel(model)
    wrapper = AGVMOptimWrapper(
        torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9),
        accumulative_counts=1, agvm=dict(start_iter=0, interval=2))
    data = [torch.randn(4, model.width) for _ in range(2)]

    def step(x):
        with wrapper.optim_context(ddp):
            loss = ddp(x)
        wrapper.update_params(loss)

    step(data[0]), step(data[1])
    stats = profiled(lambda: step(data[0]), memory=True)
    ordinary = profiled(lambda: step(data[1]), memory=True)
    assert wrapper.agvm_steps == 2 and wrapper._estimates.hooked
    out[rank] = dict(
        extra_calls=operator_calls(stats) - operator_calls(ordinary),
        extra_copies=(peak_tensor_bytes(stats) - peak_tensor_bytes(ordinary)) / sum(
            p.numel() * p.element_size() for p in model.parameters()))


def test_two_processes_cost_no_more_per_tensor_and_one_copy():
    """With the DDP hook: the training thread's extra calls do not grow
    with the tensors, and the difference half is the one extra buffer."""
    got = {}
    for shape in (SMALL, LARGE):
        out = mp.Manager().dict()
        run_ranks(_ranks_worker, (shape, out), 2)
        got[shape] = out[0]
    assert abs(got[LARGE]['extra_calls'] - got[SMALL]['extra_calls']) <= 8
    assert max(g['extra_copies'] for g in got.values()) <= 1.05, got
