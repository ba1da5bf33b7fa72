"""AGVM's overhead over mmengine's OptimWrapper, measured side by side.

Two DDP processes (gloo on CPU, NCCL on GPUs) each hold the same model
twice, one under ``OptimWrapper`` and one under ``AGVMOptimWrapper``
(interval 10, active from step 0), and alternate whole intervals of 10
optimizer steps between them on the same batches, so that drift of the
machine affects both alike. Prints the mean step-time ratio over whole
intervals, the ratio of AGVM's statistics steps alone to plain steps, and
the extra peak memory.

    python tools/benchmark_overhead.py [--config CFG] [--rounds 8]
"""
import argparse
import copy
import os
import resource
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(cfg, device):
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model)).to(device)
    model.init_weights()
    ddp = MMDistributedDataParallel(
        model, device_ids=[device] if device.type == 'cuda' else None,
        broadcast_buffers=False)
    return ddp


def wrapper(ddp, kind: str, interval: int):
    from mmengine.optim import build_optim_wrapper
    cfg = dict(type=kind, optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                         weight_decay=1e-4))
    if kind == 'AGVMOptimWrapper':
        cfg['agvm'] = dict(interval=interval, start_iter=0)
    w = build_optim_wrapper(ddp, cfg)
    w.initialize_count_status(ddp, 0, 10**9)
    return w


def timed_step(ddp, optim_wrapper, batch) -> float:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (
        lambda: None)
    sync()
    start = time.perf_counter()
    ddp.train_step(batch, optim_wrapper=optim_wrapper)
    sync()
    return time.perf_counter() - start


def worker(rank: int, world: int, port: int, args) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group('nccl' if cuda else 'gloo')
    device = torch.device('cuda', rank) if cuda else torch.device('cpu')

    import agvm_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, init_default_scope
    from agvm_mm.datasets import generate_shapes
    from tools.runner_setup import adapt_to_cpu
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    adapt_to_cpu(cfg)
    if rank == 0:
        generate_shapes(args.data, num_train=64, num_val=8)
    dist.barrier()
    data_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    data_cfg.data_root = args.data
    dataset = DATASETS.build(data_cfg)
    per = args.batch
    batches = [pseudo_collate([dataset[(i * world + rank) * per + j]
                               for j in range(per)]) for i in range(4)]

    plain_ddp, agvm_ddp = build(cfg, device), build(cfg, device)
    plain = wrapper(plain_ddp, 'OptimWrapper', args.interval)
    agvm = wrapper(agvm_ddp, 'AGVMOptimWrapper', args.interval)

    def block(ddp, w, n):
        return [timed_step(ddp, w, batches[i % len(batches)])
                for i in range(n)]

    # warm up both, then peak memory: plain first, AGVM on top of it
    block(plain_ddp, plain, args.interval)
    mem_plain = peak_memory_mb()
    block(agvm_ddp, agvm, args.interval)
    mem_agvm = peak_memory_mb()

    times = {'plain': [], 'agvm': []}
    for _ in range(args.rounds):
        times['plain'].append(block(plain_ddp, plain, args.interval))
        times['agvm'].append(block(agvm_ddp, agvm, args.interval))
    local = torch.tensor([[sum(b) for b in times['plain']],
                          [sum(b) for b in times['agvm']],
                          [statistics.mean(b) for b in times['plain']],
                          [b[0] for b in times['agvm']]], dtype=torch.float64)
    dist.all_reduce(local)  # mean over ranks
    local /= world
    if rank == 0:
        plain_total, agvm_total = local[0].sum(), local[1].sum()
        plain_step = local[2].mean()
        stats_step = local[3].mean()
        print(f'device: {"cuda" if cuda else "cpu"}, {world} processes, '
              f'batch {per}/process, interval {args.interval}, '
              f'{args.rounds} rounds of {args.interval} steps each')
        print(f'plain step            {1000 * plain_step:8.1f} ms')
        print(f'AGVM statistics step  {1000 * stats_step:8.1f} ms')
        print(f'mean step-time ratio (AGVM / plain, whole intervals): '
              f'{float(agvm_total / plain_total):.3f}')
        print(f'AGVM statistics step / plain step: '
              f'{float(stats_step / plain_step):.3f}')
        print(f'extra peak memory: {mem_agvm - mem_plain:.1f} MB '
              f'(peak {mem_plain:.1f} MB plain -> {mem_agvm:.1f} MB with '
              f'AGVM, {"CUDA allocated" if cuda else "process RSS"})')
        print(f'AGVM factors after {agvm.agvm_steps} statistics steps: '
              + ', '.join(f'{k}={v:.3f}' for k, v in agvm.agvm_scales.items()))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config',
        default=os.path.join(ROOT, 'configs/shapes/'
                             'retinanet_tiny_shapes_agvm.py'))
    parser.add_argument('--data',
                        default=os.path.join(ROOT, 'data/shapes_bench'))
    parser.add_argument('--batch', type=int, default=8,
                        help='images per process per step')
    parser.add_argument('--interval', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=8)
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--port', type=int, default=29533)
    args = parser.parse_args()
    mp.spawn(worker, args=(args.nproc, args.port, args), nprocs=args.nproc)


if __name__ == '__main__':
    main()
