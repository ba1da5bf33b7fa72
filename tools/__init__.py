# The tools are scripts (mmdet's layout); this file makes their shared code
# (``tools.harness``, ``tools.check``, ``tools.paper_regime``,
# ``tools.runner_setup``, ``tools.analysis_tools``, ``tools.checkout``)
# importable from the tests and from each other. A script finds this
# checkout through ``tools/checkout.py``.
