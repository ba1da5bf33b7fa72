"""Dataset types of the shapes data, registered in mmdet's and mmseg's
``DATASETS`` registries, so that a stock config trains on it by changing the
dataset's ``type`` and ``data_root``.

Each type carries the shapes metainfo (classes, palette) and the paths of
the layout :func:`generate_shapes` writes, for the training split, or the
validation split with ``test_mode=True``. mmdet's COCO configs name the same
relative paths (``annotations/instances_train2017.json``, ``train2017/``,
...), so for them ``type`` and ``data_root`` are enough; the evaluator's
``ann_file`` (an absolute path in those configs) must point at
``data/shapes/annotations/...`` too.

Examples:
    >>> # a stock mmdet COCO config on the shapes data
    >>> train_dataloader = dict(dataset=dict(type='ShapesCocoDataset',
    ...                                      data_root='data/shapes/'))
    >>> val_dataloader = dict(dataset=dict(type='ShapesCocoDataset',
    ...                                    data_root='data/shapes/'))
    >>> val_evaluator = dict(
    ...     ann_file='data/shapes/annotations/instances_val2017.json')
"""
import os.path as osp
from typing import Optional, Sequence

from .classes import (SHAPES_DET_METAINFO, SHAPES_PANOPTIC_METAINFO,
                      SHAPES_SEG_METAINFO)

DEFAULT_ROOT = 'data/shapes/'
_JSON_STEM = dict(instance='instances', panoptic='panoptic')


def _split(test_mode: bool) -> str:
    return 'val' if test_mode else 'train'


def shapes_ann_file(task: str, test_mode: bool = False,
                    data_root: str = DEFAULT_ROOT) -> str:
    """The COCO json of ``task`` ('instance' or 'panoptic') of the training
    (or, with ``test_mode``, validation) split under ``data_root``, e.g. for
    an evaluator's ``ann_file``."""
    return osp.join(data_root, 'annotations',
                    f'{_JSON_STEM[task]}_{_split(test_mode)}2017.json')


try:
    from mmdet.datasets import CocoDataset, CocoPanopticDataset
    from mmdet.registry import DATASETS as MMDET_DATASETS
except ImportError:  # agvm_mm also serves mmseg-only installs
    MMDET_DATASETS = None

class _ShapesCocoLayout:
    """Fills ``data_root``, ``ann_file`` and ``data_prefix`` of a COCO-style
    dataset with the shapes layout of the split (``TASK`` names the json);
    the arguments given win."""
    TASK = 'instance'

    def __init__(self, data_root: str = DEFAULT_ROOT,
                 ann_file: Optional[str] = None,
                 data_prefix: Optional[dict] = None,
                 test_mode: bool = False, **kwargs) -> None:
        split = _split(test_mode)
        prefix = dict(img=f'{split}2017/')
        if self.TASK == 'panoptic':
            prefix['seg'] = f'annotations/panoptic_{split}2017/'
        super().__init__(
            data_root=data_root,
            ann_file=ann_file or shapes_ann_file(self.TASK, test_mode, ''),
            data_prefix=data_prefix or prefix, test_mode=test_mode,
            **kwargs)


if MMDET_DATASETS is not None:

    @MMDET_DATASETS.register_module()
    class ShapesCocoDataset(_ShapesCocoLayout, CocoDataset):
        """mmdet's ``CocoDataset`` on the shapes data (6 thing classes;
        boxes, and masks with ``LoadAnnotations(with_mask=True)``).

        Args:
            data_root (str): Root of the shapes data.
            ann_file (str, optional): None: the split's
                ``annotations/instances_<split>2017.json``.
            data_prefix (dict, optional): None: ``img='<split>2017/'``.
            test_mode (bool): The validation split if True.
            **kwargs: As for ``CocoDataset``.
        """
        METAINFO = dict(SHAPES_DET_METAINFO)

    @MMDET_DATASETS.register_module()
    class ShapesPanopticDataset(_ShapesCocoLayout, CocoPanopticDataset):
        """mmdet's ``CocoPanopticDataset`` on the shapes data (6 thing and 3
        stuff classes).

        Args:
            data_root (str): Root of the shapes data.
            ann_file (str, optional): None: the split's
                ``annotations/panoptic_<split>2017.json``.
            data_prefix (dict, optional): None: ``img='<split>2017/'``,
                ``seg='annotations/panoptic_<split>2017/'``.
            test_mode (bool): The validation split if True.
            **kwargs: As for ``CocoPanopticDataset``.
        """
        METAINFO = dict(SHAPES_PANOPTIC_METAINFO)
        TASK = 'panoptic'

try:
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS as MMSEG_DATASETS
except ImportError:  # and mmdet-only ones
    MMSEG_DATASETS = None

if MMSEG_DATASETS is not None:

    @MMSEG_DATASETS.register_module()
    class ShapesSegDataset(BaseSegDataset):
        """mmseg's ``BaseSegDataset`` on the shapes data: 9 classes (6 things,
        then 3 stuff), every pixel labeled, so ``reduce_zero_label=False``.

        Stock ADE20K configs set ``data_prefix`` to ADE's folders, do not set
        ``test_mode`` on the validation set, and set
        ``reduce_zero_label=True`` in the pipeline's ``LoadAnnotations``:
        override ``data_prefix=None`` (the shapes layout), ``test_mode=True``
        on the validation set, and ``reduce_zero_label=False`` there.

        Args:
            data_root (str): Root of the shapes data.
            data_prefix (dict, optional): None: ``img_path='<split>2017'``,
                ``seg_map_path='annotations/semantic_<split>2017'``.
            test_mode (bool): The validation split if True.
            pipeline (list): As for ``BaseSegDataset``.
            **kwargs: As for ``BaseSegDataset`` (``img_suffix`` '.jpg' and
                ``seg_map_suffix`` '.png' are the shapes data's).
        """
        METAINFO = dict(SHAPES_SEG_METAINFO)

        def __init__(self, data_root: str = DEFAULT_ROOT,
                     data_prefix: Optional[dict] = None,
                     test_mode: bool = False, pipeline: Sequence = (),
                     reduce_zero_label: bool = False, **kwargs) -> None:
            reducing = reduce_zero_label or any(
                isinstance(t, dict) and t.get('reduce_zero_label')
                and str(t.get('type')).split('.')[-1] == 'LoadAnnotations'
                for t in pipeline)
            if reducing:
                raise ValueError(
                    'ShapesSegDataset: reduce_zero_label=True (the ADE20K '
                    'setting, in the dataset or its pipeline\'s '
                    'LoadAnnotations) would drop class 0, but every shapes '
                    'label 0..8 is a class. Set reduce_zero_label=False '
                    'there, e.g. --cfg-options train_dataloader.dataset.'
                    'pipeline.<index of LoadAnnotations>.'
                    'reduce_zero_label=False.')
            split = _split(test_mode)
            super().__init__(
                data_root=data_root,
                data_prefix=data_prefix or dict(
                    img_path=f'{split}2017',
                    seg_map_path=f'annotations/semantic_{split}2017'),
                test_mode=test_mode, pipeline=list(pipeline),
                reduce_zero_label=False, **kwargs)
