# Two commands for a fresh machine:
#   make train   installs everything into .venv/ and trains the default (aggression) fighter
#   make test    installs everything (chromium too, for the browser tests), lints, runs the test
#                suite, and builds, installs and smoke-tests the wheel
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CONFIG ?= configs/aggression.yaml

.PHONY: install chromium lint train test wheel-smoke bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools
	# The CPU build of torch first, from the pinned version (see pyproject.toml).
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The browser tests run web/arena-client.js and web/policy.js in Debian's chromium (needs root or sudo).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
		echo "installing chromium for the browser tests (apt-get)"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium > /dev/null; \
	fi

# ruff's lint rules and formatter (pyproject.toml); the import layers are checked by tests/test_layers.py.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

train: install
	$(PY) train.py $(CONFIG)

# The suite runs on two pytest-xdist workers, each taking whole test files (a file's module
# fixtures are built once). The files that never step an arena go to one worker first while
# the other compiles the arena's numba kernels (1-2 minutes on a fresh checkout), so the
# kernels are compiled once, not by both workers at once (tests/conftest.py;
# docs/benchmarks.md, "The test suite's time").
test: install chromium lint
	$(PY) -m pytest -q -n 2 --dist loadfile
	bash tests/wheel_smoke.sh $(PYTHON)

wheel-smoke: install
	bash tests/wheel_smoke.sh $(PYTHON)

bench: install
	$(PY) -m envs.bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
