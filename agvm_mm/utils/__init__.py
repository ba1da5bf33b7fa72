"""Tools' helpers that live in the package: the launcher of tools/train.py
and tools/test.py (:mod:`.launch`) and the config check
(:mod:`.check_config`). Nothing here is imported by ``import agvm_mm``."""
