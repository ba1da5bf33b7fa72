import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def shapes_cwd(tmp_path_factory):
    """A working directory holding a small shapes dataset at data/shapes,
    where the configs expect it."""
    from agvm_mm.datasets import generate_shapes
    cwd = tmp_path_factory.mktemp('shapes_run')
    generate_shapes(str(cwd / 'data' / 'shapes'), num_train=16, num_val=4,
                    workers=1)
    return cwd


def run_tool(args, cwd, timeout=900):
    """Run one of tools/* as a user would; fail the test with its output."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    if args[0].endswith('.py'):
        args = [sys.executable] + args
    else:
        env['PYTHON'] = sys.executable
        args = ['bash'] + args
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out
