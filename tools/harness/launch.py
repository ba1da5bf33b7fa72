"""Launching a grid's cells, one at a time or several at once, with one
progress line per cell start and end."""
import os
import os.path as osp
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence

from agvm_mm.hooks.divergence_hook import MARKER as DIVERGED_MARKER
from .grid import TRAIN_LOG, Cell, family_metrics
from .process import kill_all, run_tool, tool_env
from .report import format_value
from .results import (CellResult, is_finished, read_cell_result, read_state,
                      write_state)

# Set while a grid stops after Ctrl-C or a job's error: the cells that end
# with an error then were interrupted, not failed.
_STOPPING = threading.Event()


def _echo(line: str) -> None:
    print(line, flush=True)


def _fmt_time(seconds: Optional[float]) -> str:
    if seconds is None:
        return '?'
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def prepare_cell(cell: Cell) -> None:
    """Write the cell's generated config, if any."""
    if cell.config_text is None:
        return
    os.makedirs(osp.dirname(cell.config), exist_ok=True)
    with open(cell.config, 'w') as f:
        f.write(cell.config_text)


def _error_reason(log_lines: Sequence[str], returncode: int,
                  log_path: str) -> str:
    for line in reversed(log_lines):
        line = line.strip()
        if re.match(r'^[\w.]*(Error|Exception)\b', line):
            return f'exit code {returncode}: {line[:200]} (log: {log_path})'
    return f'exit code {returncode} (log: {log_path})'


def run_cell(cell: Cell, verbose: bool = False, timeout: Optional[float]
             = None, cwd: str = '.', echo: Callable[[str], None] = None,
             extra_env: Optional[Dict[str, str]] = None) -> CellResult:
    """Train one cell as a subprocess (its output into
    ``<work_dir>/reproduce_train.log``, streamed with ``verbose``) and read
    its result back. ``extra_env``: variables for this run only (the job
    slot's threads or GPU, see :func:`run_grid`)."""
    echo = echo or _echo
    prepare_cell(cell)
    marker = osp.join(cell.work_dir, DIVERGED_MARKER)
    if osp.exists(marker):
        os.remove(marker)
    argv = list(cell.argv)
    if osp.exists(osp.join(cell.work_dir, 'last_checkpoint')) and \
            '--resume' not in argv:
        argv.append('--resume')  # continue an interrupted cell
    started = time.time()

    def state(**fields) -> None:
        write_state(cell.work_dir, fingerprint=cell.fingerprint(),
                    command=cell.command_line(), info=cell.info,
                    started=started, **fields)

    state(status='running', config=cell.config,
          source_config=cell.source_config)
    log_path = osp.join(cell.work_dir, TRAIN_LOG)

    def show(line: str) -> None:
        if verbose:
            echo(f'    {cell.name} | ' + line.rstrip('\n'))

    try:
        result = run_tool(argv, tool_env(dict(cell.env, **(extra_env or {}))),
                          cwd, log_path, show, timeout)
    except BaseException:  # Ctrl-C: the child is stopped, keep the state
        state(status='failed', reason='interrupted')
        raise
    finished = time.time()
    if result.returncode is None:
        state(status='failed', reason=f'timed out after {timeout:g} s '
              f'(log: {log_path})', seconds=finished - started)
    elif _STOPPING.is_set() and result.returncode != 0:
        state(status='failed', reason='interrupted')
    elif result.returncode == 0:
        state(status='done', finished=finished, seconds=finished - started)
    else:
        state(status='failed', returncode=result.returncode,
              reason=_error_reason(result.lines, result.returncode,
                                   log_path),
              finished=finished, seconds=finished - started)
    return read_cell_result(cell)


def _describe(cell: Cell, result: CellResult) -> str:
    if result.status == 'done':
        return ', '.join(f'{m.label} {format_value(result, m)}'
                         for m in family_metrics(cell.family)
                         if m.key in result.values)
    if result.status == 'diverged':
        return f'NaN ({result.reason})'
    return f'{result.status}: {result.reason}'


def slot_env(slot: int, jobs: int, cell: Cell,
             gpus: Optional[int] = None) -> Dict[str, str]:
    """Environment of job slot ``slot`` when ``jobs`` cells run at once:
    the CPU threads split between the slots (unless ``OMP_NUM_THREADS`` is
    set) and, for local cells on a machine with several GPUs, one GPU per
    slot (unless ``CUDA_VISIBLE_DEVICES`` is set). Cluster cells pick their
    own GPUs."""
    env: Dict[str, str] = {}
    if jobs <= 1:
        return env
    if 'OMP_NUM_THREADS' not in os.environ:
        env['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // jobs))
    if cell.local and gpus and gpus > 1 and \
            'CUDA_VISIBLE_DEVICES' not in os.environ:
        env['CUDA_VISIBLE_DEVICES'] = str(slot % gpus)
    return env


def _gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except Exception:  # no torch here: cells run elsewhere
        return 0


def run_grid(cells: Sequence[Cell], dry_run: bool = False,
             force: bool = False, verbose: bool = False,
             timeout: Optional[float] = None, cwd: str = '.',
             echo: Callable[[str], None] = None, jobs: int = 1) -> None:
    """Run every runnable cell, ``jobs`` at a time (in grid order; each
    slot gets its share of the CPU threads and, on several GPUs, its own
    GPU: :func:`slot_env`), with one progress line per cell start and end
    (elapsed time and ETA)."""
    echo = echo or _echo
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, not {jobs}')
    todo = [c for c in cells if not c.reason]
    for cell in cells:
        if cell.reason:
            echo(f'[reproduce] {cell.name}: cannot run: {cell.reason}')
    if dry_run:
        for cell in todo:
            prepare_cell(cell)
            echo(f'[dry-run] {cell.name}: {cell.source_config}' +
                 (f' (G={cell.info["G"]})' if 'G' in cell.info else '') +
                 f' -> {cell.work_dir}')
            echo(cell.command_line())
        return
    total = len(todo)
    pending = []
    for index, cell in enumerate(todo, 1):
        tag = f'[reproduce {index}/{total}] {cell.name}'
        stale = read_cell_result(cell).status == 'stale'
        if (force or stale) and osp.isdir(cell.work_dir) and (
                read_state(cell.work_dir) or osp.exists(
                    osp.join(cell.work_dir, DIVERGED_MARKER))):
            backup = cell.work_dir.rstrip('/') + time.strftime(
                '.old-%Y%m%d_%H%M%S')
            shutil.move(cell.work_dir, backup)
            why = 'settings changed' if stale else '--force'
            echo(f'{tag}: {why}, previous run moved to {backup}')
        elif is_finished(cell):
            echo(f'{tag}: already finished, skipped ('
                 f'{_describe(cell, read_cell_result(cell))})')
            continue
        pending.append((tag, cell))
    if not pending:
        return
    jobs = min(jobs, len(pending))
    gpus = _gpu_count() if jobs > 1 and any(c.local for _, c in pending) \
        else 0
    start = time.time()
    durations: List[float] = []
    slots = list(range(jobs))
    lock = threading.Lock()

    def eta() -> str:
        left = len(pending) - len(durations)
        return _fmt_time(sum(durations) / len(durations) * left / jobs
                         if durations else None)

    def run_one(tag: str, cell: Cell) -> None:
        with lock:
            slot = slots.pop(0)
            env = slot_env(slot, jobs, cell, gpus)
            details = ', '.join(
                f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                for k, v in cell.info.items()
                if k in ('G', 'accumulation', 'iters', 'lr'))
            where = ''.join(f', {k}={v}' for k, v in env.items())
            echo(f'{tag}: start ({details}{where}) | elapsed '
                 f'{_fmt_time(time.time() - start)} | ETA {eta()}')
        t0 = time.time()
        try:
            result = run_cell(cell, verbose, timeout, cwd, echo, env)
        finally:
            with lock:
                slots.append(slot)
        with lock:
            durations.append(time.time() - t0)
            echo(f'{tag}: {_describe(cell, result)} in '
                 f'{_fmt_time(durations[-1])} | elapsed '
                 f'{_fmt_time(time.time() - start)} | ETA {eta()}')

    _STOPPING.clear()
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = []
    try:
        futures = [pool.submit(run_one, tag, cell) for tag, cell in pending]
        for future in futures:
            future.result()
    except BaseException:  # Ctrl-C or a job's error: stop every child
        _STOPPING.set()
        for future in futures:
            future.cancel()
        kill_all()
        raise
    finally:
        pool.shutdown(wait=True)
