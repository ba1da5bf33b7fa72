"""Checks that need a CUDA GPU (marker ``cuda``; skipped without one, so CI
never runs them; tools/gpu_check.sh does, on a GPU machine).

TF32 is off here: with PyTorch's default TF32 convolutions CUDA and CPU
differ by up to 0.1 in Phi (../shared notes), which is not what is tested.
"""
import datetime
import os

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from agvm_mm import AGVMAmpOptimWrapper, AGVMOptimWrapper
from tests.toy import (RETINANET, Toy, batches, free_port, make_optimizer,
                       reference_run, run_ranks)

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def no_tf32():
    flags = (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = flags


def train(model, wrapper, data, device='cuda'):
    for micro in data:
        for x in micro:
            with wrapper.optim_context(model):
                loss = model(x.to(device))
            wrapper.update_params(loss)
    return wrapper


def amp_wrapper(model, dtype, init_scale=2.0**14):
    wrapper = AGVMAmpOptimWrapper(
        optimizer=make_optimizer('AdamW', model.parameters()),
        accumulative_counts=2, dtype=dtype, loss_scale=dict(
            init_scale=init_scale), agvm=dict(start_iter=0, interval=1))
    return wrapper


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_amp_phi_matches_fp32(dtype):
    """As on the CPU (tests/test_reliability.py): each step's Phi within
    the float32 rounding bound of Phi from the AMP run's own gradients, and
    within that plus what the two runs' gradients differ by of the fp32
    run's Phi, the factors accordingly; no fixed tolerance."""
    from tests.test_reliability import check_amp_against_fp32, train_recorded
    data = [[x.cuda() for x in micro] for micro in batches(4, 2)]
    model = Toy().cuda()
    fp32_wrapper = AGVMOptimWrapper(
        make_optimizer('AdamW', model.parameters()), accumulative_counts=2,
        agvm=dict(start_iter=0, interval=1))
    fp32 = train_recorded(model, fp32_wrapper, data)
    amp_model = Toy().cuda()
    amp = amp_wrapper(amp_model, dtype)
    steps = train_recorded(amp_model, amp, data)
    assert amp.agvm_steps == 4
    check_amp_against_fp32(model, fp32, fp32_wrapper.agvm_scales, steps,
                           amp.agvm_scales, list(RETINANET))


def test_overflowing_fp16_step_is_skipped_and_factors_held():
    model = Toy().cuda()
    amp = amp_wrapper(model, 'float16')
    data = batches(3, 2)
    train(model, amp, data[:2])
    held, scale = amp.agvm_scales, amp.loss_scaler.get_scale()
    before = [p.detach().clone() for p in model.parameters()]
    handle = model.neck[0].weight.register_hook(lambda g: g * float('inf'))
    train(model, amp, data[2:])
    handle.remove()
    assert amp.agvm_scales == held
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert amp.loss_scaler.get_scale() == scale / 2


def test_nccl_world_size_one_matches_the_run_without_ddp():
    """DDP over NCCL with one rank and 2 accumulated micro-batches: the
    micro-batch halves, as without DDP."""
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    data = batches(5, 2)
    agvm = dict(start_iter=0, interval=2)
    plain_model = Toy().cuda()
    plain = train(plain_model, AGVMOptimWrapper(
        make_optimizer('SGD', plain_model.parameters()),
        accumulative_counts=2, agvm=agvm), data)
    dist.init_process_group('nccl', rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=120))
    try:
        model = Toy().cuda()
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[0])
        wrapper = train(ddp, AGVMOptimWrapper(
            make_optimizer('SGD', ddp.parameters()), accumulative_counts=2,
            agvm=agvm), data)
    finally:
        dist.destroy_process_group()
    assert wrapper.agvm_steps == plain.agvm_steps == 3
    # DDP with one rank all-reduces a sum of one and multiplies by 1 / 1,
    # into the same .grad tensors: both runs compute the same float32
    # values, so these tolerances only bound what should be equality
    assert wrapper.agvm_scales == pytest.approx(plain.agvm_scales, rel=1e-6)
    for p, q in zip(model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def _hook_worker(rank, data, out):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.cuda.set_device(0)
    model = Toy(RETINANET).cuda()
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[0])
    wrapper = AGVMOptimWrapper(make_optimizer('AdamW', ddp.parameters()),
                               accumulative_counts=1,
                               agvm=dict(start_iter=0, interval=2))
    for batch in data:
        with wrapper.optim_context(ddp):
            loss = ddp(batch[rank].cuda())
        wrapper.update_params(loss)
    out[rank] = dict(hooked=wrapper.agvm_ddp_hooked,
                     scales=wrapper.agvm_scales,
                     params=[p.detach().cpu() for p in model.parameters()])


def test_hook_on_cuda_tensors_two_ranks_one_gpu():
    """The DDP communication hook on CUDA buckets (gloo over CUDA tensors:
    NCCL refuses two ranks on one GPU), against the CPU reference."""
    data = batches(5, 2)
    out = mp.Manager().dict()
    run_ranks(_hook_worker, (data, out), 2)
    ref = reference_run(RETINANET, 'AdamW', data, start=0, interval=2)
    assert out[0]['hooked']
    assert out[0]['scales'] == out[1]['scales']
    assert out[0]['scales'] == pytest.approx(ref['scales'], rel=1e-5)
    for p, q in zip(out[0]['params'], ref['model'].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
