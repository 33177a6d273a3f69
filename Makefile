# The two commands: `make run` (the quick default study, then its report) and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
PRESET ?=
CONFIG_ARGS := $(if $(PRESET),--configfile config/presets/$(PRESET).yaml,)
BIN := $(VENV)/bin

.PHONY: install run report test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable ".[test]"
	touch $@

run: install
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS)
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS) --report results/report.html

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_superposition.py
	$(BIN)/python benchmarks/bench_fitting.py

clean:
	rm -rf results/*/ logs resources .snakemake
