# The tools are scripts (mmdet's layout); this file makes ``tools.harness``
# and ``tools.analysis_tools`` importable from the tests and from each other.
