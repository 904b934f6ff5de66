# Set-up is part of every target: a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# Everything the test suite exercises (no torch: the default install stays torch-free).
EXTRAS ?= dev,llm,mlx,hpo,ray,hub,coco,pandas

.PHONY: setup run test lint typecheck bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

run: setup
	$(BIN)/bilevel run

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) bilevel-runs .pytest_cache .mypy_cache .ruff_cache .hypothesis
