"""The model zoo people train today (docs/algorithm.md §1, docs/zoo.md):
the partition rules on built DETR-type and MaskFormer-type models, the size
rule, the check passing by default on a handful of stock configs through
tools/zoo_check.py (DINO, Mask2Former mmseg, UPerNet, YOLOX; the whole zoo is
``make zoo``), the window of epoch-based schedules, dropped base hooks and
the form that keeps them, and a CUDA-only op."""
import os
import re

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import MODELS, init_default_scope

import agvm_mm  # noqa: F401  registers the AGVM types
from agvm_mm.partition import (default_modules, module_contents,
                               partition_modules)
from tests.conftest import ROOT, run_tool
from tools.check import (CUDA_ONLY_STATUS, KEEP_FORM, Report, agvm_window,
                         dropped_hooks)
from tools.check.retry import cuda_only_op, inputs_it_needs
from tools.zoo_check import SWITCH, ZOO, Entry, Outcome, judge

ENTRIES = {e.name: e for e in ZOO}
# the check runs of the test suite; the rest of the zoo is `make zoo`
CHECKED = ['dino', 'mask2former-seg', 'upernet', 'yolox-tiny']
# DDQ-DETR is not in the zoo (it is the slowest); its rule comes by its MRO
DDQ = Entry('ddq-detr', 'mmdet::ddq/ddq-detr-4scale_r50_8xb2-12e_coco.py',
            'DETR', ('backbone', 'neck', 'encoder', 'decoder', 'bbox_head'), {
                'encoder': 'encoder + level_embed',
                'decoder': 'decoder + query_map + dn_query_generator',
                'bbox_head': 'bbox_head + memory_trans_fc + memory_trans_norm'
            })
RULED = ['detr', 'dab-detr', 'deformable-detr', 'deformable-detr-2stage',
         'dino', 'maskformer', 'mask2former-panoptic', 'mask2former-seg']


def build(config: str) -> nn.Module:
    """The stock model, without pretrained weights (none are loaded by
    building; init_weights is not called)."""
    cfg = get_config(config)
    init_default_scope(config.split('::')[0])
    return MODELS.build(cfg.model)


def write(tmp_path, name: str, base: str, hooks: str) -> Config:
    """A config on ``base`` with the switch and ``hooks`` as its
    custom_hooks line, loaded from a file as the tools load it."""
    path = tmp_path / f'{name}.py'
    text = SWITCH.format(config=base).splitlines()[:-1] + [hooks]
    path.write_text('\n'.join(text) + '\n')
    return Config.fromfile(str(path))


@pytest.mark.parametrize('name', RULED + ['ddq-detr'])
def test_rules_on_built_models(name):
    entry = DDQ if name == 'ddq-detr' else ENTRIES[name]
    model = build(entry.config)
    contents = module_contents(model)
    assert tuple(contents) == entry.modules
    for module, parts in contents.items():
        assert ' + '.join(parts) == entry.contents.get(module, module)
    assert list(default_modules(model)) == list(entry.modules)
    # every trainable parameter in exactly one module, none a lone tensor
    parts = partition_modules(model)
    assigned = sorted(id(p) for ps in parts.values() for p in ps)
    assert assigned == sorted(
        id(p) for p in model.parameters() if p.requires_grad)
    assert all(len(ps) > 2 for m, ps in parts.items() if m != 'neck')
    # agvm.modules still overrides the rules: the rest by top-level child
    tops = [n.split('.')[0] for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith('backbone.')]
    assert list(partition_modules(model, ['backbone'])) == ['backbone'] + [
        n for i, n in enumerate(tops) if n not in tops[:i]]


class Toy(nn.Module):
    """No rule: the generic top-level split, then the size rule."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))  # direct: after children
        self.stem = nn.Linear(2, 2)  # small, first: joins the next
        self.backbone = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
        self.head = nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 8))
        self.tiny = nn.Linear(3, 3)  # small: joins the module before it
        self.frozen = nn.Linear(2, 2).requires_grad_(False)


def test_size_rule_on_a_model_without_rule():
    model = Toy()
    assert default_modules(model) == {'backbone': ['backbone', 'stem'],
                                      'head': ['head', 'tiny', 'scale']}
    assert module_contents(model)['head'] == ['head', 'tiny', 'scale']
    # each lone tensor its own module only when agvm.modules says so
    parts = partition_modules(model, ['backbone', 'head', 'scale'])
    assert list(parts) == ['backbone', 'head', 'scale', 'stem', 'tiny']


@pytest.fixture(scope='module')
def zoo(tmp_path_factory):
    """tools/zoo_check.py on CHECKED, as `make zoo` runs it (2 at a time),
    1 optimizer step each; the table and each check's report."""
    keep = tmp_path_factory.mktemp('zoo')
    out = run_tool([os.path.join(ROOT, 'tools', 'zoo_check.py'), '--only',
                    *CHECKED, '--steps', '1', '--keep', str(keep)],
                   cwd=str(keep), timeout=600)
    reports = {n: (keep / f'{n}.txt').read_text() for n in CHECKED}
    return out, reports


def test_zoo_configs_pass_by_default(zoo):
    out, reports = zoo
    assert f'{len(CHECKED)} of {len(CHECKED)} configs passed' in out, out
    rows = {line.split()[0]: line for line in out.splitlines()
            if line.split() and line.split()[0] in CHECKED}
    # the tool chose inputs the model can run, and said so
    assert 'OK (retried at 256 px x 1)' in rows['dino']
    assert 'OK (retried at 64 px x 2)' in rows['upernet']
    assert rows['mask2former-seg'].split()[-2:-1] == ['OK']
    assert 'Retried with --img-size 256 --batch-size 1: 900 queries' in \
        reports['dino']
    # the rules' modules, with what they put in each
    assert ('decoder + query_embedding + dn_query_generator'
            in reports['dino'])
    assert re.search(r'^  decode_head +0\.\d+ M  \(8 tensors\)  = '
                     r'decode_head.cls_embed \+ decode_head.mask_embed$',
                     reports['mask2former-seg'], re.M)
    # YOLOX keeps its base hooks: no problem, its data switch left out
    assert 'Result: OK' in reports['yolox-tiny']
    assert 'Left out of the check: YOLOXModeSwitchHook' in \
        reports['yolox-tiny']
    # DINO's only scheduler spans the training: no warm-up
    assert 'start     optimizer step 0 = runner iteration 0 (AGVMHook: no '\
        'warm-up scheduler' in reports['dino']


@pytest.mark.parametrize('name', ['dino', 'deformable-detr'])
def test_window_without_warmup(tmp_path, name):
    """An epoch-based MultiStepLR from 0 to the end of training is no
    warm-up, with or without the epoch length."""
    cfg = write(tmp_path, name, ENTRIES[name].config,
                "custom_hooks = [dict(type='AGVMHook')]")
    for per_epoch in (None, 500):
        window, problems = agvm_window(cfg, per_epoch)
        assert window.start == 0 and not problems
        assert 'no warm-up scheduler' in window.start_source
    assert window.total_steps == cfg.train_cfg.max_epochs * 500


def test_window_of_an_epoch_based_warmup(tmp_path):
    """YOLOX warms up for 5 epochs (QuadraticWarmupLR, converted to
    iterations at run time): AGVM starts there."""
    cfg = write(tmp_path, 'yolox', ENTRIES['yolox-tiny'].config, KEEP_FORM)
    window, _ = agvm_window(cfg)
    assert window.start is None
    assert 'QuadraticWarmupLR ends at epoch 5: give --iters-per-epoch' in \
        window.start_source
    window, problems = agvm_window(cfg, iters_per_epoch=100)
    assert (window.start, window.total_steps) == (500, 300 * 100)
    assert not problems


def test_dropped_base_hooks(tmp_path):
    rtmdet = ENTRIES['rtmdet-tiny'].config
    cfg = write(tmp_path, 'dropped', rtmdet,
                "custom_hooks = [dict(type='AGVMHook')]")
    problems = dropped_hooks(cfg)
    assert len(problems) == 1
    assert problems[0].startswith('custom_hooks: the config drops EMAHook, '
                                  f'PipelineSwitchHook of its base {rtmdet}')
    assert KEEP_FORM in problems[0]
    # the documented form keeps them, on a base with hooks and without
    cfg = write(tmp_path, 'kept', rtmdet, KEEP_FORM)
    assert [h.type for h in cfg.custom_hooks] == [
        'EMAHook', 'PipelineSwitchHook', 'AGVMHook']
    assert not dropped_hooks(cfg)
    cfg = write(tmp_path, 'yolox', ENTRIES['yolox-tiny'].config, KEEP_FORM)
    assert [h.type for h in cfg.custom_hooks] == [
        'YOLOXModeSwitchHook', 'SyncNormHook', 'EMAHook', 'AGVMHook']
    cfg = write(tmp_path, 'faster', ENTRIES['faster-rcnn'].config, KEEP_FORM)
    assert [h.type for h in cfg.custom_hooks] == ['AGVMHook']
    assert not dropped_hooks(cfg)


def test_cuda_only_and_real_problems():
    from mmcv.ops import CARAFEPack
    with pytest.raises(RuntimeError) as error:  # no CPU kernel in mmcv
        CARAFEPack(8, 2)(torch.zeros(1, 8, 4, 4))
    assert cuda_only_op(str(error.value)) == 'carafe'
    assert cuda_only_op('Expected more than 1 value per channel') is None
    report = Report('x', cuda_only='CUDA only: carafe')
    assert report.exit_status == CUDA_ONLY_STATUS
    assert str(report).endswith('(CUDA only: carafe)')
    report.problems.append('a real one')
    assert report.exit_status == 1  # a real problem stays a problem
    # only inputs too small for the model are retried
    cfg = Config(dict(model=dict(num_queries=900)))
    bn = ValueError('Expected more than 1 value per channel when training')
    assert inputs_it_needs(cfg, bn, 64, 1)[:2] == (64, 2)
    assert inputs_it_needs(cfg, bn, 64, 2) is None
    topk = RuntimeError('selected index k out of range')
    assert inputs_it_needs(cfg, topk, 64, 1)[:2] == (256, 1)
    assert inputs_it_needs(cfg, KeyError('model.foo'), 64, 1) is None
    # the zoo counts a differing partition as a failure
    outcome = judge(Outcome(ENTRIES['detr'], 0, 1.0, (
        "Modules (anchor 'backbone'), trainable parameters\n"
        '  backbone   1.000 M  (4 tensors)\n'
        '  decoder    1.000 M  (5 tensors)\nResult: OK\n')))
    assert outcome.failed and outcome.result.startswith('MODULES DIFFER')
