# Two commands for a fresh machine:
#   make train   installs everything into .venv/ and trains the default (aggression) fighter
#   make test    installs everything into .venv/ and runs the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CONFIG ?= configs/aggression.yaml

.PHONY: install train test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU build of torch first, from the pinned version (see pyproject.toml).
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

train: install
	$(PY) train.py $(CONFIG)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m envs.bench

clean:
	rm -rf $(VENV) .pytest_cache
