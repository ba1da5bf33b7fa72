"""A stand-in for ``panopticapi``, which mmdet's panoptic loader and metric
import and which is on no package registry (:func:`ensure_panopticapi`)."""
import sys
import types
from collections import defaultdict
from typing import Dict, Optional, Tuple

import numpy as np


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
