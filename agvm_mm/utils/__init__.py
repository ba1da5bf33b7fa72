"""Only the old import path of the launcher (:mod:`.launch`, now
tools/runner_setup.py) that tests/test_configs.py still uses; remove the
folder with it. Nothing here is imported by ``import agvm_mm``."""
