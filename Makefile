# Every target bootstraps .venv itself: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TAPS   := $(sort $(wildcard tap-*))
# the project's own loader packages (meltano.yml's target-duckdb and target-postgres), installed beside
# the taps for their tests
LOADERS := target-duckdb-fastpath target-postgres-fastpath
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: venv lint test test-sdk-next demo bench sandbox clean dagster dagster-venv

$(STAMP): requirements-dev.txt $(foreach t,$(TAPS) $(LOADERS),$(t)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt $(foreach t,$(TAPS) $(LOADERS),-e ./$(t))
	touch $@

venv: $(STAMP)

# The Dagster environment (orchestrate/): its own venv, so that its packages never meet meltano's pins
DAGSTER_VENV  := orchestrate/.venv
DAGSTER_STAMP := $(DAGSTER_VENV)/.installed

$(DAGSTER_STAMP): orchestrate/requirements.txt
	test -x $(DAGSTER_VENV)/bin/python || $(PYTHON) -m venv $(DAGSTER_VENV)
	$(DAGSTER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DAGSTER_VENV)/bin/python -m pip install --quiet -r orchestrate/requirements.txt
	touch $@

dagster-venv: $(DAGSTER_STAMP)

## make dagster: `dagster dev` on http://127.0.0.1:3000 over meltano.yml's jobs and schedules, against the sandbox
dagster: $(STAMP) $(DAGSTER_STAMP)
	$(BIN)/python -m orchestrate.dev

## make lint: ruff over the repository (ruff.toml), mypy over each package (mypy.ini): the taps, and
## orchestrate/meltano_dagster against the Dagster venv's packages
lint: $(STAMP) $(DAGSTER_STAMP)
	$(BIN)/ruff check .
	set -e; for t in $(TAPS) $(LOADERS); do $(BIN)/mypy --config-file mypy.ini $$t/$$(echo $$t | tr - _); done
	$(BIN)/mypy --config-file mypy.ini --python-executable $(DAGSTER_VENV)/bin/python orchestrate/meltano_dagster

## make test: lint, then the whole test suite against the local sandbox
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests

# The taps' tests on the newest singer-sdk pre-release, in a venv of their own: the taps pin the
# released line (<0.55), so they go in without their dependencies, which are installed beside them.
NEXT_VENV  := .venv-sdk-next
NEXT_STAMP := $(NEXT_VENV)/.installed
SDK_NEXT   ?= singer-sdk[msgspec]>=0.55.0a1,<0.56
TAP_TESTS  := $(foreach t,$(TAPS),tests/$(subst tap-,,$(t))) tests/test_stream_maps.py tests/test_streamrules.py

$(NEXT_STAMP): requirements-dev.txt $(foreach t,$(TAPS),$(t)/pyproject.toml)
	test -x $(NEXT_VENV)/bin/python || $(PYTHON) -m venv $(NEXT_VENV)
	$(NEXT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEXT_VENV)/bin/python -m pip install --quiet --pre "$(SDK_NEXT)" pytest pytest-xdist pytest-timeout \
	  $$($(NEXT_VENV)/bin/python tests/tap_dependencies.py $(TAPS))
	$(NEXT_VENV)/bin/python -m pip install --quiet --no-deps $(foreach t,$(TAPS),-e ./$(t))
	touch $@

## make test-sdk-next: the taps' tests against the newest singer-sdk pre-release (CI runs it after make test)
test-sdk-next: $(NEXT_STAMP)
	$(NEXT_VENV)/bin/python -c 'import importlib.metadata as m; print("singer-sdk", m.version("singer-sdk"))'
	$(NEXT_VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(TAP_TESTS)

## make demo: meltano run of every tap into DuckDB, then an incremental run
demo: $(STAMP)
	$(BIN)/python -m tests.demo

## make bench: throughput and memory of each tap against a plain client
bench: $(STAMP)
	$(BIN)/python -m tests.bench

## make sandbox: run every vendor sandbox in the foreground (Ctrl-C stops it)
sandbox: $(STAMP)
	$(BIN)/python -m tests.sandbox

clean:
	rm -rf $(VENV) $(NEXT_VENV) .meltano .sandbox output $(DAGSTER_VENV) orchestrate/.dagster
