"""Small models with mmdet's module names and an independent AGVM reference
written from the spec's formulas (no agvm_mm code), for the tests."""
import datetime
import math
import os
import socket
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.multiprocessing as mp
import torch.nn as nn

RETINANET = ('backbone', 'neck', 'bbox_head')
FASTER_RCNN = ('backbone', 'neck', 'rpn_head', 'roi_head')


class Toy(nn.Module):
    """backbone -> neck -> several heads, each a small MLP."""

    def __init__(self, names: Sequence[str] = RETINANET, dim: int = 6):
        super().__init__()
        torch.manual_seed(0)
        for name in names:
            setattr(self, name,
                    nn.Sequential(nn.Linear(dim, dim), nn.Tanh(),
                                  nn.Linear(dim, dim)))
        self.names = list(names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = getattr(self, self.names[1])(getattr(self, self.names[0])(x))
        heads = [getattr(self, n)(feat) for n in self.names[2:]]
        return sum(((h - 0.3 * (i + 1))**2).mean()
                   for i, h in enumerate(heads))


def batches(steps: int, micro: int, size: int = 4, dim: int = 6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(size, dim, generator=g) for _ in range(micro)]
            for _ in range(steps)]


def make_optimizer(kind: str, groups, lr: float = 0.05):
    if kind == 'SGD':
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=1e-3)
    return torch.optim.AdamW(groups, lr=lr * 0.1, weight_decay=1e-2)


def reference_run(names, kind: str, data: List[List[torch.Tensor]],
                  start: int, interval: int, stop=None, alpha=0.97,
                  clamp=(0.5, 10.0), float32_dots: bool = False,
                  half_a: Optional[int] = None) -> Dict:
    """AGVM by hand: per-micro-batch gradients, halves A/B, Phi, mu, EMA,
    and one optimizer group per module whose lr is scaled for the step.
    Phi from the concatenated halves in float64, or with ``float32_dots``
    as agvm_mm <= 0.1 took it: each tensor's three dot products in float32,
    summed in float64. Half A is the first ``half_a`` micro-batches of a
    step (default: half of them; with ranks, ``W // 2`` ranks' worth)."""
    model = Toy(names)
    groups = [dict(params=list(getattr(model, n).parameters())) for n in names]
    opt = make_optimizer(kind, groups)
    base = [g['lr'] for g in opt.param_groups]
    scales = [1.0] * len(names)
    history = []
    for step, micro in enumerate(data):
        grads = []
        for x in micro:
            model.zero_grad()
            model(x).backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        k = len(micro)
        mean = [sum(gs) / k for gs in zip(*grads)]
        in_window = step >= start and (stop is None or step < stop)
        if in_window and (step - start) % interval == 0:
            n_a = k // 2 if half_a is None else half_a
            g_a = [sum(gs) / n_a for gs in zip(*grads[:n_a])]
            g_b = [sum(gs) / (k - n_a) for gs in zip(*grads[n_a:])]
            phis = []
            index = 0
            for m, name in enumerate(names):
                params = list(getattr(model, name).parameters())
                ua, ub = [], []
                for p in params:
                    a, b = g_a[index], g_b[index]
                    if kind != 'SGD':
                        group = opt.param_groups[m]
                        beta2, eps = group['betas'][1], group['eps']
                        v = opt.state.get(p, {}).get('exp_avg_sq')
                        v = torch.zeros_like(p) if v is None else v
                        a = a / ((beta2 * v + (1 - beta2) * a * a).sqrt() + eps)
                        b = b / ((beta2 * v + (1 - beta2) * b * b).sqrt() + eps)
                    ua.append(a.flatten().double())
                    ub.append(b.flatten().double())
                    index += 1
                if float32_dots:
                    ab, aa, bb = (sum(float(u.float() @ v.float())
                                      for u, v in zip(us, vs))
                                  for us, vs in ((ua, ub), (ua, ua), (ub, ub)))
                    phis.append(1 - ab / (math.sqrt(aa) * math.sqrt(bb)))
                    continue
                ua, ub = torch.cat(ua), torch.cat(ub)
                phis.append(1 - float(ua @ ub / (ua.norm() * ub.norm())))
            for m, phi in enumerate(phis):
                mu = 1.0 if m == 0 else math.sqrt(
                    min(max((phis[0] + 1e-6) / (phi + 1e-6), clamp[0]),
                        clamp[1]))
                scales[m] = alpha * scales[m] + (1 - alpha) * mu
            history.append(dict(step=step, phi=dict(zip(names, phis)),
                                scale=dict(zip(names, scales))))
        for p, g in zip(model.parameters(), mean):
            p.grad = g
        for group, lr, s in zip(opt.param_groups, base, scales):
            group['lr'] = lr * (s if in_window else 1.0)
        opt.step()
        for group, lr in zip(opt.param_groups, base):
            group['lr'] = lr
    return dict(model=model, history=history, scales=dict(zip(names, scales)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank_main(rank: int, fn: Callable, world: int, port: int,
               args: tuple, done) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    # a collective that waits for a lost rank fails in 2 min, not 30
    torch.distributed.init_process_group(
        'gloo', rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=120))
    try:
        fn(rank, *args)
        torch.distributed.barrier()  # no rank tears down while one works
        done[rank] = 1
    finally:
        torch.distributed.destroy_process_group()


def run_ranks(fn: Callable, args: tuple, world: int,
              timeout: float = 300.0) -> None:
    """Run ``fn(rank, *args)`` on ``world`` gloo processes, with a deadline.

    ``mp.spawn`` waits forever, and its ranks outlive a pytest-timeout
    failure: pytest then waits for them at exit (multiprocessing joins its
    non-daemonic children), so one hung rank held a CI run until CI's own
    limit. Here the ranks are killed at the deadline: the test fails,
    unless every rank had finished ``fn`` and passed the final barrier, so
    that only torch's process-group teardown hung (a known, rare gloo hang,
    pytorch#75097), which is not what the tests check.
    """
    spawn = mp.get_context('spawn')
    done = spawn.Array('b', world)
    ctx = mp.start_processes(_rank_main,
                             args=(fn, world, free_port(), args, done),
                             nprocs=world, join=False, start_method='spawn')
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=max(1.0, deadline - time.monotonic())):
        if time.monotonic() < deadline:
            continue
        for proc in ctx.processes:
            proc.kill()
            proc.join()
        if not all(done):
            raise TimeoutError(
                f'ranks {[r for r in range(world) if not done[r]]} of '
                f'{world} did not finish within {timeout:.0f} s')
        warnings.warn(f'all {world} ranks finished, but the gloo teardown '
                      'hung; the processes were killed')
        return
