# Two commands on a fresh machine: `make demo` and `make test`.
# Each bootstraps its own virtual environment; PY picks the interpreter, VENV its folder.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench conformance clean

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

# CPython's own asyncio test suite against kernel.aio, on 3.11, 3.12 and 3.13; the tables go
# in docs/conformance-3.X.md. (`make test` runs the fast part.)
PY312 ?= $(shell ls -d $$HOME/.pyenv/versions/3.12.*/bin/python3.12 2>/dev/null | sort -V | tail -n 1)
PY313 ?= $(shell ls -d $$HOME/.pyenv/versions/3.13.*/bin/python3.13 2>/dev/null | sort -V | tail -n 1)

conformance: $(BIN)/.installed
	$(BIN)/python -m tests.conformance.runner --markdown docs/conformance-3.11.md
	$(if $(PY312),$(BIN)/python -m tests.conformance.runner --python $(PY312) \
		--markdown docs/conformance-3.12.md)
	$(if $(PY313),$(BIN)/python -m tests.conformance.runner --python $(PY313) \
		--markdown docs/conformance-3.13.md)

$(VENV)-compare/.installed: pyproject.toml
	$(PY) -m venv $(VENV)-compare
	$(VENV)-compare/bin/python -m pip install --quiet --upgrade pip
	$(VENV)-compare/bin/python -m pip install --quiet -e '.[compare]'
	touch $@

bench: $(VENV)-compare/.installed
	$(VENV)-compare/bin/python -m benchmarks

clean:
	rm -rf .venv* build dist *.egg-info
