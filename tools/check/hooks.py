"""Custom hooks a config dropped from its base configs.

A list in an mmengine config replaces the base's list, so
``custom_hooks = [dict(type='AGVMHook')]`` on top of RTMDet or YOLOX
silently drops their EMA, pipeline-switch, mode-switch and sync-norm hooks.
"""
import os.path as osp
from typing import List, Tuple

from mmengine.config import Config

from .window import type_name

#: The form that keeps the base's hooks (mmengine gives a python config its
#: bases as ``_base_``; ``{{_base_.custom_hooks}}`` cannot be unpacked).
KEEP_FORM = ("custom_hooks = [*_base_.get('custom_hooks', []), "
             "dict(type='AGVMHook')]")


def base_hooks(filename: str) -> List[Tuple[str, List[str]]]:
    """Each base config of ``filename`` (as written in its ``_base_``) with
    the types of the custom hooks it holds (its own bases' included)."""
    if not filename or not filename.endswith('.py') or \
            not osp.isfile(filename):
        return []
    out = []
    # mmengine 0.10's own helpers, so that 'mmdet::...' bases resolve as
    # they do when the config loads
    for base in Config._get_base_files(filename):
        path, _ = Config._get_cfg_path(base, filename)
        base_cfg = Config.fromfile(path)
        out.append((base, [type_name(h) for h in
                           base_cfg.get('custom_hooks') or []]))
    return out


def dropped_hooks(cfg: Config) -> List[str]:
    """Problems for custom hooks of the base configs that ``cfg`` (loaded
    from a file) no longer has, each saying how to keep them."""
    kept = {type_name(h) for h in cfg.get('custom_hooks') or []}
    problems = []
    for base, hooks in base_hooks(getattr(cfg, 'filename', None) or ''):
        lost = [h for h in hooks if h not in kept]
        if lost:
            problems.append(
                f'custom_hooks: the config drops {", ".join(lost)} of its '
                f'base {base} (a list in a config replaces the base\'s '
                f'list). Keep them with {KEEP_FORM}.')
    return problems
