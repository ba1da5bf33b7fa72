"""The paper-regime benchmark behind ``tools/benchmark_paper_regime.py``
(whose docstring describes the grid and the verdict rule).

* ``grid``: the runs (:class:`Run`), how tools/reproduce.py trains one, its
  result (:class:`Record`), the lr sweeps and the plan, which grows as
  results arrive (:func:`plan`, :func:`collect`);
* ``report``: the rule's figures at a batch (:func:`compare`), the verdict
  at the largest and the files written to ``--out`` (:func:`write_report`).
"""
from .grid import (ARMS, FAMILY, REF_BATCH, Record, Run, collect, plan,
                   read_record, reproduce_argv)
from .report import compare, verdict, write_report

__all__ = [
    'ARMS', 'FAMILY', 'REF_BATCH', 'Record', 'Run', 'collect', 'compare',
    'plan', 'read_record', 'reproduce_argv', 'verdict', 'write_report'
]
