"""Synthetic datasets for quick, deterministic mmdet / mmseg experiments."""
from .shapes import (SHAPES_CLASSES, SHAPES_DET_METAINFO, SHAPES_PALETTE,
                     SHAPES_PANOPTIC_METAINFO, SHAPES_SEG_METAINFO,
                     SHAPES_STUFF_CLASSES, SHAPES_STUFF_PALETTE,
                     SHAPES_THING_CLASSES, SHAPES_THING_PALETTE,
                     ensure_panopticapi, generate_shapes, render_sample)
# registers ShapesCocoDataset, ShapesPanopticDataset (mmdet) and
# ShapesSegDataset (mmseg)
from .shapes_datasets import DEFAULT_ROOT as SHAPES_ROOT
from .shapes_datasets import shapes_ann_file

__all__ = [
    'generate_shapes', 'render_sample', 'ensure_panopticapi',
    'SHAPES_THING_CLASSES', 'SHAPES_STUFF_CLASSES', 'SHAPES_CLASSES',
    'SHAPES_THING_PALETTE', 'SHAPES_STUFF_PALETTE', 'SHAPES_PALETTE',
    'SHAPES_DET_METAINFO', 'SHAPES_PANOPTIC_METAINFO', 'SHAPES_SEG_METAINFO',
    'SHAPES_ROOT', 'shapes_ann_file'
]
