"""Only for tests/test_configs.py, which imports ``_replace_syncbn`` from
here: the launcher moved to tools/runner_setup.py. Remove this module (and
agvm_mm/utils/) once that test imports it from ``tools.runner_setup``."""
from tools.runner_setup import _replace_syncbn  # noqa: F401
