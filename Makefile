# One command each: `make test`, `make devnet`, `make bench`, `make proto`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test unit integration lint proto devnet bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check erasure da light_client tests bench

test: $(STAMP) lint
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q -m "not integration"

integration: $(STAMP)
	$(PY) -m pytest -q -m integration

# Regenerate the gRPC stubs in da/v1/ from proto/da/v1/da.proto (never edit da/v1 by hand).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. proto/da/v1/da.proto

devnet: $(STAMP)
	$(VENV)/bin/da devnet

bench: $(STAMP)
	$(PY) bench/encode.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
