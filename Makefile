# The two commands: `make run` (the quick default study, then its report) and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
PRESET ?=
CONFIG_ARGS := $(if $(PRESET),--configfile config/presets/$(PRESET).yaml,)
BIN := $(VENV)/bin

.PHONY: install check run report test lint release verify bench container clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable ".[test]"
	touch $@

# the config is read and validated first: a YAML error names its line, a missing preset its name
check: install
	$(BIN)/scaling-atlas config check $(CONFIG_ARGS)

run: check
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS)
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS) --report results/report.html

test: install
	$(BIN)/python -m pytest

# ruff (pyflakes; pyproject.toml), snakefmt (pinned) and snakemake --lint on the default config
# and every preset: no findings
lint: install
	$(BIN)/ruff check --no-cache workflow tests benchmarks tools
	$(BIN)/snakefmt --check Snakefile workflow/Snakefile workflow/rules/*.smk
	for preset in "" $(notdir $(basename $(wildcard config/presets/*.yaml))); do \
		$(BIN)/snakemake --lint $${preset:+--configfile config/presets/$$preset.yaml} > .lint.log 2>&1; \
		status=$$?; grep -q "Congratulations, your workflow is in a good condition" .lint.log \
			|| { cat .lint.log; rm -f .lint.log; exit 1; }; \
		[ $$status -eq 0 ] || { cat .lint.log; rm -f .lint.log; exit 1; }; \
		echo "lint $${preset:-default}: no findings"; \
	done; rm -f .lint.log

# A release of the results: manifest, config, environment, scorecard, report and rule graph in
# results/release/. The date in every file is the commit's, so two builds of one commit match.
release: check
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(BIN)/snakemake release --cores $(CORES) $(CONFIG_ARGS)

# Re-run a received release (RELEASE=folder, default results/release) with its own config and
# date, then compare every file with its manifest: exact, or within the declared tolerance. The
# release is not trusted: its config is read as plain data (no YTE templating, validated) and
# reaches Snakemake as JSON; see "Trust" in README.md.
RELEASE ?= results/release
verify: install
	$(BIN)/python -m scaling_atlas.release rerun $(RELEASE) --cores $(CORES)

# A Dockerfile with every conda env of the workflow and the workflow itself (README "Conda and
# containers"); needs conda on PATH
container: install
	$(BIN)/python tools/containerize.py $(CONFIG_ARGS) > Dockerfile

bench: install
	$(BIN)/python benchmarks/bench_superposition.py
	$(BIN)/python benchmarks/bench_fitting.py
	$(BIN)/python benchmarks/bench_lm.py

clean:
	rm -rf results/*/ logs resources .snakemake
