"""What a user reads when something is off: the Adam-type rule without
betas, --amp without a GPU, a frozen anchor, and resume in the middle of an
accumulation cycle (accurate on one process, mmengine's warning on two)."""
import copy
import os

import pytest
import torch
from mmengine.logging import MMLogger

from agvm_mm import AGVMOptimWrapper
from tests.conftest import ROOT
from tests.toy import Toy, batches, make_optimizer, run_ranks
from tools.runner_setup import amp_available

LOST = 'the gradient of some iterations is lost'
RESTORED = 'their gradients were restored from the checkpoint'


def test_adam_rule_needs_betas_at_build_time():
    params = Toy().parameters()
    with pytest.raises(ValueError, match=r"optim_wrapper.agvm.rule='adam' "
                       r".*param group 0 of Adagrad has no \['betas'\].*"
                       r"agvm.rule='sgd'"):
        AGVMOptimWrapper(torch.optim.Adagrad(params, lr=0.01),
                         accumulative_counts=2, agvm=dict(rule='adam'))
    # the same optimizer with the SGD-type rule, and AdamW with 'adam', build
    AGVMOptimWrapper(torch.optim.Adagrad(Toy().parameters(), lr=0.01),
                     accumulative_counts=2, agvm=dict(rule='sgd'))
    AGVMOptimWrapper(make_optimizer('AdamW', Toy().parameters()),
                     accumulative_counts=2, agvm=dict(rule='adam'))


@pytest.mark.skipif(amp_available(), reason='needs a machine without GPU')
def test_amp_without_gpu_is_refused_before_building(tmp_path):
    import subprocess
    import sys
    config = os.path.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_agvm.py')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools/train.py'), config,
         '--amp', '--work-dir', str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 2
    assert '--amp needs a GPU' in proc.stderr
    assert 'AGVMAmpOptimWrapper' in proc.stderr
    assert 'mmengine' not in proc.stdout  # no runner, no model: nothing ran
    assert not os.listdir(tmp_path)
    help_text = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools/train.py'), '--help'],
        capture_output=True, text=True, env=dict(os.environ,
                                                 PYTHONPATH=ROOT)).stdout
    assert 'needs a GPU' in help_text


def test_frozen_anchor_is_called_frozen():
    model = Toy()
    model.backbone[0].requires_grad_(False)
    wrapper = AGVMOptimWrapper(
        make_optimizer('SGD', [p for p in model.parameters()
                               if p.requires_grad]),
        accumulative_counts=2,
        agvm=dict(anchor='backbone.0',
                  modules=['backbone.0', 'backbone', 'neck', 'bbox_head']))
    with pytest.raises(ValueError, match=r"agvm.anchor='backbone.0' is "
                       r'frozen: all its 2 parameter tensors have '
                       r"requires_grad=False.*\['backbone', 'neck', "
                       r"'bbox_head'\]"):
        wrapper.bind(model)


def _train(wrapper, model, micro_batches):
    for x in micro_batches:
        with wrapper.optim_context(model):
            loss = model(x)
        wrapper.update_params(loss)


def _resume_log(tmp_path, name, world=1):
    """Save after 3 micro-batches (mid-cycle of 2), resume into a fresh
    wrapper as the Runner does; return the log text."""
    data = [x for micro in batches(2, 2) for x in micro]
    model = Toy()
    wrapper = AGVMOptimWrapper(make_optimizer('SGD', model.parameters()),
                               accumulative_counts=2 // world,
                               agvm=dict(start_iter=0, interval=1))
    wrapper.initialize_count_status(model, 0, 4)
    _train(wrapper, model, data[:3])
    state = copy.deepcopy(wrapper.state_dict())  # as saved to a checkpoint
    fresh = Toy()
    resumed = AGVMOptimWrapper(make_optimizer('SGD', fresh.parameters()),
                               accumulative_counts=2 // world,
                               agvm=dict(start_iter=0, interval=1))
    resumed.load_state_dict(state)
    log_file = tmp_path / f'{name}.log'
    MMLogger.get_instance(name, log_file=str(log_file))  # the current logger
    resumed.initialize_count_status(fresh, 3, 4)
    if world == 1:  # the resumed step equals the uninterrupted one
        fresh.load_state_dict(model.state_dict())
        _train(resumed, fresh, data[3:])
        _train(wrapper, model, data[3:])
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(),
                                                     fresh.parameters()))
    return log_file.read_text()


def test_resume_mid_accumulation_message_one_process(tmp_path):
    text = _resume_log(tmp_path, 'resume_one')
    assert RESTORED in text and '1 of 2 micro-batches' in text
    assert LOST not in text


def _resume_worker(rank, folder):
    import pathlib
    data = [x for micro in batches(2, 2) for x in micro]
    model = Toy()
    wrapper = AGVMOptimWrapper(make_optimizer('SGD', model.parameters()),
                               accumulative_counts=2,
                               agvm=dict(start_iter=0, interval=1))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    wrapper.initialize_count_status(ddp, 0, 4)
    _train(wrapper, ddp, data[:3])
    state = wrapper.state_dict()
    resumed = AGVMOptimWrapper(make_optimizer('SGD', model.parameters()),
                               accumulative_counts=2,
                               agvm=dict(start_iter=0, interval=1))
    resumed.load_state_dict(state)
    log_file = pathlib.Path(folder) / f'rank{rank}.log'
    MMLogger.get_instance(f'resume_two_{rank}', log_file=str(log_file))
    resumed.initialize_count_status(ddp, 3, 4)


def test_resume_mid_accumulation_keeps_warning_on_two_processes(tmp_path):
    """With several processes the other ranks' partial gradients are not in
    the checkpoint (mmengine saves rank 0's): mmengine's warning is true."""
    run_ranks(_resume_worker, (str(tmp_path),), world=2)
    text = (tmp_path / 'rank0.log').read_text()  # mmengine logs rank 0 only
    assert LOST in text and RESTORED not in text
