"""Synthetic datasets for quick, deterministic mmdet / mmseg experiments.

Not imported by ``import agvm_mm``: configs on the shapes data name it in
``custom_imports=dict(imports=['agvm_mm', 'agvm_mm.datasets'])``. Importing
it registers the shapes dataset types and, since mmdet's panoptic loader and
metric import ``panopticapi`` (on no package registry), installs a stand-in
for it when the real package is missing (:func:`ensure_panopticapi`).
"""
from .classes import (SHAPES_CLASSES, SHAPES_DET_METAINFO, SHAPES_PALETTE,
                      SHAPES_PANOPTIC_METAINFO, SHAPES_SEG_METAINFO,
                      SHAPES_STUFF_CLASSES, SHAPES_STUFF_PALETTE,
                      SHAPES_THING_CLASSES, SHAPES_THING_PALETTE)
from .generate import generate_shapes
from .panoptic_standin import ensure_panopticapi
from .render import render_sample

# before mmdet's panoptic modules are imported below (it also patches them
# if they were imported already)
ensure_panopticapi()

# registers ShapesCocoDataset, ShapesPanopticDataset (mmdet) and
# ShapesSegDataset (mmseg)
from .shapes_datasets import DEFAULT_ROOT as SHAPES_ROOT  # noqa: E402
from .shapes_datasets import shapes_ann_file  # noqa: E402

__all__ = [
    'generate_shapes', 'render_sample', 'ensure_panopticapi',
    'SHAPES_THING_CLASSES', 'SHAPES_STUFF_CLASSES', 'SHAPES_CLASSES',
    'SHAPES_THING_PALETTE', 'SHAPES_STUFF_PALETTE', 'SHAPES_PALETTE',
    'SHAPES_DET_METAINFO', 'SHAPES_PANOPTIC_METAINFO', 'SHAPES_SEG_METAINFO',
    'SHAPES_ROOT', 'shapes_ann_file'
]
