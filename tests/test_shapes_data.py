"""Tests for the synthetic shapes dataset: determinism, format validity, the
stock mmdet / mmseg dataset classes on the base configs, and the stock metrics
fed with ground truth as predictions."""
import os
import os.path as osp
import runpy
import sys
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from agvm_mm.datasets import (SHAPES_CLASSES, SHAPES_DET_METAINFO,
                              SHAPES_PANOPTIC_METAINFO, SHAPES_SEG_METAINFO,
                              SHAPES_THING_CLASSES, ensure_panopticapi,
                              generate_shapes)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG_DIR = osp.join(REPO, 'configs', '_base_', 'datasets')
NUM_TRAIN, NUM_VAL = 20, 10
# pycocotools 2.0.x decode() under numpy 2
pytestmark = pytest.mark.filterwarnings(
    'ignore:__array__ implementation:DeprecationWarning')


def _read_tree(root: str) -> Dict[str, bytes]:
    """Relative path -> bytes of every file under ``root``."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope='module')
def root(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp('shapes') / 'shapes')
    generate_shapes(out, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=0,
                    workers=2)
    return out


# --------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------
def test_deterministic_and_worker_independent(root, tmp_path):
    other = str(tmp_path / 'serial')
    res = generate_shapes(other, num_train=NUM_TRAIN, num_val=NUM_VAL,
                          seed=0, workers=1)
    assert not res['skipped']
    ref, new = _read_tree(root), _read_tree(other)
    assert sorted(ref) == sorted(new)
    # meta.json, lock file, 2 + 2 jsons, jpg + panoptic png + label png
    assert len(ref) == 2 + 2 + 2 + 3 * (NUM_TRAIN + NUM_VAL)
    for key in ref:
        assert ref[key] == new[key], key

    seeded = str(tmp_path / 'seed1')
    generate_shapes(seeded, num_train=2, num_val=1, seed=1, workers=1)
    for name in ('train2017/000000.jpg', 'val2017/000000.jpg'):
        with open(osp.join(seeded, name), 'rb') as f:
            assert f.read() != ref[name]


def _stamps(root: str) -> Dict[str, int]:
    """Relative path -> st_mtime_ns of every file under ``root``."""
    return {osp.relpath(osp.join(d, n), root): os.stat(osp.join(d, n))
            .st_mtime_ns for d, _, files in os.walk(root) for n in files}


def test_skip_when_up_to_date(root, tmp_path, monkeypatch):
    """Up to date: it returns at once, without the lock or the generator
    (either would fail here) and without touching any file; checked by
    what it does, not by how long it took, which depends on the load."""
    from agvm_mm.datasets import generate
    stamps = _stamps(root)
    with monkeypatch.context() as patch:
        for name in ('_generate', '_file_lock'):
            patch.setattr(generate, name,
                          lambda *args, name=name: pytest.fail(name))
        res = generate_shapes(root, num_train=NUM_TRAIN, num_val=NUM_VAL,
                              seed=0)
    assert res['skipped']
    assert res['num_images'] == dict(train=NUM_TRAIN, val=NUM_VAL)
    assert _stamps(root) == stamps
    # other parameters regenerate, and leave no stale files behind
    out = str(tmp_path / 'regen')
    generate_shapes(out, num_train=4, num_val=2, workers=1)
    res = generate_shapes(out, num_train=3, num_val=2, workers=1,
                          tasks=('semantic', ))
    assert not res['skipped']
    assert sorted(os.listdir(osp.join(out, 'train2017'))) == [
        '000000.jpg', '000001.jpg', '000002.jpg']
    assert sorted(os.listdir(osp.join(out, 'annotations'))) == [
        'semantic_train2017', 'semantic_val2017']
    with pytest.raises(ValueError):
        generate_shapes(out, tasks=('boxes', ))


def test_cli(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / 'cli')
    monkeypatch.setattr(sys, 'argv', [
        'generate_shapes.py', '--out', out, '--num-train', '3', '--num-val',
        '1', '--workers', '1', '--tasks', 'instance'
    ])
    runpy.run_path(osp.join(REPO, 'tools', 'generate_shapes.py'),
                   run_name='__main__')
    text = capsys.readouterr().out
    assert 'wrote' in text and 'time:' in text
    assert osp.isfile(osp.join(out, 'annotations',
                               'instances_train2017.json'))


# --------------------------------------------------------------------------
# format validity
# --------------------------------------------------------------------------
def _rgb2id(png: np.ndarray) -> np.ndarray:
    png = png.astype(np.int64)
    return png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_instances_valid(root, split):
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO
    coco = COCO(osp.join(root, 'annotations', f'instances_{split}2017.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())
            ] == list(SHAPES_THING_CLASSES)
    assert len(coco.getImgIds()) == (NUM_TRAIN if split == 'train' else
                                     NUM_VAL)
    assert len(coco.getAnnIds()) > 2 * len(coco.getImgIds())
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        img = Image.open(osp.join(root, f'{split}2017', info['file_name']))
        assert img.size == (info['width'], info['height'])
        union = np.zeros((info['height'], info['width']), np.int32)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            m = coco.annToMask(ann).astype(bool)
            assert ann['iscrowd'] == 0 and ann['area'] == m.sum() > 0
            ys, xs = np.nonzero(m)
            assert ann['bbox'] == [xs.min(), ys.min(), np.ptp(xs) + 1,
                                   np.ptp(ys) + 1]
            assert mask_util.area(ann['segmentation']) == ann['area']
            union += m
        assert union.max() <= 1  # visible masks never overlap


@pytest.mark.parametrize('split', ['train', 'val'])
def test_panoptic_and_semantic_valid(root, split):
    import json
    ann_dir = osp.join(root, 'annotations')
    with open(osp.join(ann_dir, f'panoptic_{split}2017.json')) as f:
        pan_json = json.load(f)
    cats = {c['id']: c for c in pan_json['categories']}
    assert [c['name'] for c in pan_json['categories']] == list(SHAPES_CLASSES)
    assert [c['isthing'] for c in pan_json['categories']
            ] == [1] * 6 + [0] * 3
    cat_to_label = {cid: i for i, cid in enumerate(cats)}
    with open(osp.join(ann_dir, f'instances_{split}2017.json')) as f:
        num_inst = len(json.load(f)['annotations'])
    num_things = 0
    for ann in pan_json['annotations']:
        png = np.asarray(
            Image.open(osp.join(ann_dir, f'panoptic_{split}2017',
                                ann['file_name'])).convert('RGB'))
        ids = _rgb2id(png)
        segs = {s['id']: s for s in ann['segments_info']}
        present, counts = np.unique(ids, return_counts=True)
        assert set(present.tolist()) == set(segs)  # no VOID, no orphan ids
        sem = np.asarray(
            Image.open(osp.join(ann_dir, f'semantic_{split}2017',
                                ann['file_name'])))
        assert sem.dtype == np.uint8 and sem.max() < len(SHAPES_CLASSES)
        for seg_id, cnt in zip(present.tolist(), counts.tolist()):
            seg = segs[seg_id]
            assert seg['area'] == cnt and seg['iscrowd'] == 0
            assert cats[seg['category_id']]['isthing'] in (0, 1)
            num_things += cats[seg['category_id']]['isthing']
            # the semantic label equals the panoptic category everywhere
            labels = np.unique(sem[ids == seg_id])
            assert labels.tolist() == [cat_to_label[seg['category_id']]]
    assert num_things == num_inst


# --------------------------------------------------------------------------
# stock dataset classes, pipelines and metrics
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def registries():
    """Register mmdet and mmseg modules without fixing a default scope."""
    pytest.importorskip('mmdet')
    pytest.importorskip('mmseg')
    from mmdet.utils import register_all_modules as register_mmdet
    from mmseg.utils import register_all_modules as register_mmseg
    register_mmdet(init_default_scope=False)
    register_mmseg(init_default_scope=False)
    ensure_panopticapi()
    from mmengine.registry import DATASETS, METRICS
    return DATASETS, METRICS


def _load_cfg(name: str, root: str):
    """Base config with every ``data_root``-dependent path moved to root."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root
    for key in ('val_evaluator', 'test_evaluator'):
        for arg in ('ann_file', 'seg_prefix'):
            if arg in cfg[key]:
                cfg[key][arg] = cfg[key][arg].replace(cfg.data_root,
                                                      root + '/')
    return cfg


@pytest.mark.parametrize('name, metainfo', [
    ('shapes_detection.py', SHAPES_DET_METAINFO),
    ('shapes_instance.py', SHAPES_DET_METAINFO),
    ('shapes_panoptic.py', SHAPES_PANOPTIC_METAINFO),
    ('shapes_semantic.py', SHAPES_SEG_METAINFO),
])
def test_config_metainfo_matches_constants(name, metainfo):
    pytest.importorskip('mmengine')
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    assert cfg.data_root == 'data/shapes/'
    for key in ('train_dataloader', 'val_dataloader'):
        meta = cfg[key].dataset.metainfo
        assert set(meta) == set(metainfo)
        for k, v in metainfo.items():
            assert [tuple(x) if isinstance(x, list) else x
                    for x in meta[k]] == list(v), (name, k)
        assert cfg[key].batch_size == 2
        assert cfg[key].persistent_workers is False


@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmseg'])
def test_configs_build_under_any_default_scope(root, registries, scope):
    from mmengine.registry import DefaultScope
    datasets, metrics = registries
    with DefaultScope.overwrite_default_scope(scope):
        for name in ('shapes_detection.py', 'shapes_instance.py',
                     'shapes_panoptic.py', 'shapes_semantic.py'):
            cfg = _load_cfg(name, root)
            for key in ('train_dataloader', 'val_dataloader'):
                sample = datasets.build(cfg[key].dataset)[0]
                assert tuple(sample['inputs'].shape) == (3, 128, 128)
            metrics.build(cfg.val_evaluator)


def _evaluate(metric_cfg, dataset, to_pred) -> dict:
    """Run a stock metric over ``dataset`` with predictions made from the
    pipeline's ground truth by ``to_pred(data_sample)``."""
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(metric_cfg)
    evaluator.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        to_pred(sample)
        evaluator.process(data_samples=[sample])
    return evaluator.evaluate(len(dataset))


@pytest.mark.parametrize('name', ['shapes_detection.py', 'shapes_instance.py'])
def test_coco_dataset_and_metric(root, registries, name):
    import torch
    from mmengine.structures import InstanceData
    datasets, _ = registries
    cfg = _load_cfg(name, root)
    train = datasets.build(cfg.train_dataloader.dataset)
    assert 0 < len(train) <= NUM_TRAIN  # images without objects are dropped
    sample = train[0]
    assert tuple(sample['inputs'].shape) == (3, 128, 128)
    assert len(sample['data_samples'].gt_instances) > 0

    val = datasets.build(cfg.val_dataloader.dataset)
    with_mask = name == 'shapes_instance.py'

    def to_pred(ds):
        gt = ds.gt_instances
        pred = InstanceData(bboxes=gt.bboxes.tensor, labels=gt.labels,
                            scores=torch.ones(len(gt)))
        if with_mask:
            pred.masks = torch.from_numpy(gt.masks.masks.astype(bool))
        ds.pred_instances = pred

    res = _evaluate(cfg.val_evaluator, val, to_pred)
    assert res['coco/bbox_mAP'] > 0.99
    if with_mask:
        assert res['coco/segm_mAP'] > 0.99


def test_coco_panoptic_dataset_and_metric(root, registries):
    import torch
    from mmengine.structures import PixelData
    datasets, _ = registries
    cfg = _load_cfg('shapes_panoptic.py', root)
    train = datasets.build(cfg.train_dataloader.dataset)
    sample = train[0]['data_samples']
    assert sample.gt_sem_seg.sem_seg.max() < len(SHAPES_CLASSES)
    assert len(sample.gt_instances.masks) == len(sample.gt_instances)

    val = datasets.build(cfg.val_dataloader.dataset)
    num_classes = len(SHAPES_CLASSES)

    def to_pred(ds):
        sem = ds.gt_sem_seg.sem_seg[0].long()
        pan = torch.where(sem == 255, num_classes, sem)  # VOID (none here)
        for k, (mask, label) in enumerate(
                zip(ds.gt_instances.masks.masks, ds.gt_instances.labels)):
            pan[torch.from_numpy(mask.astype(bool))] = (k + 1) * 1000 + label
        ds.pred_panoptic_seg = PixelData(sem_seg=pan[None])

    res = _evaluate(cfg.val_evaluator, val, to_pred)
    assert res['coco_panoptic/PQ'] == pytest.approx(100.0)
    assert res['coco_panoptic/PQ_th'] == pytest.approx(100.0)
    assert res['coco_panoptic/PQ_st'] == pytest.approx(100.0)


def test_seg_dataset_and_iou_metric(root, registries):
    from mmengine.structures import PixelData
    datasets, _ = registries
    cfg = _load_cfg('shapes_semantic.py', root)
    train = datasets.build(cfg.train_dataloader.dataset)
    assert len(train) == NUM_TRAIN
    sample = train[0]
    assert tuple(sample['inputs'].shape) == (3, 128, 128)
    assert sample['data_samples'].gt_sem_seg.data.max() < len(SHAPES_CLASSES)

    val = datasets.build(cfg.val_dataloader.dataset)

    def to_pred(ds):
        ds.pred_sem_seg = PixelData(data=ds.gt_sem_seg.data.clone())

    res = _evaluate(cfg.val_evaluator, val, to_pred)
    assert res['mIoU'] == pytest.approx(100.0)


def test_panopticapi_standin_pq_math():
    ensure_panopticapi()
    from panopticapi.evaluation import PQStat
    from panopticapi.utils import id2rgb, rgb2id
    ids = np.array([[0, 1], [70000, 16777215]])
    assert (rgb2id(id2rgb(ids)) == ids).all()
    stat = PQStat()
    stat[1].tp, stat[1].iou, stat[1].fp = 2, 1.5, 1  # sq .75, rq .8
    other = PQStat()
    other[2].fn = 1
    stat += other
    cats = {1: dict(isthing=1), 2: dict(isthing=0), 3: dict(isthing=0)}
    avg, per_class = stat.pq_average(cats, isthing=True)
    assert avg['n'] == 1 and avg['pq'] == pytest.approx(0.6)
    assert per_class[1]['sq'] == pytest.approx(0.75)
    avg, _ = stat.pq_average(cats, isthing=None)
    assert avg['n'] == 2 and avg['pq'] == pytest.approx(0.3)


def _generate_in_child(args):
    out, queue = args
    queue.put(generate_shapes(out, num_train=NUM_TRAIN, num_val=NUM_VAL,
                              seed=0, workers=1)['skipped'])


def test_concurrent_generation_is_serialized(root, tmp_path):
    import multiprocessing as mp
    ctx = mp.get_context('fork')
    out, queue = str(tmp_path / 'race'), ctx.Queue()
    procs = [ctx.Process(target=_generate_in_child, args=((out, queue), ))
             for _ in range(2)]
    for p in procs:
        p.start()
    # no deadline that a loaded machine could miss: wait until each child
    # has ended (pytest's own timeout guards a hang); an ended child has
    # flushed its one small result into the queue, so it is there to read
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert sorted(queue.get(timeout=60) for _ in procs) == [False, True]
    assert _read_tree(out) == _read_tree(root)
