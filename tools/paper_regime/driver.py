"""The loop that trains a growing plan of tools/reproduce.py runs, two at a
time, continuing whatever an earlier call (or another machine, through the
committed results) finished: the paper-regime grid and the plan-batch
experiment share it."""
import argparse
import hashlib
import json
import os
import os.path as osp
import subprocess
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Sequence

from tools.checkout import ROOT
from tools.harness.process import tool_env

from .grid import Record, Run, reproduce_argv


def parse_args(doc: str, work_root: str,
               argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options every driver takes (``doc``: its docstring)."""
    parser = argparse.ArgumentParser(
        description=doc.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split('\n', 1)[1])
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run (default 1)')
    parser.add_argument('--work-root', default=work_root)
    parser.add_argument('--out', default='docs/results')
    parser.add_argument('--plan', action='store_true',
                        help='print the runs planned so far, run nothing')
    parser.add_argument('--report-only', action='store_true')
    return parser.parse_args(argv)


def drive(label: str, collect: Callable[[], Dict[str, Record]],
          plan: Callable[[Dict[str, Record]], List[Run]],
          report: Callable[[Dict[str, Record]], None], work_root: str,
          jobs: int, threads: int, backbone: str,
          between: Optional[Callable[[Dict[str, Record]], None]] = None
          ) -> Dict[str, Record]:
    """Train every run of ``plan(done)`` not yet done, ``jobs`` at a time
    with ``threads`` torch threads each, until the plan has nothing left.

    ``collect()`` reads the finished runs (committed records first, then
    the work dirs); ``report(done)`` writes the results after each run
    that finishes; ``between(done)``, when given, runs after each (the
    experiment's measurement, which later runs depend on). ``backbone`` is
    the pretrained checkpoint's id (:func:`checkpoint_id`), written beside
    each run's work root with the commit that trains it."""
    env = tool_env(threads=threads)
    os.makedirs(work_root, exist_ok=True)
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    done = collect()
    running: Dict[object, Run] = {}
    failed = set()  # not retried in this call
    with ThreadPoolExecutor(jobs) as pool:
        while True:
            if between is not None:
                between(done)
            busy = {r.name for r in running.values()}
            todo = [r for r in plan(done) if r.name not in done
                    and r.name not in busy and r.name not in failed]
            # runs another process trains now take a slot, and are read
            # back once they finish
            elsewhere = [r for r in todo if in_progress(r, work_root)]
            slots = jobs - len(running) - len(elsewhere)
            for run in [r for r in todo if r not in elsewhere][:max(0,
                                                                   slots)]:
                print(f'[{label}] start {run.name}', flush=True)
                root = run.work_root(work_root)
                for kind, text in (('commit', commit),
                                   ('backbone', backbone)):
                    with open(f'{root}.{kind}', 'w') as f:
                        f.write(text + '\n')
                running[pool.submit(_call, reproduce_argv(run, work_root),
                                    env, root + '.log')] = run
            if not running and not elsewhere:
                return done
            if running:
                finished, _ = wait(list(running), timeout=60,
                                   return_when=FIRST_COMPLETED)
            else:  # only runs of another process: poll
                finished = set()
                time.sleep(60)
            before = set(done)
            done = collect()
            for future in finished:
                run = running.pop(future)
                if run.name not in done:
                    failed.add(run.name)
                    print(f'[{label}] {run.name}: failed (see '
                          f'{run.work_root(work_root)}.log)', flush=True)
            for name in sorted(set(done) - before):
                rec = done[name]
                print(f'[{label}] {name}: '
                      + ('diverged' if rec.diverged else f'{rec.bbox_mAP} mAP'),
                      flush=True)
            if set(done) != before:
                report(done)


def in_progress(run: Run, work_root: str, quiet: float = 300.0) -> bool:
    """Whether another process seems to train ``run`` now (a second driver,
    or one stopped while its runs went on): a file under its work root
    changed within ``quiet`` seconds."""
    newest = 0.0
    for folder, _, files in os.walk(run.work_root(work_root)):
        for name in files:
            try:
                newest = max(newest, osp.getmtime(osp.join(folder, name)))
            except OSError:  # removed meanwhile
                pass
    return time.time() - newest < quiet


def checkpoint_id(path: str) -> str:
    """The checkpoint's sha256 prefix and the held-out accuracy its
    settings file records: which backbone a run started from."""
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    with open(osp.splitext(path)[0] + '.json') as f:
        accuracy = json.load(f)['accuracy']
    return f'{digest} {accuracy:.2f}'


def _call(argv: List[str], env: dict, log: str) -> Optional[int]:
    """One run, its output straight into ``log`` (appended: a run continued
    later) and in its own session, so that it outlives this driver: a run
    whose output went through the driver died with it (a broken pipe)
    before it recorded its result, and the next driver started it over."""
    with open(log, 'a') as f:
        return subprocess.run(argv, env=env, stdout=f,
                              stderr=subprocess.STDOUT,
                              cwd=ROOT, start_new_session=True).returncode
