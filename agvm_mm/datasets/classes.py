"""Class names, palettes and dataset metainfo of the synthetic shapes data:
what the renderer draws, the generator labels and the dataset types carry.
"""
from typing import List, Tuple

SHAPES_THING_CLASSES: Tuple[str, ...] = ('circle', 'ellipse', 'triangle',
                                         'square', 'hexagon', 'star')
SHAPES_STUFF_CLASSES: Tuple[str, ...] = ('sky', 'grass', 'wall')
SHAPES_CLASSES: Tuple[str, ...] = SHAPES_THING_CLASSES + SHAPES_STUFF_CLASSES
SHAPES_THING_PALETTE: List[Tuple[int, int, int]] = [
    (220, 20, 60), (0, 130, 200), (255, 180, 0), (60, 180, 75),
    (145, 30, 180), (240, 50, 230)]
SHAPES_STUFF_PALETTE: List[Tuple[int, int, int]] = [
    (135, 206, 235), (34, 139, 34), (128, 128, 128)]
SHAPES_PALETTE = SHAPES_THING_PALETTE + SHAPES_STUFF_PALETTE

SHAPES_DET_METAINFO = dict(
    classes=SHAPES_THING_CLASSES, palette=SHAPES_THING_PALETTE)
SHAPES_PANOPTIC_METAINFO = dict(
    classes=SHAPES_CLASSES,
    thing_classes=SHAPES_THING_CLASSES,
    stuff_classes=SHAPES_STUFF_CLASSES,
    palette=SHAPES_PALETTE)
SHAPES_SEG_METAINFO = dict(classes=SHAPES_CLASSES, palette=SHAPES_PALETTE)
