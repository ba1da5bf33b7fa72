# The tools are scripts (mmdet's layout); this file makes their shared code
# (``tools.harness``, ``tools.check``, ``tools.paper_regime``,
# ``tools.runner_setup``, ``tools.analysis_tools``) importable from the tests
# and from each other.
