"""What a step costs, counted from torch.profiler on the CPU rather than
timed: operator calls and the peak of the tensors alive
(tests/test_statistics_cost.py, tools/benchmark_overhead.py)."""
from typing import Callable, Optional

import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile


def profiled(fn: Callable[[], object], memory: bool = False):
    """Run ``fn`` under the CPU profiler (with allocations if ``memory``)."""
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=memory) as prof:
        fn()
    return prof


def is_view(name: str) -> bool:
    """An ATen operator whose tensor outputs all alias its input (a view:
    nothing is computed or moved)."""
    packet = getattr(torch.ops.aten, name.split('::')[-1], None)
    returns = [[r for r in getattr(packet, o)._schema.returns
                if 'Tensor' in str(r.type)]
               for o in (packet.overloads() if packet else [])]
    returns = [r for r in returns if r]
    return bool(returns) and all(
        a.alias_info is not None and not a.alias_info.is_write
        for r in returns for a in r)


def operator_calls(prof, exclude: Optional[str] = None) -> int:
    """Top-level ATen calls that compute something: a fused foreach call
    counts once (on the CPU it loops over its tensors inside, on a GPU it
    is a few kernels); views are free. Calls inside a
    ``record_function(exclude)`` are left out."""
    def top_level(event) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name.startswith('aten::') or parent.name == exclude:
                return False
            parent = parent.cpu_parent
        return True

    return sum(1 for e in prof.events() if e.name.startswith('aten::')
               and top_level(e) and not is_view(e.name))


def peak_tensor_bytes(prof, exclude: Optional[str] = None) -> int:
    """Peak bytes of the tensors allocated while profiling (with
    ``memory=True``), above those alive before; allocations inside a
    ``record_function(exclude)`` are left out (their frees outside it,
    if any, still count: the peak is not raised by them)."""
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    allocations = []
    while stack:
        event = stack.pop()
        if event.name == exclude:
            continue
        stack.extend(event.children)
        if event.typed[0] == _EventType.Allocation:
            allocations.append((event.start_time_ns, event.typed[1].alloc_size))
    alive = peak = 0
    for _, size in sorted(allocations):
        alive += size
        peak = max(peak, alive)
    return peak
