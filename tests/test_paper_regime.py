"""The paper-regime pieces: tools/pretrain_backbone.py (a few epochs on a
tiny crop set), the pretrained RetinaNet shapes config (loads the
checkpoint, keeps the frozen stages, AGVMHook places the window relative to
the warm-up), AGVMHook's start_offset / clip_window and their errors,
reproduce's rescaling of them, and the benchmark's plan and verdict rule."""
import dataclasses
import json
import os
import os.path as osp

import pytest
import torch

from agvm_mm.hooks import AGVMHook
from tests.conftest import ROOT, run_tool
from tools import harness as R
from tools import paper_regime as B

CONFIG = osp.join(ROOT, 'configs/shapes/retinanet_tiny_shapes_paper_agvm.py')
TINY = ['--num-train', '24', '--num-val', '8', '--epochs', '2',
        '--batch-size', '16', '--threads', '1']


@pytest.fixture(scope='module')
def pretrained(shapes_cwd):
    """A checkpoint of tools/pretrain_backbone.py (tiny settings) under the
    shapes working directory, with the tool's first output."""
    out = osp.join(shapes_cwd, 'data', 'pretrained', 'tiny.pth')
    log = run_tool([osp.join(ROOT, 'tools', 'pretrain_backbone.py'), '--out',
                    out, '--data', 'data/shapes_pretrain_tiny', '--work-dir',
                    'work_dirs/pretrain_tiny'] + TINY, shapes_cwd)
    return out, log


def test_pretrain_tool_writes_a_resnet_state_dict(pretrained, shapes_cwd):
    path, log = pretrained
    assert 'held-out accuracy' in log
    state = torch.load(path, map_location='cpu', weights_only=True)
    keys = state['state_dict'].keys()
    assert 'conv1.weight' in keys and 'layer1.0.conv1.weight' in keys
    assert not any(k.startswith(('backbone.', 'head.')) for k in keys)
    assert state['state_dict']['layer4.1.conv2.weight'].shape[0] == 128
    # its own data: another seed and directory than the detection data
    with open(osp.join(shapes_cwd, 'data', 'shapes_pretrain_tiny',
                       'meta.json')) as f:
        assert json.load(f)['params']['seed'] == 1
    with open(osp.splitext(path)[0] + '.json') as f:
        record = json.load(f)
    assert 0.0 <= record['accuracy'] <= 100.0
    # cached: the same command does nothing
    again = run_tool([osp.join(ROOT, 'tools', 'pretrain_backbone.py'),
                      '--out', path, '--data', 'data/shapes_pretrain_tiny',
                      '--work-dir', 'work_dirs/pretrain_tiny'] + TINY,
                     shapes_cwd)
    assert 'exists' in again and 'Epoch(train)' not in again


def test_paper_config_trains_from_the_checkpoint(pretrained, shapes_cwd,
                                                 tmp_path):
    path, _ = pretrained
    work = tmp_path / 'wd'
    out = run_tool([
        osp.join(ROOT, 'tools', 'train.py'), CONFIG, '--work-dir', str(work),
        '--cfg-options', f'model.backbone.init_cfg.checkpoint={path}',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=12',
        'train_cfg.val_interval=12', 'param_scheduler.0.end=4',
        'param_scheduler.1.milestones=[10,11]',
        'default_hooks.logger.interval=2', 'model.test_cfg.score_thr=0.0',
        'optim_wrapper.agvm.interval=1', 'custom_hooks.0.start_offset=1',
        'custom_hooks.0.clip_window=(1,2)'], shapes_cwd)
    assert f'load model from: {path}' in out
    # warm-up ends at iteration 4 = optimizer step 2 (2 micro-batches)
    assert ('AGVM starts at optimizer step 3: the warm-up ends at runner '
            'iteration 4 = optimizer step 2 + start_offset 1') in out
    assert 'only on optimizer steps [1, 4)' in out
    trained = torch.load(work / 'iter_12.pth', map_location='cpu',
                         weights_only=True)['state_dict']
    start = torch.load(path, map_location='cpu',
                       weights_only=True)['state_dict']
    # stem and stage 1 frozen (frozen_stages=1), BN statistics kept
    # (norm_eval=True); stage 2 trains
    for key in ('conv1.weight', 'bn1.weight', 'layer1.0.conv1.weight',
                'layer2.0.bn1.running_mean'):
        assert torch.equal(trained['backbone.' + key], start[key]), key
    assert not torch.equal(trained['backbone.layer2.0.conv1.weight'],
                           start['layer2.0.conv1.weight'])


class _Sched:
    def __init__(self, begin, end):
        self.begin, self.end, self.by_epoch = begin, end, False


class _Runner:
    """What AGVMHook.before_train reads of a Runner."""

    def __init__(self, wrapper, schedulers, max_iters=100):
        self.optim_wrapper = wrapper
        self.param_schedulers = schedulers
        self.max_iters = max_iters


def _wrapper(clip_grad=None, counts=2, **agvm):
    from agvm_mm.optim import AGVMOptimWrapper
    model = torch.nn.Linear(2, 2)
    return AGVMOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        accumulative_counts=counts, clip_grad=clip_grad, agvm=agvm)


def test_hook_places_start_and_clip_window_after_the_warmup():
    wrapper = _wrapper(clip_grad=dict(max_norm=1.0))
    AGVMHook(start_offset=5, clip_window=(3, 4)).before_train(
        _Runner(wrapper, [_Sched(0, 20), _Sched(0, 100)]))
    # warm-up: 20 runner iterations = 10 optimizer steps
    assert wrapper.agvm_cfg.start_iter == 15
    assert wrapper.agvm_cfg.clip_grad_window == (7, 14)
    # explicit settings win
    wrapper = _wrapper(clip_grad=dict(max_norm=1.0), start_iter=2,
                       clip_grad_window=(0, 1))
    AGVMHook(start_offset=5, clip_window=(3, 4)).before_train(
        _Runner(wrapper, [_Sched(0, 20)]))
    assert wrapper.agvm_cfg.start_iter == 2
    assert wrapper.agvm_cfg.clip_grad_window == (0, 1)


def test_hook_without_warmup_says_where_the_start_came_from(tmp_path):
    from mmengine.logging import MMLogger
    log = tmp_path / 'hook.log'
    MMLogger.get_instance('test_paper_regime', log_file=str(log))
    wrapper = _wrapper()
    AGVMHook(start_offset=4).before_train(_Runner(wrapper, []))
    assert wrapper.agvm_cfg.start_iter == 4
    text = log.read_text()
    assert 'AGVM starts at optimizer step 4' in text
    assert 'no warm-up scheduler was found' in text
    assert 'step 0 + start_offset 4' in text


@pytest.mark.parametrize('kwargs,schedulers,message', [
    (dict(clip_window=(1, 1)), [], 'no warm-up scheduler was found'),
    (dict(clip_window=(1, 1)), [_Sched(0, 20)], 'optim_wrapper.clip_grad'),
])
def test_hook_clip_window_errors(kwargs, schedulers, message):
    with pytest.raises(ValueError, match=message):
        AGVMHook(**kwargs).before_train(_Runner(_wrapper(), schedulers))


@pytest.mark.parametrize('kwargs', [dict(start_offset=-1),
                                    dict(start_offset=1.5),
                                    dict(clip_window=(1, )),
                                    dict(clip_window=(1, -2))])
def test_hook_rejects_bad_offsets(kwargs):
    with pytest.raises(ValueError, match='AGVMHook'):
        AGVMHook(**kwargs)


def test_reproduce_rescales_the_hook_offsets(shapes_cwd, tmp_path):
    """The recipe's 3250 steps become 13 epochs of the 16 images at batch
    16 (13 steps): offsets keep their fraction of the run."""
    [cell] = R.plan_local(['retinanet_paper'], [16], ['agvm'],
                          R.LocalOptions(work_root=str(tmp_path), epochs=13,
                                         cwd=str(shapes_cwd)))
    assert cell.reason is None, cell.reason
    assert cell.info['steps'] == 13
    assert ("{'type': 'AGVMHook', 'start_offset': 0, 'clip_window': (0, 0)}"
            in cell.config_text)
    [cell] = R.plan_local(['retinanet_paper'], [16], ['agvm'],
                          R.LocalOptions(work_root=str(tmp_path),
                                         epochs=13 * 250,
                                         cwd=str(shapes_cwd)))
    assert cell.info['steps'] == 3250  # the recipe's own length
    assert "'start_offset': 88, 'clip_window': (88, 88)" in cell.config_text


def _record(run, mAP):
    return B.Record(B.FAMILY, 'pretrained', run.batch, B.ARMS[run.arm],
                    run.lr, run.seed, run.rule, 400, mAP, 0.5, False, 'done')


def _finish(done, mAP_of):
    """Fill in every planned run that mAP_of scores, until nothing new."""
    while True:
        new = [r for r in B.plan(done) if r.name not in done and
               mAP_of(r) is not None]
        if not new:
            return done
        for run in new:
            done[run.name] = _record(run, mAP_of(run))


def test_plan_grows_with_the_sweeps():
    first = [r.name for r in B.plan({})]
    assert first[0] == 'sgd-b8-lr0.01-s0'
    assert len(first) == 2 + 2 * 2 * 3 + 6  # no reruns or control yet
    lrs = sorted(r.lr for r in B.plan({}) if r.arm == 'sgd' and
                 r.batch == 128)
    # brackets the square-root rule and the authors' 0.65x linear
    assert lrs == pytest.approx([0.02 * 8 ** 0.5, 0.65 * 0.16, 0.16])
    done = _finish({}, lambda r: 10.0 if r.arm != 'agvm' else 12.0 + r.lr)
    names = set(done)
    # the best at an end of the sweep extends it twice: AGVM's best is the
    # highest lr (0.16 -> 0.32 -> 0.64), SGD's ties pick the lowest
    # (0.0566 -> 0.0283 -> 0.0141); the best lr again with seed 1
    assert {'agvm-b128-lr0.32-s0', 'agvm-b128-lr0.64-s0',
            'agvm-b128-lr0.64-s1'} <= names
    assert 'agvm-b128-lr1.28-s0' not in names
    assert {'sgd-b128-lr0.02828-s0', 'sgd-b128-lr0.01414-s1'} <= names


def test_baseline_sweeps_extend_once_towards_their_best():
    """LAMB best at its higher lr gets one at 3x; LARS diverged at both
    (no mAP) gets one at a third of the lower; then no more."""
    done = _finish({}, lambda r: None if r.arm == 'lars'
                   else 10.0 + 100 * r.lr)
    assert {'lamb-b128-lr0.027-s0', 'pmd-lamb-b128-lr0.027-s0'} <= set(done)
    assert 'lamb-b128-lr0.081-s0' not in done
    for run in B.plan(done):
        if run.arm == 'lars':
            assert run.lr in (0.5, 1.5)
            done[run.name] = _record(run, None)  # diverged
    lars = [r for r in B.plan(done) if r.arm == 'lars']
    assert [r.lr for r in lars] == pytest.approx([0.5, 1.5, 0.5 / 3])
    done[lars[2].name] = _record(lars[2], 4.0)
    assert len([r for r in B.plan(done) if r.arm == 'lars']) == 3


@pytest.mark.parametrize('ref,sgd,agvm,word', [
    (30.0, (20.0, 20.0), (25.0, 25.0), 'reproduces'),
    (30.0, (20.0, 20.0), (25.0, 20.5), 'inconclusive'),  # one seed < 1.0
    (30.0, (20.0, 20.0), (20.2, 20.2), 'does not reproduce'),
    (30.0, (20.0, 20.0), (23.0, 23.0), 'inconclusive'),  # 30 % recovered
    (21.0, (20.0, 20.0), (25.0, 25.0), 'inconclusive'),  # no gap
])
def test_verdict_rule(ref, sgd, agvm, word):
    def score(run):
        if run.batch == B.REF_BATCH:
            return ref
        if run.batch != 128 or run.arm not in ('sgd', 'agvm'):
            return 0.0
        values = sgd if run.arm == 'sgd' else agvm
        top = run.rule == 'authors'
        return values[run.seed] if top else values[0] - 5
    done = _finish({}, score)
    assert B.verdict(done)[0] == word


def test_report_files(tmp_path):
    done = _finish({}, lambda r: 10.0)
    B.write_report(done, str(tmp_path))
    records = json.loads((tmp_path / 'paper_regime.json').read_text())
    assert {'family', 'backbone', 'batch', 'optimizer', 'lr', 'seed',
            'steps', 'bbox_mAP', 'final_train_loss', 'diverged'} <= set(
                records[0])
    text = (tmp_path / 'paper_regime.md').read_text()
    assert 'Verdict: ' in text and '| SGD + AGVM | 128 | sqrt |' in text
    assert os.path.getsize(tmp_path / 'paper_regime.png') > 1000


def test_report_gives_the_rules_figures_at_the_other_batch(tmp_path):
    """The rule's figures at batch 64 too (the verdict stays at 128); a
    diverged seed counts as 0 mAP, and the report says which."""
    done = _finish({}, lambda r: 30.0 if r.batch == B.REF_BATCH else
                   25.0 if r.arm == 'agvm' and r.rule == 'authors' else 20.0)
    [rerun] = [n for n in done if n.startswith('agvm-b64-') and
               n.endswith('-s1')]
    done[rerun] = dataclasses.replace(done[rerun], bbox_mAP=None,
                                      diverged=True, status='diverged')
    assert B.verdict(done)[0] == 'reproduces'  # at 128: 5 of 10 recovered
    figures, facts = B.compare(done, 64)
    assert figures['gain'] == pytest.approx(12.5 - 20.0)
    B.write_report(done, str(tmp_path))
    text = (tmp_path / 'paper_regime.md').read_text()
    assert "The rule's figures at batch 64" in text
    assert 'best AGVM b64: 12.50 (lr 0.052, seeds [25.0, 0.0])' in text
    assert 'diverged, counted as 0 mAP: SGD + AGVM seed 1' in text


def test_records_name_the_code_and_the_checkpoint(tmp_path):
    """What the driver writes beside a run's work root when it starts it
    (the commit, the checkpoint's id) reaches its record and the table."""
    run = B.plan({})[0]  # the reference, a run of every plan
    root = run.work_root(str(tmp_path))
    os.makedirs(root)
    cell = dict(status='done', values={'coco/bbox_mAP': 0.104, 'loss': 0.7},
                info=dict(steps=6500), work_dir=osp.join('retinanet_paper',
                                                         'agvm-b8'))
    with open(osp.join(root, 'results.json'), 'w') as f:
        json.dump(dict(cells=[cell]), f)
    for kind, text in (('commit', 'abc123'),
                       ('backbone', '01fa50385607345e 93.75')):
        with open(f'{root}.{kind}', 'w') as f:
            f.write(text + '\n')
    record = B.read_record(run, str(tmp_path))
    assert (record.bbox_mAP, record.commit, record.pretrained_ckpt) == (
        10.4, 'abc123', '01fa50385607345e 93.75')
    B.write_report({run.name: record}, str(tmp_path / 'out'))
    assert 'ckpt 01fa5038 (93.75 %)' in (tmp_path / 'out' /
                                         'paper_regime.md').read_text()


def test_static_control_record_names_its_multipliers(tmp_path):
    run = B.Run('static', 128, 0.01414, 0, 'sqrt/4', (
        'optim_wrapper.constructor=AGVMOptimWrapperConstructor',
        'optim_wrapper.agvm.lr_mult.bbox_head=1.103',
        'optim_wrapper.agvm.lr_mult.neck=1.227'))
    root = run.work_root(str(tmp_path))
    os.makedirs(root)
    cell = dict(status='done', values={'coco/bbox_mAP': 0.062}, info={},
                work_dir=osp.join('retinanet_paper', 'agvm-b128'))
    with open(osp.join(root, 'results.json'), 'w') as f:
        json.dump(dict(cells=[cell]), f)
    assert B.read_record(run, str(tmp_path)).lr_mult == {
        'bbox_head': 1.103, 'neck': 1.227}
