# One entry point for humans and CI. `make test` is the test command the README names.
CARGO ?= cargo

.PHONY: all build release test test-deps lint fmt ci clean

all: build

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --workspace --release --locked

# Installs the real parts the integration tests run against, then runs every test.
test: test-deps
	$(CARGO) test --workspace --locked

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
