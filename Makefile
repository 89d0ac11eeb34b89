# The quick start: `make run` (the daemon on the sample site) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run build check test trust bench bench-send clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed            ## start the daemon on the embedded default (Ctrl-C stops it)
	$(BIN)/publisher run --config config.toml

build: $(VENV)/.installed          ## one build of the sample site
	$(BIN)/publisher build --config config.toml

check: $(VENV)/.installed
	$(BIN)/publisher check --config config.toml

test: $(VENV)/.installed-test      ## install the test dependencies and run the whole suite
	$(BIN)/python -m pytest

trust: $(VENV)/.installed-test     ## the proof-of-trust suite, full form: crashes, faults, storage, two daemons, fuzzing, injection
	$(BIN)/python -m tests.trust

bench: $(VENV)/.installed-test     ## the performance benchmark against Hugo (installs hugo if missing)
	$(BIN)/python benchmarks/build_vs_hugo.py

bench-send: $(VENV)/.installed-test  ## the sending benchmark: 100,000 subscribers vs Postfix's smtp-source (fetches postfix's tools)
	$(BIN)/python benchmarks/send_vs_smtp_source.py

clean:
	rm -rf $(VENV) public state outbox .pytest_cache .hypothesis
