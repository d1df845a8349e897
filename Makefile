# Two entry points: `make demo` (the pilot, then, in a terminal, its dashboard on http://127.0.0.1:8000/) and `make test`. Both build .venv from scratch when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/tirtasu demo

# the suite on every core (pytest-xdist); tests of the servers and the browser share one worker
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_dashboard.py
	$(BIN)/python benchmarks/bench_leaks.py --full
	$(BIN)/python benchmarks/bench_leak_years.py
	$(BIN)/python benchmarks/bench_placement.py

clean:
	rm -rf $(VENV) .tirtasu build src/*.egg-info
