# One entry point for humans and CI. `make test` is the test command the README names.
CARGO ?= cargo

.PHONY: all build release test test-deps validate-manifests image demo lint fmt ci clean

all: build

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --workspace --release --locked

# Installs the real parts the integration tests run against, then runs every test, then
# validates the Kubernetes manifests and the Dockerfile (after the tests, so the validation
# can run the binaries they built: --help, --check-config).
test: test-deps
	$(CARGO) test --workspace --locked
	./scripts/validate-manifests

# Renders every overlay in manifests/ and validates it (schemas, KEDA CRD, yamllint,
# cross-checks against the binaries), plus the Dockerfile; see manifests/README.md.
validate-manifests: test-deps
	./scripts/validate-manifests

# The whole loop on one machine: workload, Prometheus, sigv4-proxy, the AMP stand-in,
# adapter-shim and what an HPA would do (demo/README.md). DEMO_ARGS="--duration 300".
demo:
	./scripts/demo $(DEMO_ARGS)

# The container image with both binaries (needs docker and access to base images).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
image:
	@command -v docker >/dev/null 2>&1 || { echo "make image: needs docker with BuildKit (Docker 23 or later)" >&2; exit 1; }
	docker build --build-arg VERSION=$(VERSION) -t amp-sigv4:$(VERSION) .

test-deps:
	./scripts/test-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

ci: lint test

clean:
	$(CARGO) clean
	rm -rf .venv
