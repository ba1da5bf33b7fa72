"""The experiment harness behind ``tools/reproduce.py``,
``tools/analysis_tools/gradient_variance.py`` and ``tools/main_job.py``.

* ``optims``: one record per optimizer of the grids (name, title, wrapper
  fragment, variance rule, AGVM or not);
* ``grid``: families, metrics, batch specs, cells, paper configs by name;
* ``plan_cluster`` / ``plan_local``: a grid as cells of the paper's configs
  (slurm or torchrun) or of the shapes configs (one process);
* ``launch``: run the cells, one at a time or several at once;
* ``results`` / ``report``: read a cell's numbers back, write the tables;
* ``process`` / ``schedules`` / ``plot``: what the tools share: the
  subprocess launcher, the lr rules and schedule rescaler, the figures.

The names below are what ``tools/reproduce.py`` (and its tests) use.
"""
from .grid import (CONFIG_SUBDIR, FAMILIES, STATE_FILE, TRAIN_LOG, Cell,
                   find_paper_config, normalize_family, parse_batches,
                   parse_config_name, restrict_cells)
from .launch import run_cell, run_grid, slot_env
from .optims import OPTIMIZERS, OPTIMS, normalize_optim
from .plan_cluster import ClusterOptions, plan_cluster
from .plan_local import LocalOptions, data_size, plan_local
from .report import DASH, write_report
from .results import NO_DETECTIONS, read_cell_result
from .schedules import parse_base_lr

__all__ = [
    'CONFIG_SUBDIR', 'FAMILIES', 'STATE_FILE', 'TRAIN_LOG', 'Cell',
    'find_paper_config', 'normalize_family', 'parse_batches',
    'parse_config_name', 'restrict_cells', 'run_cell', 'run_grid',
    'slot_env', 'OPTIMIZERS', 'OPTIMS', 'normalize_optim', 'ClusterOptions',
    'plan_cluster', 'LocalOptions', 'data_size', 'plan_local', 'DASH',
    'write_report', 'NO_DETECTIONS', 'read_cell_result', 'parse_base_lr'
]
