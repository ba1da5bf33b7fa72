# make train : install (if needed), generate the shapes data, train RetinaNet
#              with AGVM, evaluate, plot the AGVM factors (the main job)
# make test  : install (if needed) and run the whole test suite (2 workers)
# make zoo   : check ~25 popular stock mmdet / mmseg configs with AGVM
#              (tools/zoo_check.py; a few minutes on 2 cores)
PY := .venv/bin/python

.PHONY: install train test benchmark zoo
install:
	bash tools/install.sh

train: install
	$(PY) tools/main_job.py

test: install
	$(PY) -m pytest -n 2 tests

benchmark: install
	$(PY) tools/benchmark_overhead.py

zoo: install
	$(PY) tools/zoo_check.py
