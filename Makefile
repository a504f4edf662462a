# Two entry points; each creates .venv with pip and installs what it needs.
#   make figures   every figure of config/config.yaml (CPU-sized) into results/figures/
#   make test      the test suite (unit tests, dry runs of every config, a quick end-to-end run)
#   make scorecard the claims scorecard of CONFIG's run (results/claims.md) copied into README.md
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
CONFIG ?= config/config.yaml
BIN = $(VENV)/bin

.PHONY: figures test report scorecard clean-results

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

figures: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) figures --configfile $(CONFIG)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

report: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) --report report.html --configfile $(CONFIG)

scorecard: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) claims --configfile $(CONFIG)
	$(BIN)/python -m toymodels.scorecard results/claims.md README.md

clean-results:
	rm -rf results/*/ .snakemake/
