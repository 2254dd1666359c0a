# Two commands do all the set-up on a fresh Debian machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench fuzz docs clean system-deps test-services test-floors test-arm64 test-pi-mix \
	test-boot

# Debian packages (libzbar0, chromium, fonts-thai-tlwg, postgresql, ...): installed when
# missing (as root or with password-less sudo); test-services also starts PostgreSQL.
system-deps:
	bash .ci/system-deps.sh

test-services:
	bash .ci/system-deps.sh --services

$(BIN)/appliance: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,fuzz,hub]'
	touch $@

demo: system-deps $(BIN)/appliance
	$(BIN)/appliance demo

test: test-services lint
	$(BIN)/python -m pytest

# The static checks, also run first by make test: ruff's rules and its formatter (the tree is
# kept formatted: `ruff format .` fixes it), the layer contracts and the types.
lint: $(BIN)/appliance
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The screens' and the hub's Thai (docs/screens.md, "Translations"): the strings marked in
# each part merged into its .po (translate the new entries there, then run this again) and
# the committed .mo compiled from it; tests/web/test_i18n_catalogue.py extracts the same way.
.PHONY: translations
translations: $(BIN)/appliance
	set -e; for part in web hub; do cd $(CURDIR)/$$part; \
	  $(CURDIR)/$(BIN)/pybabel -q extract -F babel.cfg -k lazy_gettext --no-location \
	    --sort-output -o translations/messages.pot .; \
	  $(CURDIR)/$(BIN)/pybabel -q update -i translations/messages.pot -d translations \
	    --ignore-obsolete; \
	  rm translations/messages.pot; \
	  $(CURDIR)/$(BIN)/pybabel compile -d translations --statistics; done

# The pyproject floors are true: the lowest allowed versions (Python 3.11, .venv-floors)
# pass the core suites (.ci/test-floors.sh; needs network to PyPI).
test-floors:
	bash .ci/test-floors.sh

# The core suites (.ci/core-tests.txt) on aarch64 under qemu-user, in a sysroot of Debian
# Bookworm's arm64 Python 3.11 with the aarch64 wheels (.ci/test-arm64.sh; cached in .cache/).
test-arm64:
	bash .ci/test-arm64.sh

# The core suites with the versions a Pi gets: Bookworm's python3-numpy, -pil, -cryptography
# ... seen through --system-site-packages (.ci/test-pi-mix.sh; needs root for apt).
test-pi-mix:
	bash .ci/test-pi-mix.sh

# Boot the device image and the centre under qemu-system-x86_64 (KVM when usable), soak and
# check every unit from inside the guest (.ci/test-boot.sh, tests/boot/; needs root; the
# root is cached under .cache/boot). Table: benchmarks/results/boot-amd64.json.
test-boot: $(BIN)/appliance
	bash .ci/test-boot.sh

bench: $(BIN)/appliance
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/report.py

# atheris, byte-level and structure-aware inputs: inputs that raise or need the verifier's
# net become seeds at once, slow ones (> 5 ms CPU) once confirmed uninstrumented. Before a
# release: 10 million executions (about 3 h here; FUZZ_RUNS=... for a shorter run).
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?= 43200
fuzz: $(BIN)/appliance
	mkdir -p .fuzz/corpus .fuzz/candidates
	FUZZ_STRUCTURED=1 FUZZ_SEEDS_DIR=tests/fuzz/seeds FUZZ_CANDIDATES_DIR=.fuzz/candidates \
		$(BIN)/python tests/fuzz/fuzz_verify.py .fuzz/corpus -runs=$(FUZZ_RUNS) \
		-max_total_time=$(FUZZ_SECONDS) \
		-timeout=5 -rss_limit_mb=2048 -artifact_prefix=.fuzz/
	$(BIN)/python tests/fuzz/confirm_seeds.py .fuzz/candidates tests/fuzz/seeds

clean:
	rm -rf $(VENV) demo .pytest_cache

# Regenerate the committed screenshots and interop report (tests write them to a temporary
# folder otherwise, so a test run never rewrites tracked files).
docs: $(BIN)/appliance
	APPLIANCE_WRITE_DOCS=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/web/test_screen_live_browser.py tests/core/test_hc1_dgc_testdata.py -k "kiosk_idle or other_screens or report"
