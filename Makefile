# Two commands: `make demo` and `make test`. Each creates .venv on first use.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test venv clean bench-quick

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/find-python.sh scripts/install.sh
	bash scripts/install.sh $(VENV)
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hybrid demo

test: $(STAMP)
	$(PY) -m pytest -q tests --doctest-modules meshes solvers hybrid examples

bench-quick: $(STAMP)
	$(VENV)/bin/hybrid bench solvers --quick --json bench/results/solvers-quick.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
