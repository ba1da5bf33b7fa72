"""Rendering of one sample of the synthetic "shapes" data, from its own RNG.

Every image shows one to three textured *stuff* regions (smooth "sky",
noisy "grass", striped "wall") with some unlabeled clutter, and up to nine
randomly coloured, sized and rotated *thing* shapes that may occlude each
other. Masks are the visible parts only; objects that end up mostly hidden
(or mostly outside the image) are removed before rendering, so every drawn
shape is annotated.
"""
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .classes import SHAPES_STUFF_CLASSES, SHAPES_THING_CLASSES

# A shape is kept only if this much of its (analytic) area stays visible.
MIN_VISIBLE_FRACTION = 0.3
MIN_VISIBLE_PIXELS = 16


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
