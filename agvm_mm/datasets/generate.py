"""Writes the synthetic "shapes" data (:func:`~.render.render_sample`) in
COCO / COCO-panoptic / mmseg layouts, consumable by the stock mmdet and
mmseg dataset classes and metrics; a finished set is reused (``meta.json``).

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
"""
import contextlib
import io
import json
import multiprocessing
import os
import os.path as osp
import shutil
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from .classes import (SHAPES_CLASSES, SHAPES_STUFF_CLASSES,
                      SHAPES_THING_CLASSES)
from .render import render_sample

GENERATOR_VERSION = 1  # bump whenever the output bytes change
ALL_TASKS = ('instance', 'panoptic', 'semantic')
SPLITS = ('train', 'val')


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
