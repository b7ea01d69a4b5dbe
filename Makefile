# miroir-envoy — build, run and test.
#
#   make build     the filter (.wasm, release) and the dev node (release)
#   make test      everything: lints, core tests (native), core on wasm, end to end with the real Envoy
#   make lint      clippy over the filter: no panic paths outside tests (part of make test)
#   make e2e       only the end-to-end suite (builds what it needs)
#   make fuzz      the property tests (filter/tests/prop_*.rs) with many more cases (FUZZ_CASES)
#   make run       3 dev nodes (or real Meilisearch: MEILISEARCH_BIN=...) behind Envoy on :7700
#   make bench     benchmarks (not tests): hot-path overhead, commit latency, fingerprint, footprint, writes, etcd backend
#   make compose-up / compose-down   docker-compose deployment (needs deploy/.env)
#   make deploy-tools   validators for the deployment files (docker-compose, promtool, schemas)
#   make e2e-tools      what the end-to-end suite runs besides Envoy (etcd, for the etcd backend)
#   make build-tools    binaryen's wasm-opt, which `make build` runs over the module when present
#   make clean     remove build outputs, the venv and .run/
#
# `make test` installs what it needs itself (rust targets, the Python venv), so it works on a
# fresh clone.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
REQUIREMENTS := tests/e2e/requirements.txt
# Reinstalled whenever the pinned requirements change.
VENV_STAMP := $(VENV)/.installed
WASM_TARGET := wasm32-wasip1
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
FILTER_WASM := $(TARGET_DIR)/$(WASM_TARGET)/release/miroir_filter.wasm
DEVNODE_BIN := $(TARGET_DIR)/release/devnode
PYTEST_ARGS ?= -q
# `make fuzz`: cases per property (`make test` runs each with its small default) and a time bound.
FUZZ_CASES ?= 20000
FUZZ_TIMEOUT_S ?= 1200
PROP_TESTS := $(sort $(basename $(notdir $(wildcard filter/tests/prop_*.rs))))
ARGS ?=

say = @printf '\n==> %s\n' "$(1)"

ISTIO_CHECK := deploy/istio/check
COMPOSE_ENV := deploy/.env
# docker compose v2 plugin when present, else Debian's docker-compose (v1).
COMPOSE = $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi)

.PHONY: help toolchain build build-filter build-devnode venv test lint test-core test-wasm e2e fuzz run bench \
	deploy-tools e2e-tools build-tools compose-up compose-down clean

help:
	@sed -n 's/^#   //p' Makefile

toolchain:
	$(call say,rust targets)
	@if command -v rustup >/dev/null; then \
		rustup -q target add $(WASM_TARGET) wasm32-unknown-unknown; \
	else \
		echo "rustup not found: assuming $(WASM_TARGET) and wasm32-unknown-unknown are installed"; \
	fi

build: build-filter build-devnode

build-filter: toolchain
	$(call say,filter -> $(FILTER_WASM))
	$(CARGO) build --release --target $(WASM_TARGET) -p miroir-filter
	@bash scripts/optimize-wasm.sh $(FILTER_WASM)
	@ls -l $(FILTER_WASM) | awk '{print "   " $$5 " bytes"}'

build-devnode:
	$(call say,dev node -> $(DEVNODE_BIN))
	$(CARGO) build --release -p miroir-devnode

venv: $(VENV_STAMP)

$(VENV_STAMP): $(REQUIREMENTS)
	$(call say,python venv ($(VENV)))
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV_PY) -m pip install -q --disable-pip-version-check -r $(REQUIREMENTS)
	@touch $@

# `make test` installs the deployment validators and requires them (a missing one fails the
# deployment tests instead of skipping them, as it would on a developer's `make e2e`).
# build-tools first: the suite then runs the module as it ships, wasm-opt included.
test: build-tools lint test-core test-wasm deploy-tools e2e-tools
	@MIROIR_REQUIRE_DEPLOY_VALIDATORS=1 $(MAKE) e2e
	$(call say,all tests passed)

# The filter's lints (Cargo.toml, clippy.toml): no unwrap, expect, panic or unchecked indexing
# outside tests (a panic kills the VM and the traffic through it), no standard sort in the
# shipped code. The shipped build is checked as it ships; the tests may sort as they like.
lint: toolchain
	$(call say,lints (clippy))
	@if $(CARGO) clippy --version >/dev/null 2>&1; then \
		$(CARGO) clippy -q -p miroir-filter --target $(WASM_TARGET) --release -- -D warnings && \
		$(CARGO) clippy -q -p miroir-filter --tests -- -D warnings -A clippy::disallowed_methods; \
	else echo "cargo clippy not installed (rustup component add clippy): lints not checked"; fi

test-core:
	$(call say,core tests (native))
	$(CARGO) test --workspace

test-wasm: toolchain
	$(call say,core tests on wasm)
	@if [ -f scripts/wasm-test.sh ]; then bash scripts/wasm-test.sh; \
	else echo "scripts/wasm-test.sh not present yet: nothing to run"; fi

# proptest reads PROPTEST_CASES; failure-persistence files are off (tests/common), so a failure
# prints its minimal input and writes nothing into the tree.
fuzz:
	$(call say,property tests: $(FUZZ_CASES) cases each (at most $(FUZZ_TIMEOUT_S) s))
	PROPTEST_CASES=$(FUZZ_CASES) timeout $(FUZZ_TIMEOUT_S) \
		$(CARGO) test -p miroir-filter $(addprefix --test ,$(PROP_TESTS))

# The suite runs exactly what `build` just made (not a newer debug build lying around).
e2e: build venv e2e-tools
	$(call say,end-to-end tests (real Envoy))
	MIROIR_DEVNODE_BIN=$${MIROIR_DEVNODE_BIN:-$(DEVNODE_BIN)} $(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

run: build venv
	@MIROIR_DEVNODE_BIN=$${MIROIR_DEVNODE_BIN:-$(DEVNODE_BIN)} $(VENV_PY) tests/e2e/run_local.py $(ARGS)

bench: toolchain venv build-tools
	$(VENV_PY) bench/run.py $(ARGS)

# Debian packages (as root, like CI) and the npm schema checker, each only when missing.
deploy-tools:
	$(call say,deployment validators)
	@missing=""; \
	command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "apt-get install$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "not root: install$$missing yourself (Debian packages)"; fi; \
	fi
	@$(MAKE) -s $(ISTIO_CHECK)/node_modules/.installed

# etcd for the etcd ledger backend's tests (tests/e2e/etcd_cluster.py starts its own members on
# ephemeral loopback ports, so the Debian package's own service, started or not, never matters).
e2e-tools:
	@if ! command -v etcd >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "apt-get install etcd-server"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null; \
		else echo "not root: install etcd yourself (Debian: apt-get install etcd-server)"; fi; \
	fi

# binaryen's wasm-opt (scripts/optimize-wasm.sh), installed as root when missing; `make build`
# alone only uses it when it is there.
build-tools:
	@if ! command -v wasm-opt >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "apt-get install binaryen"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binaryen >/dev/null; \
		else echo "not root: install binaryen yourself for a smaller module (Debian: apt-get install binaryen)"; fi; \
	fi

$(ISTIO_CHECK)/node_modules/.installed: $(ISTIO_CHECK)/package-lock.json
	cd $(ISTIO_CHECK) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

compose-up: build-filter
	@test -f $(COMPOSE_ENV) || { echo "$(COMPOSE_ENV) missing: cp deploy/.env.example $(COMPOSE_ENV) and set the keys"; exit 1; }
	$(COMPOSE) --env-file $(COMPOSE_ENV) up -d
	$(COMPOSE) --env-file $(COMPOSE_ENV) ps

compose-down:
	$(COMPOSE) --env-file $(COMPOSE_ENV) down

clean:
	$(CARGO) clean
	rm -rf $(VENV) .run
