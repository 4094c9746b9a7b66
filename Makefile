# Every target bootstraps .venv itself: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TAPS   := $(sort $(wildcard tap-*))
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: venv test demo bench sandbox clean

$(STAMP): requirements-dev.txt $(foreach t,$(TAPS),$(t)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt $(foreach t,$(TAPS),-e ./$(t))
	touch $@

venv: $(STAMP)

## make test: the whole test suite against the local sandbox
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests

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
	rm -rf $(VENV) .meltano .sandbox output
