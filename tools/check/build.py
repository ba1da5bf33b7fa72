"""The check's own config: the config to check, trained for a few steps on
the shapes data of its task on one CPU process, without downloads."""
import copy
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.config import Config

from tools.runner_setup import no_downloads, replace_syncbn
from .window import INF, scheduler_by_epoch, type_name

TASKS = ('detection', 'instance', 'panoptic', 'semantic')
DATASET_TYPES = dict(detection='mmdet.ShapesCocoDataset',
                     instance='mmdet.ShapesCocoDataset',
                     panoptic='mmdet.ShapesPanopticDataset',
                     semantic='mmseg.ShapesSegDataset')
AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')
# hooks that switch the real run's training data (pipeline, mosaic/mixup) at
# a late epoch: the check trains its own data in an iteration loop, whose one
# "epoch" they would take for the last
DATA_SWITCH_HOOKS = ('PipelineSwitchHook', 'YOLOXModeSwitchHook')


def detect_task(cfg: Config) -> str:
    """'semantic' for mmseg configs, else from the training pipeline:
    'panoptic', 'instance' (masks loaded) or 'detection'."""
    if cfg.get('default_scope') == 'mmseg':
        return 'semantic'
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        dataset = dataset['dataset']
    for step in dataset.get('pipeline') or []:
        kind = type_name(step)
        if kind == 'LoadPanopticAnnotations':
            return 'panoptic'
        if kind == 'LoadAnnotations' and step.get('with_mask'):
            return 'instance'
    model = cfg.model
    if any(model.get(k) is not None
           for k in ('semantic_head', 'panoptic_fusion_head')):
        return 'panoptic'
    if (model.get('roi_head') or {}).get('mask_head') is not None:
        return 'instance'
    return 'detection'


def shapes_pipeline(task: str, img_size: int) -> List[dict]:
    """The deterministic training pipeline of the shapes data, scoped so
    that it builds under any default scope (as configs/_base_/datasets/)."""
    if task == 'semantic':
        return [
            dict(type='LoadImageFromFile'),
            dict(type='mmseg.LoadAnnotations'),
            dict(type='mmseg.Resize', scale=(img_size, img_size),
                 keep_ratio=True),
            dict(type='mmseg.PackSegInputs')
        ]
    load = (dict(type='mmdet.LoadPanopticAnnotations')
            if task == 'panoptic' else dict(
                type='mmdet.LoadAnnotations', with_bbox=True,
                with_mask=task == 'instance'))
    return [
        dict(type='LoadImageFromFile'), load,
        dict(type='mmdet.Resize', scale=(img_size, img_size),
             keep_ratio=True),
        dict(type='mmdet.PackDetInputs')
    ]


def _small_inputs(preprocessor: Optional[dict], img_size: int) -> None:
    """Fixed-size padding (mmseg's crop size, batch augments) to the check's
    image size, in place."""
    if not preprocessor:
        return
    if preprocessor.get('size') is not None:
        preprocessor['size'] = (img_size, img_size)
    for augment in preprocessor.get('batch_augments') or []:
        if augment.get('size') is not None:
            augment['size'] = (img_size, img_size)


def make_check_config(cfg: Config, data_root: str, work_dir: str,
                      steps: int = 3, img_size: int = 64,
                      batch_size: int = 1) -> Tuple[Config, List[str]]:
    """A copy of ``cfg`` that trains ``steps`` optimizer steps of two
    accumulated micro-batches of ``batch_size`` shapes images on one CPU
    process, AGVM taking statistics on every step; and notes on what the
    check changes beyond that."""
    cfg = copy.deepcopy(cfg)
    notes = []
    task = detect_task(cfg)
    cfg.train_dataloader = dict(
        batch_size=batch_size, num_workers=0, persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=False),
        dataset=dict(type=DATASET_TYPES[task], data_root=data_root,
                     pipeline=shapes_pipeline(task, img_size)))
    if task != 'semantic':
        cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=True)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2 * steps,
                         val_interval=INF)
    # the lr of the real run's first steps: its iteration-based schedulers
    # (warm-up); epoch-based ones never step in an iteration loop
    schedulers = cfg.get('param_scheduler') or []
    cfg.param_scheduler = [
        s for s in ([schedulers] if isinstance(schedulers, dict) else
                    schedulers)
        if 'type' in s and not scheduler_by_epoch(s, cfg.get(
            'default_scope'))] or None
    cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr') or {}, enable=False)
    cfg.load_from, cfg.resume, cfg.launcher = None, False, 'none'
    cfg.work_dir, cfg.log_level = work_dir, 'ERROR'
    cfg.randomness = dict(seed=0)

    model = cfg.model
    if replace_syncbn(model):
        notes.append('SyncBN runs as BN here (one CPU process).')
    if model.get('backbone') is not None:
        model.backbone.init_cfg = None
    if 'pretrained' in model:
        model.pretrained = None
    no_downloads(model)
    _small_inputs(model.get('data_preprocessor'), img_size)

    wrapper = cfg.optim_wrapper
    kind = type_name(wrapper) or 'OptimWrapper'
    if kind in ('AmpOptimWrapper', 'AGVMAmpOptimWrapper'):
        notes.append(f'{kind} is checked in fp32 as AGVMOptimWrapper (AMP '
                     'needs a GPU).')
    for key in AMP_ONLY_KEYS:
        wrapper.pop(key, None)
    wrapper.type = 'AGVMOptimWrapper'
    wrapper.accumulative_counts = 2
    wrapper.agvm = dict(wrapper.get('agvm') or {}, interval=1, start_iter=0,
                        stop_iter=None)

    hooks = dict(cfg.get('default_hooks') or {})
    hooks['checkpoint'] = None  # None drops one of mmengine's defaults
    hooks.pop('visualization', None)  # not one of them
    cfg.default_hooks = hooks
    # the check starts AGVM itself; other custom hooks run as configured
    # but for those that switch the real run's data
    custom = cfg.get('custom_hooks') or []
    left = [type_name(h) for h in custom if type_name(h) in DATA_SWITCH_HOOKS]
    if left:
        notes.append(f'Left out of the check: {", ".join(left)} (switches '
                     "the real run's training data at a late epoch; the "
                     'check trains its first steps on its own data).')
    cfg.custom_hooks = [h for h in custom if type_name(h) not in
                        ('AGVMHook', ) + DATA_SWITCH_HOOKS]
    imports = dict(cfg.get('custom_imports') or {})
    names = list(imports.get('imports') or [])
    # the check trains on the shapes data: its dataset types too
    cfg.custom_imports = dict(
        imports, allow_failed_imports=False,
        imports=names + [m for m in ('agvm_mm', 'agvm_mm.datasets')
                         if m not in names])
    return cfg, notes


def check_data_root(data_root: str, img_size: int) -> str:
    """Generate the small shapes set the check trains on (reused when it is
    there already); returns ``data_root``."""
    from agvm_mm.datasets import generate_shapes
    generate_shapes(data_root, num_train=8, num_val=1, img_size=img_size,
                    workers=1)
    return osp.join(data_root, '')
