"""Reading a cell's result back from its work dir: mmengine's logs, the
divergence marker, and the state the launcher wrote."""
import glob
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from agvm_mm.hooks.divergence_hook import MARKER as DIVERGED_MARKER
from .grid import FAMILIES, STATE_FILE, TRAIN_LOG, Cell, family_metrics


@dataclass
class CellResult:
    """What a cell's work dir says.

    Args:
        status (str): ``'done'``, ``'diverged'``, ``'failed'``,
            ``'running'``, ``'not run'`` or ``'stale'`` (ran with other
            settings).
        values (dict): Metric key -> value, in the log's units.
        source (str, optional): File the values were read from.
        reason (str, optional): Why there is no number (or a note on it).
    """
    status: str
    values: Dict[str, float] = field(default_factory=dict)
    source: Optional[str] = None
    reason: Optional[str] = None


def _json_records(path: str) -> List[dict]:
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
    return records


_NUMBER = r'(-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))'


def read_metrics(work_dir: str, keys: Sequence[str]
                 ) -> Tuple[Dict[str, float], Optional[str]]:
    """The last evaluated value of each key in the run's logs: mmengine's
    json log ``<ts>/vis_data/<ts>.json`` (or ``scalars.json``), else the text
    log ``<ts>/<ts>.log``; the newest timestamp dir that has them wins.
    Returns ``(values, file)``, ``({}, None)`` if none is found."""
    for run in sorted(glob.glob(osp.join(work_dir, '*/')), reverse=True):
        stamp = osp.basename(osp.dirname(run))
        candidates = [osp.join(run, 'vis_data', f'{stamp}.json'),
                      osp.join(run, 'vis_data', 'scalars.json')]
        for path in candidates:
            if not osp.exists(path):
                continue
            values = {}
            for record in _json_records(path):
                for key in keys:
                    if key in record:
                        values[key] = float(record[key])
            if values:
                return values, path
        path = osp.join(run, f'{stamp}.log')
        if osp.exists(path):
            with open(path, errors='replace') as f:
                text = f.read()
            values = {}
            for key in keys:
                found = re.findall(re.escape(key) + r':\s*' + _NUMBER, text)
                if found:
                    values[key] = float(found[-1])
            if values:
                return values, path
    return {}, None


def _logged_error(work_dir: str) -> str:
    """The last error line mmengine logged into the cell's output."""
    path = osp.join(work_dir, TRAIN_LOG)
    if not osp.exists(path):
        return ''
    with open(path, errors='replace') as f:
        errors = [line.strip() for line in f if ' - ERROR - ' in line]
    if not errors:
        return ''
    message = errors[-1].split(' - ERROR - ', 1)[1].rsplit(' - ', 1)[-1]
    return f' (logged: {message[:160]})'


NO_DETECTIONS = 'The testing results of the whole dataset is empty'


def _logged_no_detections(work_dir: str) -> bool:
    """Whether mmdet's CocoMetric found no detections at all in the run."""
    path = osp.join(work_dir, TRAIN_LOG)
    if not osp.exists(path):
        return False
    with open(path, errors='replace') as f:
        return any(NO_DETECTIONS in line for line in f)


def read_json(path: str) -> Optional[dict]:
    """The JSON file at ``path``, or None where there is none yet."""
    if not osp.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_state(work_dir: str) -> Optional[dict]:
    return read_json(osp.join(work_dir, STATE_FILE))


def write_state(work_dir: str, **state) -> None:
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, STATE_FILE)
    with open(path + '.tmp', 'w') as f:
        json.dump(state, f, indent=1)
    os.replace(path + '.tmp', path)


def read_cell_result(cell: Cell) -> CellResult:
    """What a cell's work dir says: its divergence marker, else its final
    metrics (only after the tool saw the training exit normally), else why
    there is no number."""
    metric_keys = [m.key for m in family_metrics(cell.family)]
    eval_keys = [m.key for m in FAMILIES[cell.family].metrics]
    state = read_state(cell.work_dir)
    if state and not cell.reason and state.get('fingerprint') not in (
            None, cell.fingerprint()):
        return CellResult('stale', reason='ran with other settings than '
                          'this grid asks for (rerun to replace it)')
    marker = osp.join(cell.work_dir, DIVERGED_MARKER)
    if osp.exists(marker):
        with open(marker) as f:
            info = json.load(f)
        return CellResult('diverged', source=marker, reason=(
            f'diverged at iteration {info.get("iter")} '
            f'({info.get("reason")}, loss {info.get("loss")})'))
    if cell.reason:
        return CellResult('not run', reason=cell.reason)
    if state is None:
        return CellResult('not run', reason='not run')
    if state.get('status') == 'done':
        values, source = read_metrics(cell.work_dir, metric_keys)
        evaluated = any(k in values for k in eval_keys)
        coco_keys = [k for k in eval_keys if k.startswith('coco/')]
        if not evaluated and coco_keys and _logged_no_detections(
                cell.work_dir):
            # mmdet's CocoMetric logs an error and returns no metric when a
            # model predicts nothing at all: that is an mAP of 0
            values.update((k, 0.0) for k in coco_keys)
            return CellResult('done', values,
                              source or osp.join(cell.work_dir, TRAIN_LOG),
                              reason='no detections on the whole val set')
        if not evaluated:
            return CellResult('failed', values, reason='training ended but '
                              f'no final metric {eval_keys} in its logs' +
                              _logged_error(cell.work_dir))
        return CellResult('done', values, source)
    if state.get('status') == 'running':
        return CellResult('running', reason='interrupted or still running')
    return CellResult('failed', reason=state.get('reason') or 'failed')


def is_finished(cell: Cell) -> bool:
    """A cell with final metrics or a divergence marker: skipped."""
    return read_cell_result(cell).status in ('done', 'diverged')
