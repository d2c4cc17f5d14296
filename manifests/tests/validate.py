#!/usr/bin/env python3
"""Validates manifests/ and the Dockerfile; run by `make validate-manifests` and `make test`.

For every overlay under manifests/overlays:

1. render it (kustomize_lite; and with a real kustomize too when one is installed, which
   must give identical objects);
2. validate every built-in object against the Kubernetes OpenAPI schemas of the newest
   version kubernetes-validate ships and of the oldest supported one (1.29, the first with
   native sidecars on by default), strictly: unknown fields fail;
3. validate the KEDA ScaledObject against KEDA's CRD schema (tests/schemas, with NOTICE);
4. cross-check what schemas cannot see: flags and probes against the binaries, ports,
   selectors, references, drain timeouts, pod security, the adapter rules against the
   seeds, remote-write and KEDA addresses against the proxies' listeners and allow-lists.

Then yamllint over manifests/, the Dockerfile checks, and the negative fixtures in
tests/broken: each must be rejected with its expected message, so a validator that stops
catching a mistake fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kustomize_lite  # noqa: E402

TESTS = Path(__file__).resolve().parent
MANIFESTS = TESTS.parent
ROOT = MANIFESTS.parent
OLDEST_KUBERNETES = "1.29.0"  # native sidecars (initContainers restartPolicy: Always) on by default
IMAGE_NAME = "amp-sigv4"
BINARIES = ("sigv4-proxy", "adapter-shim")
SIGV4_DEFAULTS = {"--port": ":8080", "--admin-port": ":8081", "--shutdown-timeout": "30s"}


# --------------------------------------------------------------------------------------
# Results


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: int = 0

    def check(self, ok: bool, message: str) -> bool:
        self.checks += 1
        if not ok:
            self.errors.append(message)
        return ok

    def error(self, message: str) -> None:
        self.checks += 1
        self.errors.append(message)


# --------------------------------------------------------------------------------------
# Helpers


def parse_duration(text: str) -> float:
    """humantime/Go-style durations as the binaries accept them: 30s, 2500ms, 1m30s."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def flag_values(args: list[str]) -> dict[str, list[str]]:
    """--flag=value and --flag value pairs; bare booleans map to ["true"]."""
    values: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                name, value = arg, args[i + 1]
                i += 1
            else:
                name, value = arg, "true"
            values.setdefault(name, []).append(value)
        i += 1
    return values


def listen_port(addr: str) -> int | None:
    if addr == "off":
        return None
    return int(addr.rsplit(":", 1)[1])


def path_allowed(path: str, allow: list[str]) -> bool:
    if not allow:
        return True
    for prefix in allow:
        if prefix.startswith("^"):
            if re.match(prefix, path):
                return True
        elif path.startswith(prefix):
            return True
    return False


def binary_of(container: dict) -> str | None:
    command = container.get("command") or []
    if command:
        name = os.path.basename(command[0])
        if name in BINARIES:
            return name
    return None


def pod_templates(objects: list[dict]):
    for obj in objects:
        kind = obj.get("kind")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield obj, obj["spec"]["template"]
        elif kind == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]
        elif kind == "Pod":
            yield obj, obj


def running_containers(pod_spec: dict) -> list[dict]:
    """Main containers and native sidecars (the init containers that keep running)."""
    sidecars = [c for c in pod_spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return sidecars + list(pod_spec.get("containers") or [])


def all_containers(pod_spec: dict) -> list[dict]:
    return list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])


def ns_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace", "") or ""


def name_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def find(objects: list[dict], kind: str, name: str, namespace: str | None = None) -> dict | None:
    for obj in objects:
        if obj.get("kind") == kind and name_of(obj) == name and (namespace is None or ns_of(obj) == namespace):
            return obj
    return None


def workspace_version() -> str:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]


# --------------------------------------------------------------------------------------
# What the binaries accept


def built_binary(name: str) -> Path | None:
    candidates = [ROOT / "target" / profile / name for profile in ("release", "debug")]
    existing = [p for p in candidates if p.is_file() and os.access(p, os.X_OK)]
    return max(existing, key=lambda p: p.stat().st_mtime) if existing else None


def flags_from_help(binary: Path) -> set[str]:
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30)
    # Option lines only: "  -v, --verbose", "      --host <HOST[:PORT]>".
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z0-9][a-z0-9.-]*)", out.stdout, re.M))


def flags_from_source(crate: str) -> set[str]:
    """Long flags of the clap derive structs in <crate>/src: `#[arg(long)] field` gives
    --field-name, `#[arg(long = "x")]` gives --x."""
    flags = {"--help", "--version"}
    for source in (ROOT / crate / "src").glob("*.rs"):
        text = source.read_text()
        for match in re.finditer(r"#\[arg\((.*?)\)\]\s*(?:///[^\n]*\n\s*|#\[[^\n]*\]\s*)*(?:pub(?:\([a-z]+\))?\s+)?(\w+)\s*:", text, re.S):
            attrs, field_name = match.group(1), match.group(2)
            explicit = re.search(r'\blong\s*=\s*"([^"]+)"', attrs)
            if explicit:
                flags.add("--" + explicit.group(1))
            elif re.search(r"\blong\b", attrs):
                flags.add("--" + field_name.replace("_", "-"))
    return flags


def contract_flags() -> set[str]:
    text = (TESTS / "adapter-shim-cli.txt").read_text()
    return {line.split()[0] for line in text.splitlines() if line.startswith("--")}


@dataclass
class Cli:
    flags: dict[str, set[str]]
    binaries: dict[str, Path | None]
    origin: dict[str, str]
    shim_serves: bool


def discover_cli(report: Report) -> Cli:
    flags, binaries, origin = {}, {}, {}
    for name in BINARIES:
        binary = built_binary(name)
        binaries[name] = binary
        if binary:
            flags[name] = flags_from_help(binary)
            origin[name] = f"--help of {binary.relative_to(ROOT)}"
        else:
            flags[name] = flags_from_source(name)
            origin[name] = f"clap definitions in {name}/src"
    shim_serves = "--prometheus-url" in flags["adapter-shim"]
    if not shim_serves:
        flags["adapter-shim"] |= contract_flags()
        origin["adapter-shim"] += " + the agreed serving CLI in manifests/tests/adapter-shim-cli.txt (serving not built yet)"
    for name in BINARIES:
        report.notes.append(f"flags of {name}: {origin[name]} ({len(flags[name])} flags)")
    return Cli(flags, binaries, origin, shim_serves)


# --------------------------------------------------------------------------------------
# Schema validation


def kubernetes_schema_check(objects: list[dict], label: str, report: Report, versions: list[str]) -> None:
    from kubernetes_validate import utils as kv

    for obj in objects:
        if obj.get("kind") == "ScaledObject":
            continue
        for version in versions:
            try:
                kv.validate(obj, version, strict=True)
                report.check(True, "")
            except kv.ValidationError as error:
                where = ".".join(str(p) for p in error.path)
                report.error(f"{label}: {kustomize_lite.describe(obj)}: Kubernetes {version} schema: {where}: {error.message}")
            except kv.SchemaNotFoundError:
                report.error(f"{label}: {kustomize_lite.describe(obj)}: no Kubernetes {version} schema for {obj.get('apiVersion')} {obj.get('kind')}")


# --keda-npm: also validate with the validators npm's @kubernetes-models/keda compiles from
# KEDA's CRDs (needs node and npm; installed into target/keda-npm on first use).
KEDA_NPM_PACKAGE = "@kubernetes-models/keda@2.0.0"
KEDA_NPM_DIR = ROOT / "target" / "keda-npm"
KEDA_NPM_SCRIPT = """
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import fs from "fs";
const obj = new ScaledObject(JSON.parse(fs.readFileSync(process.argv[2])));
try { obj.validate(); console.log("valid"); } catch (e) { console.log(e.message); process.exit(1); }
"""
keda_npm = False


def keda_npm_validate(obj: dict) -> tuple[bool, str]:
    if not (KEDA_NPM_DIR / "node_modules" / "@kubernetes-models" / "keda").is_dir():
        KEDA_NPM_DIR.mkdir(parents=True, exist_ok=True)
        (KEDA_NPM_DIR / "package.json").write_text('{"private": true}')
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", KEDA_NPM_PACKAGE], cwd=KEDA_NPM_DIR, check=True, timeout=300)
    (KEDA_NPM_DIR / "check.mjs").write_text(KEDA_NPM_SCRIPT)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(obj, f)
        f.flush()
        result = subprocess.run(["node", "check.mjs", f.name], cwd=KEDA_NPM_DIR, capture_output=True, text=True, timeout=60)
    return result.returncode == 0, (result.stdout + result.stderr).strip()[:300]


def keda_schema_check(objects: list[dict], label: str, report: Report) -> None:
    schema = json.loads((TESTS / "schemas" / "keda-scaledobject-v1alpha1.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for obj in objects:
        if obj.get("kind") != "ScaledObject":
            continue
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
        report.check(not errors, f"{label}: {kustomize_lite.describe(obj)}: KEDA ScaledObject schema: " + "; ".join(
            f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors[:3]))
        if keda_npm:
            ok, detail = keda_npm_validate(obj)
            report.check(ok, f"{label}: {kustomize_lite.describe(obj)}: KEDA ScaledObject schema ({KEDA_NPM_PACKAGE}): {detail}")


# --------------------------------------------------------------------------------------
# Cross-checks


def check_pods(objects: list[dict], label: str, report: Report, cli: Cli) -> None:
    version = workspace_version()
    for owner, template in pod_templates(objects):
        spec = template["spec"]
        where = f"{label}: {kustomize_lite.describe(owner)}"
        pod_sc = spec.get("securityContext") or {}
        # Service account exists.
        sa = spec.get("serviceAccountName")
        if sa:
            report.check(find(objects, "ServiceAccount", sa, ns_of(owner)) is not None,
                         f"{where}: serviceAccountName {sa} is not in the overlay")
        # ConfigMap volumes exist and the projected keys are there.
        for volume in spec.get("volumes") or []:
            cm = volume.get("configMap")
            if cm:
                found = find(objects, "ConfigMap", cm["name"], ns_of(owner))
                if report.check(found is not None, f"{where}: volume {volume['name']}: ConfigMap {cm['name']} is not in the overlay"):
                    for item in cm.get("items") or []:
                        report.check(item["key"] in (found.get("data") or {}), f"{where}: ConfigMap {cm['name']} has no key {item['key']}")
        sidecar_drain = main_drain = 0.0
        sidecars = [c for c in running_containers(spec) if c not in (spec.get("containers") or [])]
        for container in all_containers(spec):
            cwhere = f"{where}: container {container['name']}"
            running = container in running_containers(spec)
            sc = container.get("securityContext") or {}
            # Pod security: restricted profile and then some.
            run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            report.check(run_as_non_root is True, f"{cwhere}: runAsNonRoot is not true")
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            report.check(uid is None or uid != 0, f"{cwhere}: runAsUser is 0")
            report.check(sc.get("readOnlyRootFilesystem") is True, f"{cwhere}: readOnlyRootFilesystem is not true")
            report.check(sc.get("allowPrivilegeEscalation") is False, f"{cwhere}: allowPrivilegeEscalation is not false")
            report.check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{cwhere}: capabilities.drop lacks ALL")
            report.check(not (sc.get("capabilities") or {}).get("add"), f"{cwhere}: adds capabilities")
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            report.check(seccomp == "RuntimeDefault", f"{cwhere}: seccompProfile is not RuntimeDefault")
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    report.check(resource in (resources.get(part) or {}), f"{cwhere}: no {part}.{resource}")
            image = container.get("image", "")
            report.check(":" in image.rsplit("/", 1)[-1], f"{cwhere}: image {image} has no tag")
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            numbers = set(ports.values())
            if running:
                for kind in ("livenessProbe", "readinessProbe"):
                    report.check(kind in container, f"{cwhere}: no {kind}")
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(kind)
                if not probe:
                    continue
                handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc") or {}
                port = handler.get("port")
                if isinstance(port, str):
                    report.check(port in ports, f"{cwhere}: {kind} port {port!r} is not a named port of the container")
                    port = ports.get(port)
                else:
                    report.check(port in numbers, f"{cwhere}: {kind} port {port} is not a containerPort")
                probe[".resolvedPort"] = port  # for the binary-specific checks below
            binary = binary_of(container)
            if image.split(":")[0].endswith(IMAGE_NAME):
                report.check(binary is not None, f"{cwhere}: image {image} holds two binaries; set command to /usr/local/bin/<binary>")
                report.check(image.endswith(":" + version), f"{cwhere}: image {image} is not the workspace version {version}")
            if binary:
                report.check(container["command"][0] == f"/usr/local/bin/{binary}",
                             f"{cwhere}: command {container['command'][0]} is not where the image installs {binary}")
                drain = check_binary_container(container, binary, cwhere, report, cli, objects)
            else:
                drain = main_container_drain(container)
            if any(c is container for c in sidecars):
                sidecar_drain = max(sidecar_drain, drain)
            else:
                main_drain = max(main_drain, drain)
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                (container.get(kind) or {}).pop(".resolvedPort", None)
        # Native sidecars get SIGTERM only after every main container has exited, within the
        # same grace period: the drains add up.
        grace = spec.get("terminationGracePeriodSeconds", 30)
        drain = main_drain + sidecar_drain
        report.check(grace >= drain, f"{where}: terminationGracePeriodSeconds {grace} is shorter than the drain timeout {drain:g}s"
                     f" (main containers {main_drain:g}s, then native sidecars {sidecar_drain:g}s)")


def main_container_drain(container: dict) -> float:
    """How long a third-party container may take to stop, where its flags bound it."""
    values = flag_values(list(container.get("command") or [])[1:] + list(container.get("args") or []))
    if "prometheus" in container.get("image", "").split("/")[-1].split(":")[0]:
        # Prometheus flushes pending remote-write samples for up to this long on shutdown.
        return parse_duration(values.get("--storage.remote.flush-deadline", ["1m"])[-1])
    return 0.0


def check_binary_container(container: dict, binary: str, where: str, report: Report, cli: Cli, objects: list[dict]) -> float:
    args = list(container.get("args") or [])
    values = flag_values(args)
    for flag in values:
        report.check(flag in cli.flags[binary], f"{where}: {binary} does not accept {flag} ({cli.origin[binary]})")
    for env in container.get("env") or []:
        prefix = "SIGV4_PROXY_" if binary == "sigv4-proxy" else "ADAPTER_SHIM_"
        if env["name"].startswith(prefix):
            flag = "--" + env["name"][len(prefix):].lower().replace("_", "-")
            report.check(flag in cli.flags[binary], f"{where}: env {env['name']} names no {binary} flag")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    probes = {k: container.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe") if container.get(k)}
    if binary == "sigv4-proxy":
        def one(flag: str) -> str:
            return values.get(flag, [SIGV4_DEFAULTS[flag]])[-1]
        admin = listen_port(one("--admin-port"))
        listen = listen_port(one("--port"))
        report.check(admin is not None and admin in ports.values(),
                     f"{where}: admin port {admin} (--admin-port) is not a containerPort")
        for port in ports.values():
            report.check(port in (admin, listen), f"{where}: containerPort {port} is neither --port nor --admin-port")
        for kind, probe in probes.items():
            get = probe.get("httpGet") or {}
            report.check(probe.get(".resolvedPort") == admin, f"{where}: {kind} is not on the admin port {admin}")
            expected = ("/readyz",) if kind == "readinessProbe" else ("/healthz", "/livez")
            report.check(get.get("path") in expected, f"{where}: {kind} path {get.get('path')} is not {' or '.join(expected)}")
            report.check(get.get("scheme", "HTTP") == "HTTP", f"{where}: {kind} must use HTTP on the admin port")
        try:
            drain = parse_duration(one("--shutdown-timeout"))
        except ValueError as error:
            report.error(f"{where}: --shutdown-timeout: {error}")
            drain = 0.0
        run_check_config("sigv4-proxy", args, container, where, report, cli)
        return drain
    # adapter-shim
    secure = int(values.get("--secure-port", ["6443"])[-1])
    report.check(secure in ports.values(), f"{where}: --secure-port {secure} is not a containerPort")
    for kind, probe in probes.items():
        get = probe.get("httpGet") or {}
        report.check(probe.get(".resolvedPort") == secure, f"{where}: {kind} is not on --secure-port {secure}")
        report.check(get.get("scheme") == "HTTPS", f"{where}: {kind} must use scheme HTTPS (the shim serves only TLS)")
        expected = ("/readyz",) if kind == "readinessProbe" else ("/livez", "/healthz")
        report.check(get.get("path") in expected, f"{where}: {kind} path {get.get('path')} is not {' or '.join(expected)}")
    url = values.get("--prometheus-url", [""])[-1]
    split = urlsplit(url)
    report.check(split.scheme == "http" and split.hostname in ("localhost", "127.0.0.1"),
                 f"{where}: --prometheus-url {url} is not the pod's sidecar on localhost")
    check_sidecar_route(objects, container, split, ["/api/v1/query", "/api/v1/series"], where, report)
    run_check_config("adapter-shim", args, container, where, report, cli, objects)
    try:
        return parse_duration(values.get("--shutdown-timeout", ["30s"])[-1])
    except ValueError as error:
        report.error(f"{where}: --shutdown-timeout: {error}")
        return 0.0


def pod_of_container(objects: list[dict], container: dict) -> dict | None:
    for _, template in pod_templates(objects):
        if any(c is container for c in all_containers(template["spec"])):
            return template["spec"]
    return None


def check_sidecar_route(objects, container, url, suffixes, where, report) -> None:
    """The URL a container sends to must reach a sigv4-proxy sidecar of the same pod on its
    --port, and the proxy's --allow-path must admit url.path + each suffix."""
    spec = pod_of_container(objects, container)
    proxies = [c for c in running_containers(spec or {}) if binary_of(c) == "sigv4-proxy" and c is not container]
    if not report.check(bool(proxies), f"{where}: sends to {url.geturl()} but the pod has no sigv4-proxy sidecar"):
        return
    port = url.port or 80
    for proxy in proxies:
        values = flag_values(proxy.get("args") or [])
        if listen_port(values.get("--port", [SIGV4_DEFAULTS["--port"]])[-1]) != port:
            continue
        allow = values.get("--allow-path", [])
        for suffix in suffixes:
            path = url.path.rstrip("/") + suffix
            report.check(path_allowed(path, allow), f"{where}: the sidecar's --allow-path refuses {path}")
        report.check(url.path.startswith("/workspaces/"), f"{where}: {url.geturl()} has no /workspaces/<id> path")
        return
    report.error(f"{where}: no sigv4-proxy sidecar listens on port {port} ({url.geturl()})")


def run_check_config(binary: str, args: list[str], container: dict, where: str, report: Report, cli: Cli, objects=None) -> None:
    """Runs the real binary with the container's arguments and --check-config."""
    path = cli.binaries.get(binary)
    if path is None:
        return
    if binary == "adapter-shim" and not cli.shim_serves:
        return  # checked with the rules alone in check_adapter_rules
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = item["value"]
    with tempfile.TemporaryDirectory() as tmp:
        args = list(args)
        if binary == "adapter-shim":
            # The mounted ConfigMap, materialised.
            spec = pod_of_container(objects, container) or {}
            for mount in container.get("volumeMounts") or []:
                volume = next((v for v in spec.get("volumes") or [] if v["name"] == mount["name"]), {})
                if "configMap" in volume:
                    cm = find(objects, "ConfigMap", volume["configMap"]["name"])
                    target = Path(tmp) / mount["mountPath"].lstrip("/")
                    target.mkdir(parents=True, exist_ok=True)
                    for key, value in ((cm or {}).get("data") or {}).items():
                        (target / key).write_text(value)
            args = [re.sub(r"^(--config=|--tls-cert-file=|--tls-private-key-file=|--cert-dir=)/", lambda m: m.group(1) + tmp + "/", a) for a in args]
        result = subprocess.run([str(path), *args, "--check-config"], capture_output=True, text=True, env=env, timeout=60)
        report.check(result.returncode == 0, f"{where}: `{binary} {shlex.join(args)} --check-config` exited {result.returncode}: {(result.stderr or result.stdout).strip()[:300]}")


def check_services(objects: list[dict], label: str, report: Report) -> None:
    for svc in (o for o in objects if o.get("kind") == "Service"):
        where = f"{label}: {kustomize_lite.describe(svc)}"
        selector = svc["spec"].get("selector") or {}
        report.check(bool(selector), f"{where}: no selector")
        matched = [t for owner, t in pod_templates(objects) if ns_of(owner) == ns_of(svc)
                   and all((t["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        if not report.check(bool(matched), f"{where}: selector {selector} matches no pod template in namespace {ns_of(svc)}"):
            continue
        for port in svc["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            for template in matched:
                containers = running_containers(template["spec"])
                names = {p.get("name") for c in containers for p in c.get("ports") or []}
                numbers = {p["containerPort"] for c in containers for p in c.get("ports") or []}
                report.check(target in (names if isinstance(target, str) else numbers),
                             f"{where}: targetPort {target!r} is not a port of the selected pods")


def check_selectors(objects: list[dict], label: str, report: Report) -> None:
    for owner, template in pod_templates(objects):
        if owner.get("kind") == "Pod":
            continue
        match = (owner["spec"].get("selector") or {}).get("matchLabels") or {}
        labels = template["metadata"].get("labels") or {}
        report.check(all(labels.get(k) == v for k, v in match.items()),
                     f"{label}: {kustomize_lite.describe(owner)}: selector {match} does not match its pod template labels")
    for pdb in (o for o in objects if o.get("kind") == "PodDisruptionBudget"):
        match = (pdb["spec"].get("selector") or {}).get("matchLabels") or {}
        report.check(any(ns_of(o) == ns_of(pdb) and all((t["metadata"].get("labels") or {}).get(k) == v for k, v in match.items())
                         for o, t in pod_templates(objects)),
                     f"{label}: {kustomize_lite.describe(pdb)}: selector matches no pods")


def check_scaling(objects: list[dict], label: str, report: Report, served_metrics: set[str]) -> None:
    for hpa in (o for o in objects if o.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject")):
        where = f"{label}: {kustomize_lite.describe(hpa)}"
        ref = hpa["spec"]["scaleTargetRef"]
        kind = ref.get("kind", "Deployment")
        report.check(find(objects, kind, ref["name"], ns_of(hpa)) is not None,
                     f"{where}: scaleTargetRef {kind} {ref['name']} is not in the overlay")
        if hpa["kind"] == "HorizontalPodAutoscaler":
            spec = hpa["spec"]
            report.check(spec.get("minReplicas", 1) <= spec["maxReplicas"], f"{where}: minReplicas > maxReplicas")
            for metric in spec.get("metrics") or []:
                if metric["type"] in ("Pods", "Object"):
                    name = metric[metric["type"].lower()]["metric"]["name"]
                    report.check(name in served_metrics,
                                 f"{where}: custom metric {name} is not produced by the adapter rules (they produce {', '.join(sorted(served_metrics))})")
            continue
        spec = hpa["spec"]
        report.check(spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100), f"{where}: minReplicaCount > maxReplicaCount")
        for trigger in spec.get("triggers") or []:
            if trigger.get("type") != "prometheus":
                continue
            meta = trigger.get("metadata") or {}
            for key in ("serverAddress", "query", "threshold"):
                report.check(key in meta, f"{where}: prometheus trigger without {key}")
            for key in ("threshold", "activationThreshold"):
                if key in meta:
                    try:
                        float(meta[key])
                        report.check(True, "")
                    except (TypeError, ValueError):
                        report.error(f"{where}: {key} {meta[key]!r} is not a number")
            check_gateway_address(objects, meta.get("serverAddress", ""), where, report)


def check_gateway_address(objects: list[dict], address: str, where: str, report: Report) -> None:
    url = urlsplit(address)
    host = (url.hostname or "").split(".")
    if not report.check(url.scheme == "http" and len(host) >= 2, f"{where}: serverAddress {address} is not http://<service>.<namespace>:<port>/..."):
        return
    svc = find(objects, "Service", host[0], host[1])
    if not report.check(svc is not None, f"{where}: serverAddress names Service {host[1]}/{host[0]}, which is not in the overlay"):
        return
    port = url.port or 80
    svc_port = next((p for p in svc["spec"]["ports"] if p["port"] == port), None)
    if not report.check(svc_port is not None, f"{where}: Service {host[0]} has no port {port}"):
        return
    report.check(url.path.startswith("/workspaces/"), f"{where}: serverAddress {address} has no /workspaces/<id> path")
    target = svc_port.get("targetPort", port)
    for owner, template in pod_templates(objects):
        labels = template["metadata"].get("labels") or {}
        if ns_of(owner) != ns_of(svc) or not all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()):
            continue
        for container in running_containers(template["spec"]):
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            number = ports.get(target) if isinstance(target, str) else target
            if number not in ports.values() or binary_of(container) != "sigv4-proxy":
                continue
            values = flag_values(container.get("args") or [])
            report.check(listen_port(values.get("--port", [":8080"])[-1]) == number, f"{where}: the gateway does not listen on {number}")
            path = url.path.rstrip("/") + "/api/v1/query"
            report.check(path_allowed(path, values.get("--allow-path", [])), f"{where}: the gateway's --allow-path refuses {path}")
            return
    report.error(f"{where}: Service {host[0]} port {port} does not reach a sigv4-proxy container")


def check_apiservices(objects: list[dict], label: str, report: Report) -> None:
    services = [o for o in objects if o.get("kind") == "APIService"]
    for api in services:
        where = f"{label}: {kustomize_lite.describe(api)}"
        spec = api["spec"]
        report.check(name_of(api) == f"{spec['version']}.{spec['group']}", f"{where}: name is not <version>.<group>")
        ref = spec.get("service") or {}
        svc = find(objects, "Service", ref.get("name", ""), ref.get("namespace", ""))
        if report.check(svc is not None, f"{where}: Service {ref.get('namespace')}/{ref.get('name')} is not in the overlay"):
            report.check(any(p["port"] == ref.get("port", 443) for p in svc["spec"]["ports"]),
                         f"{where}: Service {ref.get('name')} has no port {ref.get('port', 443)}")
        report.check(bool(spec.get("caBundle")) or spec.get("insecureSkipTLSVerify") is True,
                     f"{where}: neither caBundle nor insecureSkipTLSVerify")
    custom = {a["spec"]["version"]: a for a in services if a["spec"]["group"] == "custom.metrics.k8s.io"}
    if custom:
        report.check(set(custom) == {"v1beta1", "v1beta2"}, f"{label}: custom.metrics.k8s.io needs both v1beta1 and v1beta2 APIServices")
        if set(custom) == {"v1beta1", "v1beta2"}:
            report.check(custom["v1beta2"]["spec"]["versionPriority"] > custom["v1beta1"]["spec"]["versionPriority"],
                         f"{label}: v1beta2.custom.metrics.k8s.io must have the higher versionPriority (preferred)")
    external = any(a["spec"]["group"] == "external.metrics.k8s.io" for a in services)
    for owner, template in pod_templates(objects):
        for container in running_containers(template["spec"]):
            if binary_of(container) == "adapter-shim":
                enabled = "--enable-external-metrics" in flag_values(container.get("args") or [])
                report.check(enabled == external,
                             f"{label}: external.metrics.k8s.io APIService {'present' if external else 'absent'} but --enable-external-metrics {'off' if external else 'on'}")


def check_rbac(objects: list[dict], label: str, report: Report) -> None:
    for binding in (o for o in objects if o.get("kind") in ("RoleBinding", "ClusterRoleBinding")):
        where = f"{label}: {kustomize_lite.describe(binding)}"
        for subject in binding.get("subjects") or []:
            if subject["kind"] == "ServiceAccount" and subject.get("namespace") != "kube-system":
                report.check(find(objects, "ServiceAccount", subject["name"], subject.get("namespace")) is not None,
                             f"{where}: subject ServiceAccount {subject.get('namespace')}/{subject['name']} is not in the overlay")
        ref = binding["roleRef"]
        if ref["name"].startswith("system:") or ref["name"] == "extension-apiserver-authentication-reader":
            continue
        report.check(find(objects, ref["kind"], ref["name"]) is not None, f"{where}: {ref['kind']} {ref['name']} is not in the overlay")
    # An aggregated API server's two grants (anchor §10.1).
    for owner, template in pod_templates(objects):
        if not any(binary_of(c) == "adapter-shim" for c in running_containers(template["spec"])):
            continue
        sa = template["spec"].get("serviceAccountName", "default")

        def bound(kind: str, role: str, namespace: str | None) -> bool:
            return any(b.get("kind") == kind and b["roleRef"]["name"] == role and (namespace is None or ns_of(b) == namespace)
                       and any(s.get("name") == sa and s.get("namespace") == ns_of(owner) for s in b.get("subjects") or [])
                       for b in objects)

        report.check(bound("ClusterRoleBinding", "system:auth-delegator", None), f"{label}: adapter-shim's ServiceAccount is not bound to system:auth-delegator")
        report.check(bound("RoleBinding", "extension-apiserver-authentication-reader", "kube-system"),
                     f"{label}: adapter-shim's ServiceAccount cannot read kube-system/extension-apiserver-authentication")


def served_metric_names(rules_yaml: str) -> set[str]:
    """API metric names the rules produce for their seriesQuery's metric name (anchor §3.2)."""
    config = yaml.safe_load(rules_yaml) or {}
    names = set()
    for rule in config.get("rules") or []:
        series = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", rule["seriesQuery"]).group(1)
        naming = rule.get("name") or {}
        pattern = re.compile(naming.get("matches") or ".*")
        match = pattern.search(series)
        if not match:
            continue
        as_ = naming.get("as") or ("$1" if pattern.groups == 1 else "$0")
        names.add(re.sub(r"\$\{(\d+)\}|\$(\d+)", lambda m: match.group(int(m.group(1) or m.group(2))) or "", as_))
    return names


def check_adapter_rules(objects: list[dict], label: str, report: Report, cli: Cli) -> None:
    cm = find(objects, "ConfigMap", "adapter-shim-config")
    if cm is None:
        return
    text = cm["data"]["config.yaml"]
    shipped = yaml.safe_load(text)
    fixtures = ROOT / "adapter-shim" / "tests" / "fixtures"
    seeds = {"rules": [], "externalRules": []}
    for name in ("seed-canonical.yaml", "seed-ho11y.yaml"):
        seed = yaml.safe_load((fixtures / name).read_text())
        for section in seeds:
            seeds[section] += seed.get(section) or []
    report.check(shipped == seeds, f"{label}: ConfigMap adapter-shim-config differs from the seeds' rules in adapter-shim/tests/fixtures (seed-canonical.yaml + seed-ho11y.yaml)")
    binary = cli.binaries.get("adapter-shim")
    if binary:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(text)
            f.flush()
            result = subprocess.run([str(binary), "--config", f.name, "--check-config"], capture_output=True, text=True, timeout=60)
        report.check(result.returncode == 0 and "warning" not in result.stdout,
                     f"{label}: adapter-shim --check-config rejects or warns about the rules ConfigMap: {(result.stderr + result.stdout).strip()[:400]}")


def check_remote_write(objects: list[dict], label: str, report: Report) -> None:
    for owner, template in pod_templates(objects):
        spec = template["spec"]
        for container in running_containers(spec):
            where = f"{label}: {kustomize_lite.describe(owner)}: container {container['name']}"
            for volume_mount in container.get("volumeMounts") or []:
                volume = next((v for v in spec.get("volumes") or [] if v["name"] == volume_mount["name"]), {})
                cm = find(objects, "ConfigMap", (volume.get("configMap") or {}).get("name", ""), ns_of(owner))
                if not cm:
                    continue
                for key, text in (cm.get("data") or {}).items():
                    if key == "prometheus.yml":
                        config = yaml.safe_load(text)
                        urls = [rw["url"] for rw in config.get("remote_write") or []]
                        promtool = shutil.which("promtool")
                        if promtool:
                            report.check(*promtool_check(promtool, config, where, report))
                    elif key == "config.yaml" and "exporters" in text:
                        config = yaml.safe_load(text)
                        urls = [e["endpoint"] for n, e in (config.get("exporters") or {}).items() if n.startswith("prometheusremotewrite")]
                        pipelines = (config.get("service") or {}).get("pipelines") or {}
                        for name, pipeline in pipelines.items():
                            for part in ("receivers", "processors", "exporters"):
                                for ref in pipeline.get(part) or []:
                                    report.check(ref in (config.get(part) or {}), f"{where}: pipeline {name} uses undefined {part[:-1]} {ref}")
                    else:
                        continue
                    report.check(bool(urls), f"{where}: {cm['metadata']['name']}/{key} has no remote write destination")
                    for url in urls:
                        split = urlsplit(url)
                        report.check(split.hostname in ("127.0.0.1", "localhost"), f"{where}: remote write to {url} bypasses the sidecar")
                        suffix = "/api/v1/remote_write"
                        if report.check(split.path.endswith(suffix), f"{where}: {url} is not AMP's {suffix}"):
                            base = split._replace(path=split.path[: -len(suffix)])
                            check_sidecar_route(objects, container, base, [suffix], where, report)


def promtool_check(promtool: str, config: dict, where: str, report: Report) -> tuple[bool, str]:
    """promtool check config. Debian's Prometheus is built without Kubernetes service
    discovery, so there each kubernetes_sd_configs is swapped for an equivalent
    static_configs (the relabelling, remote_write and the rest are still checked)."""
    def run(cfg: dict) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "prometheus.yml"
            path.write_text(yaml.safe_dump(cfg))
            return subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)

    result = run(config)
    output = result.stdout + result.stderr
    if result.returncode != 0 and "field kubernetes_sd_configs not found" in output:
        swapped = json.loads(json.dumps(config))
        for scrape in swapped.get("scrape_configs") or []:
            if scrape.pop("kubernetes_sd_configs", None) is not None:
                scrape["static_configs"] = [{"targets": ["pod.invalid:80"]}]
        note = "promtool here lacks Kubernetes service discovery (Debian build): kubernetes_sd_configs checked as static_configs"
        if note not in report.notes:
            report.notes.append(note)
        result = run(swapped)
        output = result.stdout + result.stderr
    return result.returncode == 0, f"{where}: promtool check config: {output.strip()[:400]}"


def validate_objects(objects: list[dict], label: str, report: Report, cli: Cli, versions: list[str], served: set[str]) -> None:
    kubernetes_schema_check(objects, label, report, versions)
    keda_schema_check(objects, label, report)
    check_pods(objects, label, report, cli)
    check_services(objects, label, report)
    check_selectors(objects, label, report)
    check_scaling(objects, label, report, served)
    check_apiservices(objects, label, report)
    check_rbac(objects, label, report)
    check_adapter_rules(objects, label, report, cli)
    check_remote_write(objects, label, report)


# --------------------------------------------------------------------------------------
# Rendering, with a real kustomize when there is one


def real_kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    kubectl = shutil.which("kubectl")
    if kubectl and subprocess.run([kubectl, "kustomize", "--help"], capture_output=True).returncode == 0:
        return [kubectl, "kustomize"]
    return None


def render(directory: Path, label: str, report: Report, kustomize: list[str] | None) -> list[dict] | None:
    try:
        objects = kustomize_lite.render(directory)
        report.check(True, "")
    except kustomize_lite.KustomizeError as error:
        report.error(f"{label}: render: {error}")
        return None
    if kustomize:
        result = subprocess.run([*kustomize, str(directory)], capture_output=True, text=True, timeout=120)
        if report.check(result.returncode == 0, f"{label}: {' '.join(kustomize)} failed: {result.stderr.strip()[:400]}"):
            real = [d for d in yaml.safe_load_all(result.stdout) if d]
            mine = {kustomize_lite.object_id(o): o for o in objects}
            theirs = {kustomize_lite.object_id(o): o for o in real}
            differing = sorted(str(k) for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            report.check(not differing, f"{label}: kustomize_lite and {' '.join(kustomize)} disagree on {', '.join(differing[:5])}")
    return objects


def yamllint(paths: list[Path], report: Report, label: str) -> None:
    config = MANIFESTS / ".yamllint"
    result = subprocess.run([sys.executable, "-m", "yamllint", "-f", "parsable", "-c", str(config), *map(str, paths)],
                            capture_output=True, text=True, timeout=120)
    problems = [line for line in result.stdout.splitlines() if line.strip()]
    report.check(result.returncode == 0 and not problems, f"{label}: yamllint: " + "; ".join(problems[:5]))


# --------------------------------------------------------------------------------------
# Dockerfile


def makefile_release_command() -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index("release:")
    command = lines[start + 1].strip()
    return shlex.split(command.replace("$(CARGO)", "cargo"))


def check_dockerfile(path: Path, report: Report, label: str) -> None:
    import dockerfile  # BuildKit's own parser (PyPI dockerfile)

    try:
        commands = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as error:
        report.error(f"{label}: does not parse: {error}")
        return
    instructions = [(c.cmd.upper(), list(c.flags), list(c.value)) for c in commands]
    hadolint = Path(sys.executable).parent / "hadolint"
    if report.check(hadolint.exists(), f"{label}: hadolint is not installed in {hadolint.parent} (make test-deps)"):
        result = subprocess.run([str(hadolint), "--no-color", str(path)], capture_output=True, text=True, timeout=60)
        report.check(result.returncode == 0, f"{label}: hadolint: {result.stdout.strip()[:400]}")
    froms = [value for op, _, value in instructions if op == "FROM"]
    report.check(len(froms) >= 2, f"{label}: not a multi-stage build ({len(froms)} FROM)")
    # ARG defaults.
    args = {}
    for op, _, value in instructions:
        if op == "ARG" and "=" in value[0]:
            key, default = value[0].split("=", 1)
            args[key.strip()] = default.strip().strip('"')
    toolchain = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    report.check(args.get("RUST_VERSION") == toolchain, f"{label}: ARG RUST_VERSION={args.get('RUST_VERSION')} is not rust-toolchain.toml's {toolchain}")
    version = workspace_version()
    report.check(args.get("VERSION") == version, f"{label}: ARG VERSION={args.get('VERSION')} is not the workspace version {version}")
    # The build command is the Makefile's release command.
    runs = [" ".join(value) for op, _, value in instructions if op == "RUN"]
    builds = [re.search(r"cargo build[^&;|]*", r) for r in runs]
    builds = [shlex.split(b.group(0)) for b in builds if b]
    expected = makefile_release_command()
    report.check(len(builds) == 1 and builds[0] == expected,
                 f"{label}: cargo build in the Dockerfile ({' '.join(builds[0]) if builds else 'none'}) is not the Makefile release command ({' '.join(expected)})")
    # Binaries copied from the builder exist in the workspace and go to /usr/local/bin.
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    packages = {tomllib.loads((ROOT / m / "Cargo.toml").read_text())["package"]["name"] for m in members}
    copies = [" ".join(value) for op, flags, value in instructions if op == "COPY" and any(f.startswith("--from=") for f in flags)]
    copied = set(re.findall(r"/usr/local/bin/([\w-]+)", " ".join(copies)))
    report.check(copied == set(BINARIES), f"{label}: installs {sorted(copied)} in /usr/local/bin (the manifests' command paths), expected {list(BINARIES)}")
    built = set(re.findall(r"target/release/([\w-]+)", " ".join(runs)))
    for binary in BINARIES:
        report.check(binary in packages, f"{label}: {binary} is not a package of the workspace")
        report.check(binary in built, f"{label}: target/release/{binary} is not taken from the cargo build")
        report.check(f'"$(target/release/{binary} --version)" = "{binary} ${{VERSION}}"' in " ".join(runs),
                     f"{label}: the build does not check {binary} --version against VERSION")
    # Runs as a numeric non-root user, the one the manifests use.
    users = [value[0] for op, _, value in instructions if op == "USER"]
    last = users[-1] if users else ""
    uid = last.split(":")[0]
    report.check(uid.isdigit() and int(uid) != 0, f"{label}: final USER {last!r} is not a numeric non-root user")
    labels = [value for op, _, value in instructions if op == "LABEL"]
    pairs = {v[i]: v[i + 1] for v in labels for i in range(0, len(v) - 1, 2)}
    report.check(pairs.get("org.opencontainers.image.version", "").strip('"') in ("${VERSION}", "$VERSION"),
                 f"{label}: no org.opencontainers.image.version label from ARG VERSION")


def check_dockerignore(report: Report) -> None:
    path = ROOT / ".dockerignore"
    if not report.check(path.is_file(), ".dockerignore is missing"):
        return
    entries = {line.strip().strip("/") for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for needed in ("target", ".venv", ".git"):
        report.check(needed in entries, f".dockerignore does not exclude {needed}")


# --------------------------------------------------------------------------------------
# Main


def run_broken_fixtures(report: Report, cli: Cli, versions: list[str], served: set[str], kustomize) -> int:
    count = 0
    for fixture in sorted((TESTS / "broken").iterdir()):
        expect = (fixture / "EXPECT").read_text().strip() if (fixture / "EXPECT").exists() else None
        if not report.check(expect is not None, f"broken fixture {fixture.name}: no EXPECT file"):
            continue
        sub = Report()
        label = f"broken/{fixture.name}"
        if (fixture / "Dockerfile").exists():
            check_dockerfile(fixture / "Dockerfile", sub, label)
        else:
            yamllint([fixture], sub, label)
            objects = render(fixture, label, sub, None)
            if objects is not None:
                validate_objects(objects, label, sub, cli, versions, served)
        caught = [e for e in sub.errors if expect in e]
        report.check(bool(caught), f"broken fixture {fixture.name} was not rejected with {expect!r}; errors were: {sub.errors[:3]}")
        count += 1
        print(f"  broken/{fixture.name}: rejected ({len(sub.errors)} error(s)): {caught[0] if caught else sub.errors[:1]}")
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", metavar="OVERLAY", help="print one overlay's rendered YAML and exit")
    parser.add_argument("--keda-npm", action="store_true",
                        help=f"also validate ScaledObjects with {KEDA_NPM_PACKAGE}'s validators (needs node and npm)")
    options = parser.parse_args()
    global keda_npm
    keda_npm = options.keda_npm
    if options.print:
        objects = kustomize_lite.render(MANIFESTS / "overlays" / options.print)
        print(yaml.safe_dump_all(objects, sort_keys=False), end="")
        return 0

    from kubernetes_validate import utils as kv

    versions = [kv.latest_version(), OLDEST_KUBERNETES]
    report = Report()
    cli = discover_cli(report)
    kustomize = real_kustomize()
    if keda_npm:
        report.notes.append(f"ScaledObjects also validated with {KEDA_NPM_PACKAGE} (KEDA's CRDs compiled to validators)")
    report.notes.append("renderer: kustomize_lite" + (f", compared with `{' '.join(kustomize)}`" if kustomize else " (no kustomize here to compare with)"))
    rules = find(kustomize_lite.render(MANIFESTS / "base" / "adapter-shim"), "ConfigMap", "adapter-shim-config")
    served = served_metric_names(rules["data"]["config.yaml"])

    overlays = sorted(p for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())
    total_objects = 0
    kinds: dict[str, int] = {}
    for overlay in overlays:
        label = f"overlays/{overlay.name}"
        before = len(report.errors)
        objects = render(overlay, label, report, kustomize)
        if objects is None:
            continue
        validate_objects(objects, label, report, cli, versions, served)
        total_objects += len(objects)
        for obj in objects:
            kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
        status = "ok" if len(report.errors) == before else f"{len(report.errors) - before} error(s)"
        print(f"  {label}: {len(objects)} objects: {status}")

    readme = (MANIFESTS / "README.md").read_text()
    for overlay in overlays:
        report.check(f"`overlays/{overlay.name}`" in readme, f"manifests/README.md does not describe overlays/{overlay.name}")

    lint_targets = [p for p in MANIFESTS.iterdir() if p.name not in ("tests",)] + [TESTS / "schemas"]
    yamllint([p for p in lint_targets if p.is_dir() or p.suffix in (".yaml", ".yml")], report, "manifests")
    check_dockerfile(ROOT / "Dockerfile", report, "Dockerfile")
    check_dockerignore(report)

    import io
    import unittest

    import test_kustomize_lite

    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=0).run(
        unittest.defaultTestLoader.loadTestsFromModule(test_kustomize_lite))
    report.check(result.wasSuccessful(), f"kustomize_lite unit tests failed:\n{stream.getvalue()}")
    print(f"  kustomize_lite unit tests: {result.testsRun} run, {len(result.failures) + len(result.errors)} failed")

    print("negative fixtures (each must be rejected):")
    broken = run_broken_fixtures(report, cli, versions, served, kustomize)

    for note in report.notes:
        print(f"note: {note}")
    print(f"validated {total_objects} rendered objects from {len(overlays)} overlays against Kubernetes "
          f"{' and '.join(versions)} schemas (strict) and KEDA's ScaledObject schema; "
          f"kinds: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}; {broken} broken fixtures rejected")
    for error in report.errors:
        print(f"ERROR: {error}")
    failed = len(report.errors)
    print(f"test result: {'ok' if not failed else 'FAILED'}. {report.checks - failed} passed; {failed} failed; 0 ignored (validate-manifests checks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
