# make train : install (if needed), generate the shapes data, train RetinaNet
#              with AGVM, evaluate, plot the AGVM factors (the main job)
# make test  : install (if needed) and run the whole test suite
PY := .venv/bin/python

.PHONY: install train test benchmark
install:
	bash tools/install.sh

train: install
	$(PY) tools/main_job.py

test: install
	$(PY) -m pytest tests

benchmark: install
	$(PY) tools/benchmark_overhead.py
