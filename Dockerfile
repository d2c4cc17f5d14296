# syntax=docker/dockerfile:1
# One image with both binaries: /usr/local/bin/sigv4-proxy and /usr/local/bin/adapter-shim.
# Pods choose one with `command:` (manifests/). Build:
#   make image            # docker build --build-arg VERSION=<workspace version> -t amp-sigv4:<version> .
# manifests/tests/validate.py checks this file against the workspace (see manifests/README.md).

ARG RUST_VERSION=1.95.0
ARG VERSION=0.1.0

# ---- build: the same command as `make release`, on Debian 12 (glibc 2.36) --------------
FROM rust:${RUST_VERSION}-bookworm AS build
ARG RUST_VERSION
ARG VERSION
WORKDIR /src
# rust-toolchain.toml pins the same channel as RUST_VERSION (the validation checks it);
# naming the image's toolchain keeps rustup from fetching the rustfmt/clippy components
# the file also lists, which a release build does not use.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --workspace --release --locked \
 && test "$(target/release/sigv4-proxy --version)" = "sigv4-proxy ${VERSION}" \
 && test "$(target/release/adapter-shim --version)" = "adapter-shim ${VERSION}" \
 && mkdir -p /out \
 && cp target/release/sigv4-proxy target/release/adapter-shim /out/

# ---- runtime: Debian 12 slim with CA certificates, no shell use at run time -------------
FROM debian:bookworm-slim
ARG VERSION
# ca-certificates unpinned on purpose: the newest trust store of the release is wanted.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/sigv4-proxy /usr/local/bin/sigv4-proxy
COPY --from=build /out/adapter-shim /usr/local/bin/adapter-shim
LABEL org.opencontainers.image.title="amp-sigv4" \
      org.opencontainers.image.description="sigv4-proxy and adapter-shim for Amazon Managed Service for Prometheus" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/amp-sigv4/amp-sigv4"
# The manifests run as this numeric user (runAsUser: 65532), read-only root filesystem.
USER 65532:65532
EXPOSE 8080 8081 6443
ENTRYPOINT ["/usr/local/bin/sigv4-proxy"]
