# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs the pinned stack first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# torch first, pinned: the CPU wheel is on this machine's disk; a plain `torch` requirement
# would fetch multi-GB CUDA builds.
TORCH  ?= torch==2.13.0
# One BLAS/OpenMP thread per process: the suite runs two pytest workers on two cores.
THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PYTEST_WORKERS ?= 2

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/causal-mixtures demo

test: $(STAMP)
	$(THREADS) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check causal_mixtures tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
