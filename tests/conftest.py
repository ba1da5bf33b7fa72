import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs two workers on a 2-core machine: one torch thread
    # each, not two each fighting over the cores
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope='session')
def shapes_cwd(tmp_path_factory):
    """A working directory holding a small shapes dataset at data/shapes,
    where the configs expect it."""
    from agvm_mm.datasets import generate_shapes
    cwd = tmp_path_factory.mktemp('shapes_run')
    generate_shapes(str(cwd / 'data' / 'shapes'), num_train=16, num_val=4,
                    workers=1)
    return cwd


def run_tool(args, cwd, timeout=900, expect=0, env=None):
    """Run one of tools/* as a user would (``env``: more environment
    variables); fail the test with its output unless it exits with
    ``expect``."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1',
               **(env or {}))
    if args[0].endswith('.py'):
        args = [sys.executable] + args
    else:
        env['PYTHON'] = sys.executable
        args = ['bash'] + args
    # its own session: at the timeout the whole tree goes (torchrun's
    # workers too), or they would hold the output pipe open
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f'{args[1]} did not finish within {timeout} s:\n'
                    + out[-6000:])
    assert proc.returncode == expect, out[-6000:]
    return out


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` need a CUDA GPU: skipped without one."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (tools/gpu_check.sh)')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    """A child process that a failed or timed-out test left alive would
    keep pytest from exiting (multiprocessing joins its children at exit):
    end them, so that the session ends with its report."""
    import multiprocessing
    for proc in multiprocessing.active_children():
        proc.kill()
        proc.join()


def assert_same_training_state(path_a, path_b) -> dict:
    """Two mmengine checkpoints hold the same iteration, weights,
    optimizer state and AGVM state (factors, running averages, statistics
    count), bit for bit; returns the first, for more checks."""
    import torch
    a, b = (torch.load(p, map_location='cpu', weights_only=True)
            for p in (path_a, path_b))
    assert a['meta']['iter'] == b['meta']['iter']
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    for index, slots in a['optimizer']['state'].items():
        for name, value in slots.items():
            assert torch.equal(value, b['optimizer']['state'][index][name])
    assert a['optimizer']['agvm'] == b['optimizer']['agvm']
    return a

