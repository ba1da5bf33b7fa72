"""Deterministic synthetic "shapes" dataset in COCO / COCO-panoptic / mmseg
layouts, consumable by the stock mmdet and mmseg dataset classes and metrics.

Every image shows one to three textured *stuff* regions (smooth "sky",
noisy "grass", striped "wall") with some unlabeled clutter, and up to nine
randomly coloured, sized and rotated *thing* shapes that may occlude each
other. Masks are the visible parts only; objects that end up mostly hidden
(or mostly outside the image) are removed before rendering, so every drawn
shape is annotated.

Layout written under ``out_dir``::

    train2017/000000.jpg ...            val2017/000000.jpg ...
    annotations/instances_{train,val}2017.json         (task 'instance')
    annotations/panoptic_{train,val}2017.json          (task 'panoptic')
    annotations/panoptic_{train,val}2017/000000.png ...
    annotations/semantic_{train,val}2017/000000.png ... (task 'semantic')
    meta.json

Label conventions: COCO category ids are 1..T for the things followed by
T+1..T+S for the stuff (``isthing`` 1/0 in the panoptic json); the semantic
label PNGs hold the contiguous index into ``SHAPES_CLASSES`` (things first,
then stuff, the same order mmdet uses for panoptic labels); every pixel is
labeled, so no ignore value (255) occurs and ``reduce_zero_label=False``.

mmdet's panoptic loader and metric need ``panopticapi`` (not on PyPI); see
:func:`ensure_panopticapi` for a stand-in when it is missing.
"""
import contextlib
import io
import json
import multiprocessing
import os
import os.path as osp
import shutil
import sys
import time
import types
from collections import defaultdict
from typing import (Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple)

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util

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

GENERATOR_VERSION = 1  # bump whenever the output bytes change
ALL_TASKS = ('instance', 'panoptic', 'semantic')
SPLITS = ('train', 'val')

# A shape is kept only if this much of its (analytic) area stays visible.
MIN_VISIBLE_FRACTION = 0.3
MIN_VISIBLE_PIXELS = 16


# --------------------------------------------------------------------------
# geometry and rendering
# --------------------------------------------------------------------------
def _regular_polygon(n: int, radius: float, phase: float) -> np.ndarray:
    """Vertices (n, 2) of a regular n-gon centred at the origin."""
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1) * radius


def _shape_polygon(cls: int, size: float, angle: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Polygon (n, 2) around the origin for thing class ``cls``.

    ``size`` is roughly the diameter of the shape in pixels.
    """
    r = size / 2
    name = SHAPES_THING_CLASSES[cls]
    if name == 'circle':
        pts = _regular_polygon(48, r, 0.0)
    elif name == 'ellipse':
        pts = _regular_polygon(48, r, 0.0) * [1.0, rng.uniform(0.35, 0.6)]
    elif name == 'triangle':
        pts = _regular_polygon(3, r, 0.0)
        pts = pts * rng.uniform(0.85, 1.15, size=(3, 1))
    elif name == 'square':
        pts = _regular_polygon(4, r, np.pi / 4)
    elif name == 'hexagon':
        pts = _regular_polygon(6, r, 0.0)
    else:  # star
        radii = np.tile([r, r * rng.uniform(0.38, 0.5)], 5)
        t = 2 * np.pi * np.arange(10) / 10
        pts = np.stack([np.cos(t), np.sin(t)], axis=1) * radii[:, None]
    c, s = np.cos(angle), np.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def _polygon_area(pts: np.ndarray) -> float:
    """Shoelace area of a simple polygon."""
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(
        float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _rasterize(polys: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Paint polygons in order (later ones on top) into an int map whose value
    is 1 + the polygon index (0 where none)."""
    canvas = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for k, pts in enumerate(polys):
        draw.polygon([tuple(p) for p in pts.tolist()], fill=k + 1)
    return np.asarray(canvas, dtype=np.int32)


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3).astype(np.float32)


def _stuff_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """Stuff label map (0 sky, 1 grass, 2 wall): a wavy horizon with sky above
    and grass below, plus an optional wall quadrilateral."""
    x = np.arange(size, dtype=np.float32)
    horizon = (rng.uniform(-0.1, 1.0) * size
               + rng.uniform(-0.4, 0.4) * (x - size / 2)
               + rng.uniform(0, 0.08 * size)
               * np.sin(x * rng.uniform(0.02, 0.15) + rng.uniform(0, 6.3)))
    stuff = (x[:, None] >= horizon[None, :]).astype(np.int32)
    if rng.random() < 0.7:
        cx, cy = rng.uniform(0, size, 2)
        w, h = rng.uniform(0.2, 0.6, 2) * size
        quad = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
        quad = quad + rng.normal(0, 0.05 * size, (4, 2)) + [cx, cy]
        stuff[_rasterize([quad], size) > 0] = 2
    return stuff


def _stuff_texture(rng: np.random.Generator, kind: int,
                   size: int) -> np.ndarray:
    """Full-image float RGB texture for one stuff class."""
    x = np.arange(size, dtype=np.float32)
    if kind == 0:  # sky: smooth vertical gradient
        top, bottom = _random_color(rng), _random_color(rng)
        t = (x / size)[:, None, None]
        return np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3))
    if kind == 1:  # grass: blocky high-frequency noise
        base = _random_color(rng)
        cell = int(rng.integers(1, 3))
        n = size // cell + 1
        noise = rng.standard_normal((n, n, 1), dtype=np.float32)
        noise *= rng.uniform(20, 40)
        noise = np.repeat(np.repeat(noise, cell, 0), cell, 1)[:size, :size]
        return base + noise
    # wall: two-colour stripes at a random angle and period
    a, b = _random_color(rng), _random_color(rng)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(4, 10)
    phase = x[:, None] * np.sin(theta) + x[None, :] * np.cos(theta)
    stripe = (np.sin(2 * np.pi * phase / period) > 0)[..., None]
    return np.where(stripe, a, b)


def _add_clutter(img: np.ndarray, rng: np.random.Generator,
                 size: int) -> None:
    """Draw unlabeled thin lines and specks (distractors) onto ``img``."""
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(0, 6))):
        x0, y0 = rng.uniform(0, size, 2)
        length, t = rng.uniform(4, 0.2 * size), rng.uniform(0, 2 * np.pi)
        color = tuple(int(v) for v in _random_color(rng))
        draw.line([(x0, y0), (x0 + length * np.cos(t),
                              y0 + length * np.sin(t))], fill=color, width=1)
    for _ in range(int(rng.integers(0, 8))):
        x0, y0 = rng.uniform(0, size, 2)
        r = rng.uniform(0.5, 2)
        color = tuple(int(v) for v in _random_color(rng))
        draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=color)
    img[...] = np.asarray(pil, dtype=np.float32)


def render_sample(rng: np.random.Generator, size: int
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[int]]:
    """Render one sample.

    Returns:
        image (H, W, 3) uint8, stuff label map (H, W) with values
        0..S-1, thing map (H, W) with 0 = no thing and k = the k-th entry of
        ``labels``, and the thing class index of every kept object.
    """
    stuff = _stuff_layout(rng, size)
    img = np.zeros((size, size, 3), np.float32)
    for kind in range(len(SHAPES_STUFF_CLASSES)):
        texture = _stuff_texture(rng, kind, size)
        img[stuff == kind] = texture[stuff == kind]
    _add_clutter(img, rng, size)

    # sample shapes; later shapes occlude earlier ones
    polys, labels, colors = [], [], []
    for _ in range(int(rng.integers(2, 10))):
        cls = int(rng.integers(len(SHAPES_THING_CLASSES)))
        diam = float(np.exp(rng.uniform(np.log(8), np.log(size / 2))))
        pts = _shape_polygon(cls, diam, rng.uniform(0, 2 * np.pi), rng)
        polys.append(pts + rng.uniform(0, size, 2))
        labels.append(cls)
        colors.append(_random_color(rng))

    # drop objects that are mostly occluded or outside; removing an object
    # can only reveal others, so iterate until nothing more is dropped
    keep = list(range(len(polys)))
    while True:
        ids = _rasterize([polys[k] for k in keep], size)
        visible = np.bincount(ids.ravel(), minlength=len(keep) + 1)[1:]
        ok = [v >= max(MIN_VISIBLE_PIXELS,
                       MIN_VISIBLE_FRACTION * _polygon_area(polys[k]))
              for k, v in zip(keep, visible)]
        if all(ok):
            break
        keep = [k for k, good in zip(keep, ok) if good]

    for j, k in enumerate(keep):
        ys, xs = np.nonzero(ids == j + 1)
        # flat colour with a random linear shading
        g = rng.uniform(-1, 1, 2) * 30 / size
        cx, cy = polys[k].mean(0)
        shade = (xs - cx) * g[0] + (ys - cy) * g[1]
        img[ys, xs] = colors[k] + shade[:, None].astype(np.float32)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    img += noise * rng.uniform(2, 8)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return image, stuff, ids, [labels[k] for k in keep]


# --------------------------------------------------------------------------
# per-image worker
# --------------------------------------------------------------------------
def _bbox(mask: np.ndarray) -> List[int]:
    """COCO [x, y, w, h] of the tight box around a non-empty mask."""
    xs, ys = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1),
            int(ys[-1] - ys[0] + 1)]


def _write_png(path: str, array: np.ndarray) -> None:
    Image.fromarray(array).save(path, format='PNG', compress_level=1)


def _make_one(job: Tuple[str, str, int, int, int, Tuple[str, ...]]) -> dict:
    """Render, write and annotate image ``index`` of ``split``.

    Returns a dict with the image entry and id-less annotations; the caller
    assigns global ids so the output is independent of worker scheduling.
    """
    out_dir, split, index, size, seed, tasks = job
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    image, stuff, ids, labels = render_sample(rng, size)
    stem = f'{index:06d}'
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format='JPEG', quality=95)
    with open(osp.join(out_dir, f'{split}2017', stem + '.jpg'), 'wb') as f:
        f.write(buf.getvalue())

    num_things = len(SHAPES_THING_CLASSES)
    things = []
    for j, cls in enumerate(labels):
        m = ids == j + 1
        rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
        things.append(dict(category_id=cls + 1, bbox=_bbox(m),
                           area=int(m.sum()),
                           segmentation=dict(size=rle['size'],
                                             counts=rle['counts'].decode())))
    result = dict(file_name=stem + '.jpg', height=size, width=size,
                  things=things, segments=[])

    if 'panoptic' in tasks:
        # segment ids: 1..n for things (drawing order), then one per stuff
        pan = ids.copy()
        segments = [dict(id=j + 1, category_id=t['category_id'], iscrowd=0,
                         bbox=t['bbox'], area=t['area'])
                    for j, t in enumerate(things)]
        for s in range(len(SHAPES_STUFF_CLASSES)):
            m = (stuff == s) & (ids == 0)
            if m.any():
                seg_id = len(segments) + 1
                pan[m] = seg_id
                segments.append(dict(id=seg_id,
                                     category_id=num_things + s + 1,
                                     iscrowd=0, bbox=_bbox(m),
                                     area=int(m.sum())))
        rgb = np.stack([pan % 256, pan // 256 % 256, pan // 65536],
                       axis=-1).astype(np.uint8)
        _write_png(osp.join(out_dir, 'annotations', f'panoptic_{split}2017',
                            stem + '.png'), rgb)
        result['segments'] = segments

    if 'semantic' in tasks:
        sem = stuff + num_things
        for j, cls in enumerate(labels):
            sem[ids == j + 1] = cls
        _write_png(osp.join(out_dir, 'annotations', f'semantic_{split}2017',
                            stem + '.png'), sem.astype(np.uint8))
    return result


# --------------------------------------------------------------------------
# dataset assembly
# --------------------------------------------------------------------------
def _categories(with_stuff: bool) -> List[dict]:
    cats = [dict(id=i + 1, name=n, supercategory='shape', isthing=1)
            for i, n in enumerate(SHAPES_THING_CLASSES)]
    if with_stuff:
        t = len(SHAPES_THING_CLASSES)
        cats += [dict(id=t + i + 1, name=n, supercategory='stuff', isthing=0)
                 for i, n in enumerate(SHAPES_STUFF_CLASSES)]
    else:
        for c in cats:
            del c['isthing']
    return cats


def _dump_json(obj: dict, path: str) -> None:
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


def _write_split_jsons(out_dir: str, split: str, results: List[dict],
                       tasks: Iterable[str]) -> int:
    """Write the COCO instance / panoptic jsons of one split; returns the
    number of thing instances."""
    ann_dir = osp.join(out_dir, 'annotations')
    images, instances, panoptic = [], [], []
    for img_id, r in enumerate(results, start=1):
        images.append(dict(id=img_id, file_name=r['file_name'],
                           height=r['height'], width=r['width']))
        for t in r['things']:
            instances.append(dict(t, id=len(instances) + 1, image_id=img_id,
                                  iscrowd=0))
        panoptic.append(dict(image_id=img_id,
                             file_name=r['file_name'][:-4] + '.png',
                             segments_info=r['segments']))
    info = dict(description='agvm_mm synthetic shapes', version=str(
        GENERATOR_VERSION))
    if 'instance' in tasks:
        _dump_json(dict(info=info, images=images, annotations=instances,
                        categories=_categories(False)),
                   osp.join(ann_dir, f'instances_{split}2017.json'))
    if 'panoptic' in tasks:
        _dump_json(dict(info=info, images=images, annotations=panoptic,
                        categories=_categories(True)),
                   osp.join(ann_dir, f'panoptic_{split}2017.json'))
    return len(instances)


def _output_paths(out_dir: str, tasks: Iterable[str]) -> Dict[str, str]:
    """Main paths of a generated dataset, keyed by a short name."""
    paths = {'meta': osp.join(out_dir, 'meta.json')}
    ann = osp.join(out_dir, 'annotations')
    for split in SPLITS:
        paths[f'{split}_img_dir'] = osp.join(out_dir, f'{split}2017')
        if 'instance' in tasks:
            paths[f'{split}_instances'] = osp.join(
                ann, f'instances_{split}2017.json')
        if 'panoptic' in tasks:
            paths[f'{split}_panoptic'] = osp.join(
                ann, f'panoptic_{split}2017.json')
            paths[f'{split}_panoptic_dir'] = osp.join(
                ann, f'panoptic_{split}2017')
        if 'semantic' in tasks:
            paths[f'{split}_semantic_dir'] = osp.join(
                ann, f'semantic_{split}2017')
    return paths


def _clean(out_dir: str) -> None:
    """Remove what an earlier generation may have left (only our paths)."""
    for p in _output_paths(out_dir, ALL_TASKS).values():
        if osp.isdir(p):
            shutil.rmtree(p)
        elif osp.isfile(p):
            os.remove(p)


def generate_shapes(out_dir: str,
                    num_train: int = 400,
                    num_val: int = 100,
                    img_size: int = 128,
                    seed: int = 0,
                    workers: Optional[int] = None,
                    tasks: Sequence[str] = ALL_TASKS) -> dict:
    """Generate (or reuse) the synthetic shapes dataset under ``out_dir``.

    Output is byte-identical for the same arguments whatever ``workers`` is
    (each image draws from its own RNG seeded by ``(seed, split, index)``).
    If ``out_dir/meta.json`` records the same parameters the call returns at
    once without touching any file; concurrent calls (e.g. from several
    ranks) are serialized by a lock file, ``out_dir/.generate.lock``.

    Args:
        out_dir: Dataset root, e.g. ``'data/shapes'``.
        num_train: Number of training images.
        num_val: Number of validation images.
        img_size: Side of the square images in pixels.
        seed: Base random seed.
        workers: Worker processes; ``None`` uses every CPU this process may
            run on, ``<= 1`` runs in this process.
        tasks: Subset of ``('instance', 'panoptic', 'semantic')`` whose
            annotations to write (images are always written).

    Returns:
        dict with ``out_dir``, ``skipped`` (True if reused), ``seconds``,
        ``num_images`` and ``num_instances`` per split, ``paths`` (see
        ``_output_paths``) and the ``params`` recorded in meta.json.
    """
    start = time.perf_counter()
    unknown = set(tasks) - set(ALL_TASKS)
    tasks = tuple(t for t in ALL_TASKS if t in set(tasks))
    if unknown or not tasks:
        raise ValueError(f'tasks must be a non-empty subset of {ALL_TASKS}')
    params = dict(version=GENERATOR_VERSION, num_train=int(num_train),
                  num_val=int(num_val), img_size=int(img_size),
                  seed=int(seed), tasks=list(tasks))
    paths = _output_paths(out_dir, tasks)
    result = dict(out_dir=out_dir, skipped=True, paths=paths, params=params)
    meta = _read_meta(paths['meta'], params)
    if meta is None:
        # one generator at a time (e.g. several ranks of a distributed job);
        # whoever waited finds the finished dataset and skips
        with _file_lock(osp.join(out_dir, '.generate.lock')):
            meta = _read_meta(paths['meta'], params)
            if meta is None:
                meta = _generate(out_dir, params, paths, workers)
                result['skipped'] = False
    result.update(seconds=time.perf_counter() - start,
                  num_images=meta['num_images'],
                  num_instances=meta['num_instances'])
    return result


def _read_meta(path: str, params: dict) -> Optional[dict]:
    """The meta.json at ``path`` if it records exactly ``params``."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        meta = json.load(f)
    return meta if meta.get('params') == params else None


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """Exclusive inter-process lock (POSIX ``flock``; no-op elsewhere)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _generate(out_dir: str, params: dict, paths: Dict[str, str],
              workers: Optional[int]) -> dict:
    """Write the whole dataset described by ``params``; returns its meta."""
    _clean(out_dir)
    for key, p in paths.items():
        if key.endswith('_dir'):
            os.makedirs(p, exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)

    tasks = tuple(params['tasks'])
    counts = dict(train=params['num_train'], val=params['num_val'])
    jobs = [(out_dir, split, i, params['img_size'], params['seed'], tasks)
            for split in SPLITS for i in range(counts[split])]
    if workers is None:
        workers = (len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else os.cpu_count() or 1)
    if workers <= 1 or len(jobs) < 16:
        results = [_make_one(j) for j in jobs]
    else:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context(
            'fork' if 'fork' in methods else None)
        with ctx.Pool(min(workers, len(jobs))) as pool:
            results = pool.map(_make_one, jobs,
                               chunksize=max(1, len(jobs) // (workers * 8)))

    num_instances = {}
    for split in SPLITS:
        split_results = [r for j, r in zip(jobs, results) if j[1] == split]
        num_instances[split] = _write_split_jsons(out_dir, split,
                                                  split_results, tasks)
    meta = dict(params=params, num_images=counts,
                num_instances=num_instances,
                thing_classes=list(SHAPES_THING_CLASSES),
                stuff_classes=list(SHAPES_STUFF_CLASSES),
                seg_classes=list(SHAPES_CLASSES))
    with open(paths['meta'], 'w') as f:  # written last: marks completion
        json.dump(meta, f, indent=2)
    return meta


# --------------------------------------------------------------------------
# panopticapi stand-in
# --------------------------------------------------------------------------
class _PQStatCat:
    """Per-category panoptic-quality accumulator."""

    def __init__(self) -> None:
        self.iou, self.tp, self.fp, self.fn = 0.0, 0, 0, 0

    def __iadd__(self, other: '_PQStatCat') -> '_PQStatCat':
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


class _PQStat:
    """Panoptic-quality accumulator with the interface mmdet expects."""

    def __init__(self) -> None:
        self.pq_per_cat: Dict[int, _PQStatCat] = defaultdict(_PQStatCat)

    def __getitem__(self, cat_id: int) -> _PQStatCat:
        return self.pq_per_cat[cat_id]

    def __iadd__(self, other: '_PQStat') -> '_PQStat':
        for cat_id, stat in other.pq_per_cat.items():
            self.pq_per_cat[cat_id] += stat
        return self

    def pq_average(self, categories: dict,
                   isthing: Optional[bool]) -> Tuple[dict, dict]:
        """Mean PQ/SQ/RQ over the categories (things, stuff or all) that
        occur in ground truth or predictions, plus per-category values."""
        per_class, sums, n = {}, np.zeros(3), 0
        for cat_id, info in categories.items():
            if isthing is not None and (info['isthing'] == 1) != isthing:
                continue
            s = self.pq_per_cat[cat_id]
            denom = s.tp + 0.5 * s.fp + 0.5 * s.fn
            if denom == 0:
                per_class[cat_id] = dict(pq=0.0, sq=0.0, rq=0.0)
                continue
            sq = s.iou / s.tp if s.tp else 0.0
            rq = s.tp / denom
            per_class[cat_id] = dict(pq=sq * rq, sq=sq, rq=rq)
            sums += (sq * rq, sq, rq)
            n += 1
        pq, sq, rq = (float(v) for v in sums / max(n, 1))
        return dict(pq=pq, sq=sq, rq=rq, n=n), per_class


def _rgb2id(color):
    """Panoptic id from RGB: R + 256 G + 256^2 B (array or triple)."""
    if isinstance(color, np.ndarray) and color.ndim == 3:
        c = color.astype(np.int32)
        return c[..., 0] + 256 * c[..., 1] + 256 * 256 * c[..., 2]
    return int(color[0]) + 256 * int(color[1]) + 256 * 256 * int(color[2])


def _id2rgb(id_map):
    """Inverse of :func:`_rgb2id`."""
    if isinstance(id_map, np.ndarray):
        m = id_map.astype(np.int64)
        return np.stack([m % 256, m // 256 % 256, m // 65536 % 256],
                        axis=-1).astype(np.uint8)
    return [id_map % 256, id_map // 256 % 256, id_map // 65536 % 256]


def ensure_panopticapi() -> bool:
    """Make ``import panopticapi`` work for mmdet's panoptic code.

    mmdet 3.3.0 needs the (GitHub-only, not on PyPI) ``panopticapi`` package
    for ``LoadPanopticAnnotations`` (``utils.rgb2id``) and for
    ``CocoPanopticMetric`` / ``pq_compute_single_core`` (``evaluation.VOID``,
    ``OFFSET``, ``PQStat``, ``utils.id2rgb``, ``rgb2id``). If the real
    package is importable nothing happens and True is returned; otherwise a
    small stand-in providing exactly those names is registered in
    ``sys.modules`` (and patched into already imported mmdet modules), and
    False is returned. Call it before building panoptic pipelines/metrics.
    """
    try:
        import panopticapi.evaluation  # noqa: F401
        import panopticapi.utils  # noqa: F401
        return not getattr(sys.modules['panopticapi'], 'AGVM_STANDIN', False)
    except ImportError:
        pass
    pkg = types.ModuleType('panopticapi')
    pkg.AGVM_STANDIN = True
    pkg.__path__ = []
    utils = types.ModuleType('panopticapi.utils')
    utils.rgb2id, utils.id2rgb = _rgb2id, _id2rgb
    evaluation = types.ModuleType('panopticapi.evaluation')
    evaluation.VOID, evaluation.OFFSET = 0, 256 * 256 * 256
    evaluation.PQStat, evaluation.PQStatCat = _PQStat, _PQStatCat
    pkg.utils, pkg.evaluation = utils, evaluation
    sys.modules.update({'panopticapi': pkg, 'panopticapi.utils': utils,
                        'panopticapi.evaluation': evaluation})
    patches = {
        'mmdet.evaluation.metrics.coco_panoptic_metric':
        dict(panopticapi=pkg, VOID=0, PQStat=_PQStat, id2rgb=_id2rgb,
             rgb2id=_rgb2id),
        'mmdet.evaluation.functional.panoptic_utils':
        dict(PQStat=_PQStat, rgb2id=_rgb2id),
        'mmdet.apis.det_inferencer': dict(VOID=0, id2rgb=_id2rgb),
    }
    for mod_name, attrs in patches.items():
        mod = sys.modules.get(mod_name)
        if mod is not None:
            for name, value in attrs.items():
                if getattr(mod, name, None) is None:
                    setattr(mod, name, value)
    return False
