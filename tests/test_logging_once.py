"""AGVMOptimWrapper logs like mmengine's OptimWrapper: mmengine's own
``test_initialize_iter_status`` (tests/test_optim/test_optimizer/
test_optimizer_wrapper.py, one log record per initialize_count_status)
mirrored for it, and a whole Runner run logs the module partition once."""
import glob
import logging
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from agvm_mm import AGVMOptimWrapper
from tests.toy import Toy

PARTITION = 'AGVM: modules'


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextmanager
def records():
    """The records of mmengine's current logger (as ``assertLogs``)."""
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def _wrapper(model):
    # AGVM on one process needs an even accumulative_counts (mmengine's
    # test uses 3)
    return AGVMOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01),
                            accumulative_counts=2)


def test_initialize_iter_status():
    model = Toy()
    wrapper = _wrapper(model)
    wrapper.initialize_count_status(model, 0, 99)
    assert wrapper._max_counts == 99
    assert wrapper._remainder_counts == 1

    # an indivisible resumed iteration: mmengine's warning, and only it
    wrapper = _wrapper(model)
    with records() as got:
        wrapper.initialize_count_status(model, 1, 100)
    assert len(got) == 1
    assert 'Resumed iteration number' in got[0].msg

    # a model with batch norm: mmengine's warning, and only it
    bn_model = nn.ModuleDict(
        dict(backbone=nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)),
             head=nn.Linear(4, 2)))
    wrapper = _wrapper(bn_model)
    with records() as got:
        wrapper.initialize_count_status(bn_model, 0, 99)
    assert len(got) == 1
    assert 'Gradient accumulative' in got[0].msg


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        toy = Toy()  # the partition's modules are the top-level children
        self.backbone, self.neck, self.bbox_head = (toy.backbone, toy.neck,
                                                    toy.bbox_head)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.bbox_head(self.neck(self.backbone(torch.stack(inputs))))
        loss = ((out - 0.3)**2).mean()
        return dict(loss=loss) if mode == 'loss' else loss


def _partition_lines(work_dir):
    [log] = glob.glob(f'{work_dir}/*/*.log')
    with open(log) as f:
        return [line for line in f if PARTITION in line]


def test_runner_logs_partition_once(tmp_path):
    data = [torch.randn(6) for _ in range(8)]
    for constructor in ('AGVMOptimWrapperConstructor',
                        'DefaultOptimWrapperConstructor'):
        work_dir = tmp_path / constructor
        runner = Runner(
            model=_ToyModel(),
            work_dir=str(work_dir),
            experiment_name=constructor,
            train_dataloader=DataLoader(
                data, batch_size=2, collate_fn=lambda b: dict(inputs=b)),
            train_cfg=dict(by_epoch=False, max_iters=6),
            optim_wrapper=dict(
                type='AGVMOptimWrapper', constructor=constructor,
                optimizer=dict(type='SGD', lr=0.01),
                accumulative_counts=2, agvm=dict(interval=1)),
            param_scheduler=[dict(type='LinearLR', start_factor=0.1,
                                  by_epoch=False, begin=0, end=2)],
            custom_hooks=[dict(type='AGVMHook')],
            default_hooks=dict(checkpoint=None),
            default_scope=None)
        runner.train()
        lines = _partition_lines(work_dir)
        assert len(lines) == 1, lines
        assert "['backbone', 'neck', 'bbox_head']" in lines[0]
