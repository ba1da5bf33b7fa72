"""The config check of tools/check_config.py (:mod:`.check_config`) and the
old import path of the launcher (:mod:`.launch`, now tools/runner_setup.py).
Nothing here is imported by ``import agvm_mm``."""
