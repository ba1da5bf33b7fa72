"""AGVM's overhead over mmengine's OptimWrapper, measured side by side.

Every process holds the same model twice, one under ``OptimWrapper`` and
one under ``AGVMOptimWrapper`` (interval 10, active from step 0), and
alternates whole intervals of optimizer steps between them on the same
batches, so that drift of the machine affects both alike:

- ``--nproc N`` >= 2: N DDP processes (gloo on the CPU, NCCL on N GPUs);
  AGVM's two estimates are the two halves of the ranks;
- ``--nproc 1``: one process (the CPU or one GPU) with 2 accumulated
  micro-batches per step for both wrappers; AGVM's estimates are the halves
  of the micro-batches.

    python tools/benchmark_overhead.py [--model shapes-retinanet |
        faster-rcnn-r50 | CONFIG] [--nproc 2] [--accumulate K] [--batch B]
        [--img-size H W] [--rounds 6] [--runs 3] [--amp fp16|bf16]

``shapes-retinanet`` (the default) is the tiny RetinaNet of
configs/shapes/ at 128 px; ``faster-rcnn-r50`` is mmdet's stock
faster-rcnn_r50_fpn_1x_coco (random init, nothing downloaded; 800 x 1344 by
default, a GPU-sized step). Both train on the built-in shapes data, resized
to ``--img-size``. Prints, for each of ``--runs`` runs of ``--rounds``
rounds and as their median [min, max]: the plain step, AGVM's ordinary and
statistics steps, the statistics step over the plain step, the mean
step-time ratio over whole intervals (an AGVM interval's time over the
plain interval's beside it, the median of the rounds: a round disturbed by
the machine does not decide it), the time of the statistics alone
(statistics step minus AGVM's ordinary step), and the extra peak memory of
a statistics interval in gradient copies (CUDA: allocated memory; CPU: the
tensors allocated, from the profiler's allocation events).
"""
import argparse
import copy
import os
import statistics
import time
from typing import Dict, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from checkout import ROOT  # this checkout, first on sys.path

MODELS = {
    'shapes-retinanet': ('configs/shapes/retinanet_tiny_shapes_agvm.py',
                         (128, 128)),
    'faster-rcnn-r50': ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                        (800, 1344)),
}
WRAPPERS = {None: ('OptimWrapper', 'AGVMOptimWrapper'),
            'fp16': ('AmpOptimWrapper', 'AGVMAmpOptimWrapper'),
            'bf16': ('AmpOptimWrapper', 'AGVMAmpOptimWrapper')}


def load_config(model: str):
    """The model's config, offline (no pretrained weights), CPU-ready."""
    from mmengine.config import Config
    from mmengine.hub import get_config
    path, _ = MODELS.get(model, (model, None))
    if '::' in path:  # a config of an installed package (mmdet::...)
        cfg = get_config(path)
    else:
        cfg = Config.fromfile(path if os.path.isabs(path) else
                              os.path.join(ROOT, path))
    from tools.runner_setup import adapt_to_cpu, no_downloads
    cfg.model.backbone.init_cfg = None
    no_downloads(cfg.model)
    adapt_to_cpu(cfg)
    return cfg


def batches(cfg, data: str, rank: int, world: int, per: int, size,
            count: int) -> List[dict]:
    """``count`` micro-batches of ``per`` shapes images resized to ``size``
    (H, W), different on every rank."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='mmdet.LoadAnnotations', with_bbox=True),
                dict(type='mmdet.Resize', scale=(size[1], size[0]),
                     keep_ratio=False),
                dict(type='mmdet.PackDetInputs')]
    dataset = DATASETS.build(dict(type='mmdet.ShapesCocoDataset',
                                  data_root=data, pipeline=pipeline,
                                  filter_cfg=dict(filter_empty_gt=True)))
    return [pseudo_collate([dataset[((i * world + rank) * per + j) %
                                    len(dataset)] for j in range(per)])
            for i in range(count)]


def build(cfg, device, world: int):
    from mmengine.model import MMDistributedDataParallel
    from mmengine.registry import MODELS as REGISTRY
    torch.manual_seed(0)
    model = REGISTRY.build(copy.deepcopy(cfg.model)).to(device)
    model.init_weights()
    if world == 1:
        return model
    return MMDistributedDataParallel(
        model, device_ids=[device] if device.type == 'cuda' else None,
        broadcast_buffers=False)


def wrapper(model, kind: str, args):
    from mmengine.optim import build_optim_wrapper
    cfg = dict(type=kind, accumulative_counts=args.accumulate,
               optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                              weight_decay=1e-4))
    if args.amp:
        cfg.update(loss_scale='dynamic',
                   dtype='float16' if args.amp == 'fp16' else 'bfloat16')
    if kind.startswith('AGVM'):
        cfg['agvm'] = dict(interval=args.interval, start_iter=0)
    w = build_optim_wrapper(model, cfg)
    w.initialize_count_status(model, 0, 10**9)
    return w


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_step(model, optim_wrapper, micro: List[dict]) -> float:
    """One optimizer step (its accumulated micro-batches), in seconds."""
    sync()
    start = time.perf_counter()
    for batch in micro:
        model.train_step(batch, optim_wrapper=optim_wrapper)
    sync()
    return time.perf_counter() - start


def peak_bytes(fn) -> int:
    """Peak memory of the tensors alive while ``fn`` runs, above the
    start."""
    if torch.cuda.is_available():
        sync()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        sync()
        return torch.cuda.max_memory_allocated() - base
    from tools.harness.profiling import peak_tensor_bytes, profiled
    return peak_tensor_bytes(profiled(fn, memory=True))


def measure(pair, data, args) -> Dict[str, float]:
    """One run: ``--rounds`` x (an interval of plain steps, an interval of
    AGVM steps), per-step times averaged over the ranks."""
    (plain_model, plain), (agvm_model, agvm) = pair
    k = args.accumulate

    def block(model, w):
        return [timed_step(model, w, data[(i * k) % len(data):][:k] or
                           data[:k]) for i in range(args.interval)]

    plain_t, agvm_t = [], []
    for _ in range(args.rounds):
        plain_t.append(block(plain_model, plain))
        agvm_t.append(block(agvm_model, agvm))
    # per round, the AGVM interval's time over the plain one's beside it
    local = torch.tensor([[sum(a) / sum(p) for a, p in zip(agvm_t, plain_t)],
                          [statistics.median(b) for b in plain_t],
                          [statistics.median(b[1:]) for b in agvm_t],
                          [b[0] for b in agvm_t]], dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(local)
        local /= dist.get_world_size()
    rounds, plain_step, ordinary, stats = (
        statistics.median(row) for row in local.tolist())
    return dict(plain=plain_step, ordinary=ordinary, stats=stats,
                ratio=stats / plain_step, mean=rounds, alone=stats - ordinary)


def worker(rank: int, world: int, port: int, args) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    cuda = torch.cuda.is_available()
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) //
                                              world))
    if cuda:
        torch.cuda.set_device(rank)
    device = torch.device('cuda', rank) if cuda else torch.device('cpu')
    if world > 1:
        dist.init_process_group('nccl' if cuda else 'gloo')

    import agvm_mm  # noqa: F401
    from mmengine.registry import init_default_scope
    from agvm_mm.datasets import generate_shapes
    cfg = load_config(args.model)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if rank == 0:
        generate_shapes(args.data, num_train=64, num_val=8)
    if world > 1:
        dist.barrier()
    size = args.img_size or MODELS.get(args.model, (None, (128, 128)))[1]
    data = batches(cfg, args.data, rank, world, args.batch, size,
                   2 * args.accumulate)
    kinds = WRAPPERS[args.amp]
    pair = []
    for kind in kinds:
        model = build(cfg, device, world)
        pair.append((model, wrapper(model, kind, args)))
    grad_bytes = sum(p.numel() * p.element_size()
                     for p in pair[0][0].parameters() if p.requires_grad)

    # warm up both; then each one's peak memory over one interval
    (plain_model, plain), (agvm_model, agvm) = pair
    k = args.accumulate
    for model, w in pair:
        for _ in range(args.interval):
            timed_step(model, w, data[:k])
    mem = [peak_bytes(lambda: [timed_step(m, w, data[:k])
                               for _ in range(args.interval)])
           for m, w in pair]
    runs = [measure(pair, data, args) for _ in range(args.runs)]
    if rank == 0:
        report(runs, mem, grad_bytes, world, cuda, size, agvm, args)
    if world > 1:
        dist.destroy_process_group()


def report(runs, mem, grad_bytes, world, cuda, size, agvm, args) -> None:
    where = (f'{world} GPU(s), NCCL' if cuda and world > 1 else
             '1 GPU' if cuda else f'CPU, {world} gloo process(es)'
             if world > 1 else 'CPU, 1 process')
    estimates = ('the halves of the ranks' if world > 1 else
                 f'the halves of {args.accumulate} accumulated micro-batches')
    print(f'{args.model} on {where}; {args.batch} image(s) of '
          f'{size[0]} x {size[1]} per micro-batch, {args.accumulate} '
          f'micro-batch(es) per step, AGVM interval {args.interval} '
          f'(estimates: {estimates}); {args.runs} runs of {args.rounds} '
          f'rounds{"; AMP " + args.amp if args.amp else ""}')
    rows = [('plain step (ms)', 'plain', 1000),
            ('AGVM ordinary step (ms)', 'ordinary', 1000),
            ('AGVM statistics step (ms)', 'stats', 1000),
            ('statistics step / plain step', 'ratio', 1),
            ('mean over whole intervals', 'mean', 1),
            ('statistics alone (ms)', 'alone', 1000)]
    print(f'{"":32}' + ''.join(f'run {i + 1:<6}' for i in range(len(runs)))
          + 'median [min, max]')
    for label, key, scale in rows:
        values = [r[key] * scale for r in runs]
        fmt = '{:.3f}' if scale == 1 else '{:.1f}'
        print(f'{label:32}' + ''.join(fmt.format(v).ljust(10)
                                      for v in values) +
              f'{fmt.format(statistics.median(values))} '
              f'[{fmt.format(min(values))}, {fmt.format(max(values))}]')
    extra = (mem[1] - mem[0]) / grad_bytes
    print(f'extra peak memory of a statistics interval: {extra:.2f} '
          f'gradient copies ({(mem[1] - mem[0]) / 2**20:.1f} MB; peak '
          f'{mem[0] / 2**20:.1f} MB plain, {mem[1] / 2**20:.1f} MB AGVM, '
          f'gradient {grad_bytes / 2**20:.1f} MB, '
          f'{"CUDA allocated" if cuda else "tensors allocated (profiler)"})')
    print('AGVM ' + agvm.agvm_source + '; factors after '
          f'{agvm.agvm_steps} statistics steps: ' + ', '.join(
              f'{k}={v:.3f}' for k, v in agvm.agvm_scales.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='shapes-retinanet',
                        help=f'{" | ".join(MODELS)} | a config file')
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--accumulate', type=int,
                        help='micro-batches per step (default: 2 with one '
                        'process, else 1)')
    parser.add_argument('--batch', type=int,
                        help='images per micro-batch (default 8 for '
                        'shapes-retinanet, 2 otherwise)')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--interval', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=6)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--amp', choices=['fp16', 'bf16'])
    parser.add_argument('--threads', type=int,
                        help='torch threads per process (default: the '
                        'cores / nproc)')
    parser.add_argument('--data',
                        default=os.path.join(ROOT, 'data/shapes_bench'))
    parser.add_argument('--port', type=int, default=29533)
    args = parser.parse_args()
    if args.accumulate is None:
        args.accumulate = 2 if args.nproc == 1 else 1
    if args.batch is None:
        args.batch = 8 if args.model == 'shapes-retinanet' else 2
    if args.nproc == 1 and (args.accumulate < 2 or args.accumulate % 2):
        parser.error('--nproc 1 needs --accumulate even and >= 2 (AGVM '
                     'compares the halves of the micro-batches)')
    gpus = torch.cuda.device_count()
    if gpus and args.nproc > gpus:
        parser.error(f'--nproc {args.nproc}: this machine has {gpus} GPU(s) '
                     '(NCCL needs one per process); use --nproc 1 for one '
                     'GPU with accumulated micro-batches')
    if args.amp and not gpus:
        parser.error('--amp needs a GPU (mmengine\'s AmpOptimWrapper)')
    if args.nproc == 1:
        worker(0, 1, args.port, args)
    else:
        mp.spawn(worker, args=(args.nproc, args.port, args),
                 nprocs=args.nproc)


if __name__ == '__main__':
    main()
