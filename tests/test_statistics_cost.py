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
from agvm_mm.optim.layout import ModuleLayout
from agvm_mm.optim.moments import PROFILE_LABEL, MomentSink
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
    if memory:
        return peak_tensor_bytes(stats), peak_tensor_bytes(ordinary), model
    return operator_calls(stats), operator_calls(ordinary)


def one_copy_bound(model: nn.Module) -> float:
    """The most extra memory a statistics step may hold, in gradient copies:
    one gradient-sized buffer (half A's sum, or the bucket's half-signed
    copy) and the sink's transients, which do not grow with the gradient:
    a float64 copy of the largest tensor (``_foreach_norm`` with
    ``dtype=float64`` converts one tensor at a time: 2x its float32 bytes)
    and float64 moment rows, at most 16 per tensor alive at once (3 per
    tensor from each of the three norms, their stack and square, then the
    rows gathered and indexed by module)."""
    sizes = [p.numel() * p.element_size() for p in model.parameters()]
    return 1 + (2 * max(sizes) + 16 * 8 * len(sizes)) / sum(sizes)


@pytest.mark.parametrize('kind', ['SGD', 'AdamW'])
def test_one_process_calls_do_not_grow_with_tensors(kind):
    """The same extra calls for 12 and 198 tensors: nothing in a statistics
    step loops over tensors (one thread: the count is deterministic)."""
    extra = {}
    for shape in (SMALL, LARGE):
        stats, ordinary = _one_process(shape, kind)
        extra[shape] = stats - ordinary
    assert extra[LARGE] == extra[SMALL], extra


@pytest.mark.parametrize('shape', [SMALL, LARGE])
def test_one_process_holds_one_extra_gradient_copy(shape):
    """Half A's sum is the one extra buffer (the SGD rule; the Adam rule
    adds the temporaries of one preconditioned chunk, moments.CHUNKS)."""
    stats, ordinary, model = _one_process(shape, 'SGD', memory=True)
    grad = sum(p.numel() * p.element_size() for p in model.parameters())
    assert (stats - ordinary) / grad <= one_copy_bound(model)


def test_moment_sink_calls_do_not_grow_with_tensors():
    """The work a DDP bucket's callback does (in a communication thread,
    which the profiler does not follow): the same calls for a bucket of 12
    or 198 tensors."""
    calls = {}
    for shape in (SMALL, LARGE):
        params = list(Layers(*shape).parameters())
        sink = MomentSink(ModuleLayout.from_parts({'all': params}, params),
                          ((1.0, 1.0), (1.0, -1.0)))
        n = sum(p.numel() for p in params)
        x, y = torch.randn(n), torch.randn(n)
        calls[shape] = operator_calls(profiled(
            lambda: sink.add(params, x, y, consume='y')))
    assert calls[SMALL] == calls[LARGE], calls


def _ranks_worker(rank, shape, out):
    """The training thread's extra calls and bytes of a statistics step,
    without MomentSink's work (its ``record_function``), plus that work
    counted on its own: the callback that runs it may run on the training
    thread or on gloo's, whichever completes the all-reduces, so the
    profiler of the training thread sees it or not depending on timing.
    Every piece the sink got is run again on this thread, under the
    profiler, on fresh vectors of its size."""
    model = Layers(*shape)
    ddp = nn.parallel.DistributedDataParallel(model)
    wrapper = AGVMOptimWrapper(
        torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9),
        accumulative_counts=1, agvm=dict(start_iter=0, interval=2))
    data = [torch.randn(4, model.width) for _ in range(2)]
    pieces, add = [], MomentSink.add

    def recording_add(sink, params, x, y, consume=''):
        pieces.append((sink, params, x.numel(), consume))
        add(sink, params, x, y, consume)

    MomentSink.add = recording_add  # records and calls the real one

    def step(x):
        with wrapper.optim_context(ddp):
            loss = ddp(x)
        wrapper.update_params(loss)

    step(data[0]), step(data[1])
    pieces.clear()
    stats = profiled(lambda: step(data[0]), memory=True)
    ordinary = profiled(lambda: step(data[1]), memory=True)
    assert wrapper.agvm_steps == 2 and wrapper.agvm_ddp_hooked
    replays = []  # the real add again, on this thread
    for sink, params, numel, consume in pieces:
        x, y = torch.randn(numel), torch.randn(numel)
        replays.append(profiled(lambda: add(sink, params, x, y, consume),
                                memory=True))
    grad = sum(p.numel() * p.element_size() for p in model.parameters())
    out[rank] = dict(
        pieces=len(pieces), bound=one_copy_bound(model),
        training_calls=operator_calls(stats, PROFILE_LABEL) -
        operator_calls(ordinary),
        sink_calls=sum(operator_calls(r) for r in replays),
        training_copies=(peak_tensor_bytes(stats, PROFILE_LABEL) -
                         peak_tensor_bytes(ordinary)) / grad,
        sink_copies=sum(peak_tensor_bytes(r) for r in replays) / grad)


def test_two_processes_cost_no_more_per_tensor_and_one_copy():
    """With the DDP hook, on 12 or 198 tensors of about the same size (one
    DDP bucket each): the same calls on the training thread and in the
    sink's callbacks, wherever these run, so nothing loops over tensors;
    and the half-signed copy of the bucket is the one extra gradient-sized
    buffer: the training thread's extra and the sink's together stay
    within :func:`one_copy_bound` (the sum bounds the peak of both)."""
    got = {}
    for shape in (SMALL, LARGE):
        out = mp.Manager().dict()
        run_ranks(_ranks_worker, (shape, out), 2)
        got[shape] = out[0]
    small, large = got[SMALL], got[LARGE]
    assert small['pieces'] == large['pieces'] == 1, got
    assert large['training_calls'] == small['training_calls'], got
    assert large['sink_calls'] == small['sink_calls'], got
    for g in got.values():
        assert g['training_copies'] + g['sink_copies'] <= g['bound'], got
