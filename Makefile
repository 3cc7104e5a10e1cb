# One virtual environment, built from pyproject.toml; every target goes through it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint fuzz bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: install
	$(VENV)/bin/trainforge up

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Test files run in parallel processes (each keeps its module fixtures): most of a test's time is
# spent waiting on real servers and workers, so more processes than cores pay off.
TEST_PROCS ?= 4

test: install lint
	$(PY) -m pytest -n $(TEST_PROCS) --dist loadfile

# The fuzz test of the suite with many more examples per operation (the suite runs a few, derandomized).
fuzz: install
	TRAINFORGE_FUZZ_EXAMPLES=$${TRAINFORGE_FUZZ_EXAMPLES:-200} $(PY) -m pytest tests/api/test_fuzz.py -q

bench: install
	$(PY) bench/run_all.py $(BENCH)

clean:
	rm -rf $(VENV) .trainforge .pytest_cache .ruff_cache .mypy_cache
