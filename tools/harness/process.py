"""Run a tool as a subprocess: the one launcher of ``tools/reproduce.py``'s
cells, the gradient-variance runs, the main job, the zoo check and the
critical-batch and paper-regime benchmarks."""
import os
import os.path as osp
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from tools.checkout import ROOT

# Children still running: killed together when a grid is interrupted
# (Ctrl-C reaches the main thread, not the job threads that wait on them).
_LIVE: Dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def tool_env(extra: Optional[Dict[str, str]] = None,
             threads: Optional[int] = None) -> Dict[str, str]:
    """The environment of a tool's run.

    Args:
        extra (dict, optional): Variables added to this process's ones.
        threads (int, optional): Fixed number of torch threads (OpenMP and
            MKL). None: as inherited.

    Returns:
        dict: The environment, with this checkout first on PYTHONPATH (the
        tools import ``agvm_mm`` and ``tools.harness`` from it) and
        unbuffered output (the logs stream while the tool runs).
    """
    env = dict(os.environ, **(extra or {}))
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env['PYTHONUNBUFFERED'] = '1'
    if threads is not None:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    return env


def train_command(config: str, work_dir: str, nproc: int = 1) -> List[str]:
    """``tools/train.py`` on one process, ``tools/dist_train.sh`` (torchrun,
    gloo without a GPU) on ``nproc``."""
    if nproc == 1:
        return [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
                '--work-dir', work_dir]
    return ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config,
            str(nproc), '--work-dir', work_dir]


def free_port() -> int:
    """A TCP port free on this machine (for torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@dataclass
class ToolResult:
    """What :func:`run_tool` saw.

    Args:
        returncode (int, optional): Exit status; None: killed at the
            timeout.
        lines (list[str]): The output's last lines (all of them with
            ``keep=None``).
    """
    returncode: Optional[int]
    lines: List[str]

    @property
    def output(self) -> str:
        return ''.join(self.lines)


def run_tool(argv: Sequence[str], env: Optional[Dict[str, str]] = None,
             cwd: Optional[str] = None, log_path: Optional[str] = None,
             on_line: Optional[Callable[[str], None]] = None,
             timeout: Optional[float] = None,
             keep: Optional[int] = 200) -> ToolResult:
    """Run ``argv`` with stdout and stderr merged, line by line into
    ``log_path`` and ``on_line``.

    Args:
        argv (Sequence[str]): The command.
        env (dict, optional): Its environment (see :func:`tool_env`).
        cwd (str, optional): Its working directory.
        log_path (str, optional): File that receives the whole output.
        on_line (callable, optional): Called with each output line.
        timeout (float, optional): Seconds before the child is killed.
        keep (int, optional): Lines kept for the result (None: all).

    Returns:
        ToolResult: Exit status (None after the timeout) and output lines.
        Any exception while waiting (Ctrl-C) kills the child and is raised.
    """
    lines: List[str] = []
    log = open(log_path, 'w') if log_path else None
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                errors='replace')
        with _LIVE_LOCK:
            _LIVE[proc.pid] = proc

        def pump() -> None:
            for line in proc.stdout:
                if log:
                    log.write(line)
                lines.append(line)
                if keep is not None:
                    del lines[:-keep]
                if on_line:
                    on_line(line)

        # a thread reads, so that the wait below can time out
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            return ToolResult(None, lines)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(proc.pid, None)
        reader.join(30)
        return ToolResult(returncode, lines)
    finally:
        if log:
            log.close()


def kill_all() -> None:
    """Kill every child :func:`run_tool` is still waiting for."""
    with _LIVE_LOCK:
        for proc in _LIVE.values():
            proc.kill()
