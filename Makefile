# Two commands on a fresh machine: `make demo` and `make test`.
# Each bootstraps its own virtual environment; PY picks the interpreter, VENV its folder.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python examples/02_sleep_then_123.py

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

$(VENV)-compare/.installed: pyproject.toml
	$(PY) -m venv $(VENV)-compare
	$(VENV)-compare/bin/python -m pip install --quiet --upgrade pip
	$(VENV)-compare/bin/python -m pip install --quiet -e '.[compare]'
	touch $@

bench: $(VENV)-compare/.installed
	$(VENV)-compare/bin/python -m benchmarks

clean:
	rm -rf .venv* build dist *.egg-info
