# The two commands a user needs: `make demo` and `make test`.  Both set up everything
# they need (a virtual environment with the package, its test tools and a headless
# browser) on a machine with only Python 3.11+, pip and make.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test setup browser lint clean bench

demo: $(STAMP)
	$(VENV)/bin/pairproxy demo

test: $(STAMP) browser
	$(PY) -m ruff check pairproxy tests benchmarks
	$(PY) -m mypy
	$(PY) -m pytest

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's chromium drives the mirror-panel tests (browser downloads are not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/run.py

lint: $(STAMP)
	$(PY) -m ruff check pairproxy tests benchmarks
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache pairproxy/_speedups.c pairproxy/_speedups.*.so
