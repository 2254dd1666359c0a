# Two commands do all the set-up on a fresh Debian machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench fuzz clean system-deps test-services test-floors

# Debian packages (libzbar0, chromium, fonts-thai-tlwg, postgresql, ...): installed when
# missing (as root or with password-less sudo); test-services also starts PostgreSQL.
system-deps:
	bash .ci/system-deps.sh

test-services:
	bash .ci/system-deps.sh --services

$(BIN)/appliance: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,fuzz]'
	touch $@

demo: system-deps $(BIN)/appliance
	$(BIN)/appliance demo

test: test-services $(BIN)/appliance
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The pyproject floors are true: the lowest allowed versions (Python 3.11, .venv-floors)
# pass the core suites (.ci/test-floors.sh; needs network to PyPI).
test-floors:
	bash .ci/test-floors.sh

bench: $(BIN)/appliance
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/report.py

fuzz: $(BIN)/appliance
	$(BIN)/python tests/fuzz/fuzz_verify.py -max_total_time=3600

clean:
	rm -rf $(VENV) demo .pytest_cache
