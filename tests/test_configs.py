"""Every paper config under configs/ (except configs/shapes/ and
configs/_base_/) loads, builds its model and its optim wrapper on CPU, and its
batch arithmetic matches its file name; its AGVM window (as AGVMHook places
it) is the one configs/README.md lists; every leaf stays short.

File names: ``<model>_<optim>_<G>xb<S>[x<K>]-<schedule>_<data>-b<B>.py`` with
G GPUs x S images per GPU x K accumulated micro-batches = global batch B.
"""
import copy
import glob
import io
import json
import math
import os.path as osp
import re
import tokenize
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import (HOOKS, MODELS, PARAM_SCHEDULERS,
                               init_default_scope)

import agvm_mm  # noqa: F401  registers the wrapper, hook and optimizers
import agvm_mm.schedulers  # noqa: F401  registers ExpWarmupLR
from agvm_mm.optim import AGVMConfig
from tools.runner_setup import replace_syncbn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs')
SKIP = ('shapes', '_base_')
CONFIGS = sorted(
    osp.relpath(p, CONFIG_DIR)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if osp.relpath(p, CONFIG_DIR).split(osp.sep)[0] not in SKIP)
NAME = re.compile(r'^(?P<model>[a-z0-9-]+(?:_[a-z0-9-]+)*?)_'
                  r'(?P<optim>agvm|agvm-adamw|sgd|lars|lamb|pmd-lamb|adamw)_'
                  r'(?P<gpus>\d+)xb(?P<per_gpu>\d+)(?:x(?P<accum>\d+))?-'
                  r'(?P<schedule>[0-9.]+[ek])_(?P<data>[a-z0-9-]+?)'
                  r'-b(?P<batch>\d+)\.py$')
OPTIMIZER_OF = {
    'agvm': 'SGD', 'agvm-adamw': 'AdamW', 'sgd': 'SGD', 'lars': 'TimmLARS',
    'lamb': 'TimmLAMB', 'pmd-lamb': 'PMDLAMB', 'adamw': 'AdamW'
}


def setup_module(module):
    from mmdet.utils import register_all_modules as register_mmdet
    from mmseg.utils import register_all_modules as register_mmseg
    register_mmdet(init_default_scope=False)
    register_mmseg(init_default_scope=False)


_CFG_CACHE = {}
_MODEL_CACHE = {}


def load(rel):
    if rel not in _CFG_CACHE:
        # fromfile resolves mmdet::/mmseg:: bases and imports custom_imports
        _CFG_CACHE[rel] = Config.fromfile(osp.join(CONFIG_DIR, rel))
    return _CFG_CACHE[rel]


def cpu_model_cfg(cfg):
    """The config's model, CPU-buildable and without any weight download
    (building does not load weights; init_weights is never called)."""
    model = copy.deepcopy(cfg.model)
    replace_syncbn(model)  # SyncBN refuses CPU tensors; the test uses BN
    model.backbone.init_cfg = None
    model.pop('pretrained', None)  # mmseg's open-mmlab://resnet50_v1c
    return model


def agvm_window(cfg, accum):
    """``(agvm.start_iter, agvm.clip_grad_window)`` of the real run: the
    config's AGVMHook run on a stand-in Runner with the config's schedulers
    (iteration-based warm-up; epochs of any length) and accumulation."""
    agvm_cfg = AGVMConfig.build(cfg.optim_wrapper.agvm)
    wrapper = SimpleNamespace(agvm_cfg=agvm_cfg, agvm_steps=0,
                              accumulative_counts=accum,
                              clip_grad_kwargs=dict(
                                  cfg.optim_wrapper.clip_grad or {}))
    runner = SimpleNamespace(
        optim_wrapper=wrapper, max_iters=10**9, train_dataloader=[0] * 1000,
        param_schedulers=[SimpleNamespace(begin=s.get('begin', 0),
                                          end=s['end'],
                                          by_epoch=s.get('by_epoch', True))
                          for s in cfg.param_scheduler])
    [hook] = [h for h in cfg.custom_hooks if h.type == 'AGVMHook']
    HOOKS.build(copy.deepcopy(hook)).before_train(runner)
    return agvm_cfg.start_iter, agvm_cfg.clip_grad_window


def build_model(cfg):
    """Build once per distinct model config (baselines share their AGVM
    cell's model; all batch sizes of a family share one)."""
    model_cfg = cpu_model_cfg(cfg)
    key = (cfg.default_scope,
           json.dumps(model_cfg.to_dict(), sort_keys=True, default=str))
    if key not in _MODEL_CACHE:
        init_default_scope(cfg.default_scope)
        _MODEL_CACHE[key] = MODELS.build(model_cfg)
    return _MODEL_CACHE[key]


def test_configs_found():
    families = {c.split(osp.sep)[0] for c in CONFIGS}
    assert families >= {'retinanet', 'faster_rcnn', 'mask_rcnn',
                        'panoptic_fpn', 'sem_fpn'}
    batches = {(c.split(osp.sep)[0], int(NAME.match(osp.basename(c))['batch']))
               for c in CONFIGS if NAME.match(osp.basename(c))}
    for family in ('retinanet', 'faster_rcnn', 'mask_rcnn', 'panoptic_fpn',
                   'sem_fpn'):
        for batch in (32, 256, 512, 1024):
            assert (family, batch) in batches
    assert ('faster_rcnn', 1536) in batches
    assert ('retinanet', 10240) in batches


@pytest.mark.parametrize('rel', CONFIGS)
def test_config(rel):
    match = NAME.match(osp.basename(rel))
    assert match, f'{rel}: name does not follow the scheme'
    gpus, per_gpu = int(match['gpus']), int(match['per_gpu'])
    accum, batch = int(match['accum'] or 1), int(match['batch'])
    cfg = load(rel)

    # batch arithmetic: name == config
    assert gpus * per_gpu * accum == batch
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.optim_wrapper.get('accumulative_counts', 1) == accum
    assert cfg.auto_scale_lr.base_batch_size == batch
    assert not cfg.auto_scale_lr.enable

    # schedule: the name's length, a registered (exponential) warm-up
    for scheduler in cfg.param_scheduler:
        assert PARAM_SCHEDULERS.get(scheduler['type']) is not None
    warmup = cfg.param_scheduler[0]
    assert warmup.type == 'ExpWarmupLR' and warmup.start_factor == 0.001
    assert not warmup.by_epoch and warmup.end % accum == 0
    if match['schedule'].endswith('e'):
        assert cfg.train_cfg.max_epochs == int(match['schedule'][:-1])
        assert cfg.param_scheduler[1].end == cfg.train_cfg.max_epochs
    else:
        assert cfg.train_cfg.max_iters == int(
            float(match['schedule'][:-1]) * 1000)

    optim = cfg.optim_wrapper
    assert optim.optimizer.type == OPTIMIZER_OF[match['optim']]
    is_agvm = match['optim'].startswith('agvm')
    assert (optim.type == 'AGVMOptimWrapper') == is_agvm
    if is_agvm:
        start, window = agvm_window(cfg, accum)
        steps = warmup.end // accum  # warm-up in optimizer steps
        # the authors' convention: AGVM starts after the warm-up; clipping
        # only in a window that ends where AGVM starts
        assert start > steps
        assert window[1] == start
        assert window[0] < steps
        assert [h.type for h in cfg.custom_hooks] == ['AGVMHook']
    if 'backbone' in cfg.model and cfg.model.backbone.type != 'SwinTransformer':
        norm = cfg.model.backbone.norm_cfg
        assert norm.type == 'SyncBN' and cfg.model.backbone.norm_eval is False

    model = build_model(cfg)
    wrapper_cfg = copy.deepcopy(optim)
    if is_agvm and (accum < 2 or accum % 2):
        # This test runs in one process. AGVMOptimWrapper needs two gradient
        # estimates per step: from >= 2 processes (as these configs are run)
        # or, in one process, from an even number >= 2 of accumulated
        # micro-batches; it refuses anything else at build time. So build
        # the one-process equivalent here.
        wrapper_cfg.accumulative_counts = 2 if accum == 1 else 2 * accum
    init_default_scope(cfg.default_scope)
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    assert type(wrapper).__name__ == optim.type
    assert math.isclose(wrapper.optimizer.param_groups[0]['lr'],
                        optim.optimizer.lr)
    if is_agvm:
        wrapper.bind(model)
        assert wrapper.agvm_modules[0] == 'backbone'
        assert wrapper.agvm_rule == ('adam' if 'adamw' in match['optim']
                                     else 'sgd')
    # the warm-up builds on the wrapper as the Runner builds it
    PARAM_SCHEDULERS.build(warmup, default_args=dict(optimizer=wrapper))
    assert math.isclose(wrapper.optimizer.param_groups[0]['lr'],
                        optim.optimizer.lr * warmup.start_factor)


PAPER = {
    # authors' configs (docs/algorithm.md §6): lr, warm-up, AGVM start,
    # clip window
    'faster_rcnn/faster-rcnn_r50_fpn_agvm_64xb4-16e_coco-b256.py':
    (0.16 * 2**0.5, 920, 1020, (820, 1020)),
    'faster_rcnn/faster-rcnn_r50_fpn_agvm_128xb4-16e_coco-b512.py':
    (0.38, 460, 560, (360, 560)),
    'mask_rcnn/mask-rcnn_r50_fpn_agvm_128xb4-16e_coco-b512.py':
    (0.32, 460, 560, (360, 560)),
}


@pytest.mark.parametrize('rel', list(PAPER))
def test_authors_values(rel):
    lr, warmup, start, window = PAPER[rel]
    cfg = load(rel)
    assert math.isclose(cfg.optim_wrapper.optimizer.lr, lr)
    assert cfg.param_scheduler[0].end == warmup
    assert agvm_window(cfg, 1) == (start, window)
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.train_cfg.max_epochs == 16
    assert list(cfg.param_scheduler[1].milestones) == [12, 14]


def test_exp_warmup_matches_mmcv_rule():
    """lr factor start_factor ** (1 - t / T) over the window, then 1."""
    import torch
    from agvm_mm.schedulers import ExpWarmupLR
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.2)
    scheduler = ExpWarmupLR(optimizer, start_factor=0.001, begin=0, end=11)
    for t in range(15):
        expected = 0.2 * 0.001**(1 - min(t, 10) / 10)
        assert math.isclose(optimizer.param_groups[0]['lr'], expected)
        optimizer.step()
        scheduler.step()


def _readme_cells():
    """The AGVM cells of configs/README.md's table: file -> (warm-up, start,
    clip window, interval), optimizer steps."""
    with open(osp.join(CONFIG_DIR, 'README.md')) as f:
        rows = [line.replace('*', '').split('|')[1:-1] for line in f
                if line.startswith('| ') and '.py`' in line]
    return {row[2].strip().strip('`'): (
        int(row[4]), int(row[6]),
        tuple(int(v) for v in row[7].split('-')), int(row[8]))
        for row in rows}


def test_agvm_windows_as_documented():
    """The window AGVMHook places in every AGVM config (the warm-up's end +
    100 and +- 100, or explicit numbers) is the one configs/README.md lists,
    the numbers these configs once gave literally."""
    documented = _readme_cells()
    agvm = [c for c in CONFIGS if NAME.match(osp.basename(c))['optim']
            .startswith('agvm')]
    assert sorted(osp.basename(c) for c in agvm) == sorted(documented)
    for rel in agvm:
        cfg = load(rel)
        accum = cfg.optim_wrapper.get('accumulative_counts', 1)
        start, window = agvm_window(cfg, accum)
        assert (cfg.param_scheduler[0].end // accum, start, window,
                cfg.optim_wrapper.agvm.interval) == \
            documented[osp.basename(rel)], rel


def code_lines(path):
    """Lines of a config that hold code: no comments, no blank lines."""
    with open(path) as f:
        text = f.read()
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in (tokenize.COMMENT, tokenize.NL,
                              tokenize.NEWLINE, tokenize.INDENT,
                              tokenize.DEDENT, tokenize.ENDMARKER):
            lines.add(token.start[0])
    return len(lines)


@pytest.mark.parametrize('rel', CONFIGS)
def test_leaf_is_short(rel):
    """A paper config is its bases (configs/_base_/) plus what differs:
    batch layout, lr, and the few AGVM or PMD-LAMB settings of its cell."""
    assert code_lines(osp.join(CONFIG_DIR, rel)) <= 15, rel
