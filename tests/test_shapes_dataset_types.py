"""The shapes dataset types make stock mmdet / mmseg configs train and
evaluate on the shapes data with a short override (as the README shows), and
the base configs built on them load exactly what the stock classes load."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, METRICS, DefaultScope

from agvm_mm.datasets import (SHAPES_CLASSES, SHAPES_DET_METAINFO,
                              SHAPES_STUFF_CLASSES, SHAPES_THING_CLASSES,
                              ensure_panopticapi, generate_shapes,
                              shapes_ann_file)
from tests.conftest import ROOT

NUM_TRAIN, NUM_VAL = 6, 3


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    from mmdet.utils import register_all_modules as register_mmdet
    from mmseg.utils import register_all_modules as register_mmseg
    register_mmdet(init_default_scope=False)
    register_mmseg(init_default_scope=False)
    ensure_panopticapi()
    out = str(tmp_path_factory.mktemp('types') / 'shapes') + '/'
    generate_shapes(out, NUM_TRAIN, NUM_VAL, workers=1)
    return out


def stock(tmp_path, base, text):
    """A user's config: a stock base plus the override text."""
    path = tmp_path / 'user.py'
    path.write_text(f"_base_ = '{base}'\n"
                    "custom_imports = dict(imports=['agvm_mm', "
                    "'agvm_mm.datasets'], "
                    "allow_failed_imports=False)\n" + text)
    return Config.fromfile(str(path))


def build(cfg, key):
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return DATASETS.build(cfg[key].dataset)


def test_stock_faster_rcnn_trains_and_evaluates_on_shapes(root, tmp_path):
    cfg = stock(tmp_path, 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                f"shapes = dict(type='ShapesCocoDataset', data_root='{root}')\n"
                'train_dataloader = dict(dataset=shapes)\n'
                'val_dataloader = dict(dataset=shapes)\n'
                f"val_evaluator = dict(ann_file='{root}annotations/"
                "instances_val2017.json')\n")
    train, val = build(cfg, 'train_dataloader'), build(cfg, 'val_dataloader')
    assert train.metainfo['classes'] == SHAPES_THING_CLASSES
    assert 0 < len(train) <= NUM_TRAIN and len(val) == NUM_VAL
    sample = train[0]  # the stock pipeline: resized to 800 px, flipped
    assert max(sample['inputs'].shape[1:]) == 800
    assert len(sample['data_samples'].gt_instances) > 0

    # the stock CocoMetric on the shapes val json: ground truth scores 1
    from mmengine.evaluator import Evaluator
    from mmengine.structures import InstanceData
    with DefaultScope.overwrite_default_scope('mmdet'):
        evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = val.metainfo
    for i in range(len(val)):
        ds = val[i]['data_samples']
        gt = ds.gt_instances  # loaded after the resize: original scale
        ds.pred_instances = InstanceData(
            bboxes=gt.bboxes.tensor, labels=gt.labels,
            scores=torch.ones(len(gt)))
        evaluator.process(data_samples=[ds])
    assert evaluator.evaluate(len(val))['coco/bbox_mAP'] > 0.99


def test_stock_panoptic_fpn_on_shapes(root, tmp_path):
    cfg = stock(tmp_path,
                'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py',
                f"shapes = dict(type='ShapesPanopticDataset', "
                f"data_root='{root}')\n"
                'train_dataloader = dict(dataset=shapes)\n'
                f"val_evaluator = dict(ann_file='{root}annotations/"
                f"panoptic_val2017.json', seg_prefix='{root}annotations/"
                "panoptic_val2017/')\n")
    train = build(cfg, 'train_dataloader')
    assert train.metainfo['thing_classes'] == SHAPES_THING_CLASSES
    assert train.metainfo['stuff_classes'] == SHAPES_STUFF_CLASSES
    sample = train[0]['data_samples']
    assert sample.gt_sem_seg.sem_seg.max() < len(SHAPES_CLASSES)
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(cfg.val_evaluator)
    assert metric._coco_api.cats[7]['name'] == 'sky'  # the shapes json


def test_stock_sem_fpn_on_shapes(root, tmp_path):
    text = (f"shapes = dict(type='ShapesSegDataset', data_root='{root}', "
            'data_prefix=None)\n'
            'train_dataloader = dict(dataset=shapes)\n'
            # mmseg's stock val sets do not say test_mode (the val split)
            'val_dataloader = dict(dataset=dict(shapes, test_mode=True))\n')
    base = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
    cfg = stock(tmp_path, base, text)
    # ADE20K's LoadAnnotations drops label 0; on the shapes data it is a class
    with pytest.raises(ValueError, match=r'reduce_zero_label=True .*every '
                       r'shapes label 0..8 is a class'):
        build(cfg, 'train_dataloader')
    cfg.merge_from_dict({
        'train_dataloader.dataset.pipeline.1.reduce_zero_label': False,
        'val_dataloader.dataset.pipeline.2.reduce_zero_label': False})
    train, val = build(cfg, 'train_dataloader'), build(cfg, 'val_dataloader')
    assert train.metainfo['classes'] == SHAPES_CLASSES
    assert (len(train), len(val)) == (NUM_TRAIN, NUM_VAL)
    assert val.get_data_info(0)['seg_map_path'].endswith(
        'annotations/semantic_val2017/000000.png')
    labels = train[0]['data_samples'].gt_sem_seg.data
    assert labels.max() < len(SHAPES_CLASSES) and (labels != 255).any()


@pytest.mark.parametrize('name,stock_type', [
    ('shapes_detection.py', 'mmdet.CocoDataset'),
    ('shapes_instance.py', 'mmdet.CocoDataset'),
    ('shapes_panoptic.py', 'mmdet.CocoPanopticDataset'),
    ('shapes_semantic.py', 'mmseg.BaseSegDataset'),
])
def test_base_configs_load_what_the_stock_classes_load(root, name,
                                                       stock_type):
    """configs/_base_/datasets/ name the shapes types; with the same
    arguments the stock classes give the same samples, so the shapes configs
    train as before."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets', name))
    for key in ('train_dataloader', 'val_dataloader'):
        dataset_cfg = cfg[key].dataset
        dataset_cfg.data_root = root
        assert dataset_cfg.type.split('.')[-1].startswith('Shapes')
        ours = DATASETS.build(dataset_cfg)
        theirs = DATASETS.build(dict(dataset_cfg, type=stock_type))
        assert type(ours).__name__.startswith('Shapes')
        assert ours.metainfo == theirs.metainfo
        assert len(ours) == len(theirs)
        for i in range(len(ours)):  # same annotations, same pipeline
            assert ours.get_data_info(i) == theirs.get_data_info(i)
        assert torch.equal(ours[0]['inputs'], theirs[0]['inputs'])


def test_defaults_are_the_generated_layout(root):
    with DefaultScope.overwrite_default_scope('mmdet'):
        val = DATASETS.build(dict(type='ShapesCocoDataset', data_root=root,
                                  test_mode=True))
    assert val.ann_file == shapes_ann_file('instance', True, root)
    assert val.metainfo['palette'] == SHAPES_DET_METAINFO['palette']
    assert len(val) == NUM_VAL
