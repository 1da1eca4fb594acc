# One command each: `make test`, `make devnet`, `make bench`, `make proto`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install system-deps test unit integration lint proto devnet bench clean etcd

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need (chromium, chromium-driver for the status pages' browser tests):
# installed when missing and running as root, otherwise named (those tests then skip).
system-deps:
	scripts/system-deps.sh

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check erasure da light_client tests bench scripts
	$(VENV)/bin/ruff format --check erasure da light_client tests bench scripts
	$(VENV)/bin/mypy

# etcd (Debian etcd-server) for the producer-group tests and devnet; scripts/install-etcd.sh
# installs it when missing and running as root, else says which package to install.
etcd:
	@scripts/install-etcd.sh

test: $(STAMP) system-deps etcd lint
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q -m "not integration"

integration: $(STAMP) etcd
	$(PY) -m pytest -q -m integration

# The long reliability soak (tests/reliability, marker `soak`: 60 s at the producer's capacity,
# three storage nodes, five light clients); deselected from `make test`. Figures are printed.
.PHONY: soak
soak: $(STAMP)
	DA_SOAK=1 $(PY) -m pytest -q -s -m soak tests/reliability

# Regenerate the gRPC stubs in da/v1/ from proto/da/v1/da.proto (never edit da/v1 by hand).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. proto/da/v1/da.proto

# A fresh local chain each time: keys, TOML configs and logs stay in $(DEVNET_DIR) for reading and
# reuse; node state ($(DEVNET_DIR)/nodes) is wiped. Runs until Ctrl-C; e.g. DEVNET_ARGS="--blocks 5".
DEVNET_DIR  ?= devnet-data
DEVNET_ARGS ?=
devnet: $(STAMP) etcd
	rm -rf $(DEVNET_DIR)/nodes
	$(VENV)/bin/da devnet --data-dir $(DEVNET_DIR) $(DEVNET_ARGS)

BENCH_ARGS ?=
# Every benchmark, one table: figure, bound measured in the same run, ratio, target, met.
# BENCH_ARGS=--quick for a smoke run.
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
