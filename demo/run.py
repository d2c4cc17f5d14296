#!/usr/bin/env python3
"""`make demo`: the whole loop on one machine, no cloud, no cluster.

    workload pods ──scrape── Prometheus ──remote_write── sigv4-proxy (write) ──SigV4──┐
         ▲                                                                             ▼
    load generator                                       AMP stand-in (verifies every signature)
         │                                                                             │
    "HPA": desired = ceil(pods × avg / 10)                             Prometheus (AMP storage)
         ▲                                                                             ▲
    adapter-shim (custom.metrics.k8s.io) ──/api/v1/query── sigv4-proxy (read-only) ──SigV4┘

Started by scripts/demo (which installs what is missing and builds the release binaries).
Ctrl-C stops everything: the load first, then the shim, the proxies (which drain), the
Prometheus servers and the stand-in.

    run.py [--duration SECONDS] [--workdir DIR] [--refresh SECONDS]

The adapter-shim step runs when target/release/adapter-shim serves (has --prometheus-url)
and a Kubernetes API stand-in (adapter-shim/tests/support/kube_standin.py) is there to
list the pods; until then the display computes the same values from the same PromQL the
shim sends, through the same read-only proxy.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
STANDIN = ROOT / "sigv4-proxy" / "tests" / "support" / "amp_standin.py"
KUBE_STANDIN = ROOT / "adapter-shim" / "tests" / "support" / "kube_standin.py"
RULES_CONFIGMAP = ROOT / "manifests" / "base" / "adapter-shim" / "configmap.yaml"

WORKSPACE = "ws-demo0000-0000-0000-0000-000000000000"
REGION = "us-east-1"
# Demo credentials: the proxies read them from the environment (the first link of the
# default credential chain); the stand-in knows the same pair and verifies with it.
ACCESS_KEY = "AKIADEMO00000EXAMPLE"
SECRET_KEY = "demo/secret/key/for/the/amp/standin/EXAMPLEKEY"

NAMESPACE = "demo"
APP = "http-app"
METRIC = "http_requests_per_second"
TARGET_PER_POD = 10.0
MIN_REPLICAS, MAX_REPLICAS = 1, 10
HPA_SYNC_SECONDS = 15
HPA_TOLERANCE = 0.1
SCALE_DOWN_WINDOW = 60  # the HPA's default is 300 s; shortened so the demo comes back down
SCRAPE_INTERVAL = "5s"

# Load profile: (seconds from the start of the cycle, requests per second), linear between.
PROFILE = [(0, 4), (30, 4), (120, 75), (210, 75), (300, 4), (360, 4)]


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in ok:
                    return
        except Exception as error:  # noqa: BLE001 (any failure means "not yet")
            last = error
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready: {last}")


def get_json(url: str, timeout: float = 5, headers: dict | None = None, context=None) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return json.loads(response.read())


class Processes:
    """Child processes, each in its own session (so a terminal Ctrl-C reaches only this
    orchestrator, which then stops them in reverse order of start)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.lock = threading.Lock()

    def start(self, name: str, argv: list[str], env: dict | None = None, stdout=None, stdin=None) -> subprocess.Popen:
        logfile = open(self.workdir / f"{name}.log", "ab")
        process = subprocess.Popen(
            argv, stdout=stdout or logfile, stderr=logfile, stdin=stdin or subprocess.DEVNULL,
            env=env, start_new_session=True, cwd=self.workdir,
        )
        with self.lock:
            self.children.append((name, process))
        return process

    def check(self) -> None:
        with self.lock:
            for name, process in self.children:
                if process.poll() is not None and not getattr(process, "stopping", False):
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.workdir / (name + '.log')}")

    def stop(self, process: subprocess.Popen, timeout: float = 35) -> None:
        process.stopping = True
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        with self.lock:
            children = list(reversed(self.children))
        for name, process in children:
            if process.poll() is None:
                log(f"  stopping {name}")
                self.stop(process)


# --------------------------------------------------------------------------------------
# Workload pods and the load generator


class Workload:
    """The Deployment: pods are local processes; Prometheus discovers them through a
    file_sd targets file with the namespace/pod labels Kubernetes discovery would add."""

    def __init__(self, procs: Processes, targets_file: Path):
        self.procs = procs
        self.targets_file = targets_file
        self.pods: dict[str, tuple[int, subprocess.Popen]] = {}
        self.serial = 0
        self.lock = threading.Lock()
        self.write_targets()

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self.pods, key=lambda n: int(n.rsplit("-", 1)[1]))

    def endpoints(self) -> list[int]:
        with self.lock:
            return [port for port, _ in self.pods.values()]

    def write_targets(self) -> None:
        with self.lock:
            groups = [{"targets": [f"127.0.0.1:{port}"],
                       "labels": {"namespace": NAMESPACE, "pod": name, "kubernetes_pod_name": name, "app": APP}}
                      for name, (port, _) in sorted(self.pods.items())]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=1))
        tmp.replace(self.targets_file)

    def scale(self, replicas: int, on_change=None) -> None:
        while len(self.pods) < replicas:
            self.serial += 1
            name = f"{APP}-{self.serial}"
            port = free_port()
            process = self.procs.start(f"pod-{name}", [sys.executable, str(ROOT / "demo" / "workload.py"), "--port", str(port), "--pod", name])
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=20)
            with self.lock:
                self.pods[name] = (port, process)
            if on_change:
                on_change("apply", name)
        while len(self.pods) > replicas:
            name = self.names()[-1]
            with self.lock:
                port, process = self.pods.pop(name)
            if on_change:
                on_change("delete", name)
            self.write_targets()
            self.procs.stop(process, timeout=5)
        self.write_targets()


def profile_rate(elapsed: float) -> float:
    cycle = PROFILE[-1][0]
    t = elapsed % cycle
    for (t0, r0), (t1, r1) in zip(PROFILE, PROFILE[1:]):
        if t0 <= t <= t1:
            return r0 + (r1 - r0) * (t - t0) / (t1 - t0) if t1 > t0 else r1
    return PROFILE[-1][1]


def profile_phase(elapsed: float) -> str:
    t = elapsed % PROFILE[-1][0]
    for (t0, r0), (t1, r1) in zip(PROFILE, PROFILE[1:]):
        if t0 <= t <= t1:
            return "steady" if r0 == r1 else ("ramping up" if r1 > r0 else "ramping down")
    return "steady"


class LoadGenerator:
    """Open-loop GETs at the profile's rate, spread round-robin over the live pods (as a
    Service would)."""

    def __init__(self, workload: Workload, workers: int = 8):
        self.workload = workload
        self.queue: queue.Queue = queue.Queue(maxsize=2000)
        self.stop_event = threading.Event()
        self.sent = 0
        self.failed = 0
        self.started = time.monotonic()
        self.rate = 0.0
        self.threads = [threading.Thread(target=self.dispatch, name="load-dispatch", daemon=True)]
        self.threads += [threading.Thread(target=self.worker, name=f"load-{i}", daemon=True) for i in range(workers)]

    def start(self) -> None:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def dispatch(self) -> None:
        due = 0.0
        last = time.monotonic()
        turn = 0
        while not self.stop_event.is_set():
            time.sleep(0.02)
            now = time.monotonic()
            self.rate = profile_rate(now - self.started)
            due += self.rate * (now - last)
            last = now
            ports = self.workload.endpoints()
            while due >= 1 and ports:
                due -= 1
                turn += 1
                try:
                    self.queue.put_nowait(ports[turn % len(ports)])
                except queue.Full:
                    self.failed += 1

    def worker(self) -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        while not self.stop_event.is_set():
            try:
                port = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            connection = connections.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connections[port] = connection
            try:
                connection.request("GET", "/")
                connection.getresponse().read()
                self.sent += 1
            except (OSError, http.client.HTTPException):
                self.failed += 1
                connection.close()
                connections.pop(port, None)


# --------------------------------------------------------------------------------------
# The metric as the HPA sees it


def quantity(value: float) -> str:
    """prometheus-adapter's NewMilliQuantity(int64(v*1000), DecimalSI), canonical form."""
    if math.isnan(value):
        value = 0.0
    milli = int(value * 1000)
    if milli % 1000:
        return f"{milli}m"
    units = iter(["", "k", "M", "G", "T", "P", "E"])
    number, unit = milli // 1000, next(units)
    while number and number % 1000 == 0:
        number, unit = number // 1000, next(units)
    return f"{number}{unit}"


def milli_value(q: str) -> int:
    """Quantity.MilliValue() for the forms quantity() and the shim produce."""
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(m|k|M|G|T|P|E)?", q)
    if not match:
        raise ValueError(q)
    scale = {"m": 1, None: 1000, "k": 10**6, "M": 10**9, "G": 10**12, "T": 10**15, "P": 10**18, "E": 10**21}[match.group(2)]
    return math.ceil(float(match.group(1)) * scale)


class ComputedSource:
    """What the shim will serve, computed from the same query through the same proxy:
    the rule's metricsQuery rendered for the listed pods (anchor §12 step 4)."""

    name = "computed from PromQL through the read-only sigv4-proxy (adapter-shim not serving yet)"

    def __init__(self, proxy_port: int, rule: dict, workload: Workload):
        self.base = f"http://127.0.0.1:{proxy_port}/workspaces/{WORKSPACE}"
        self.rule = rule
        self.workload = workload
        self.last_query = ""

    def discovery(self) -> str:
        query = urllib.parse.urlencode({"match[]": self.rule["seriesQuery"], "start": f"{time.time() - 300:.3f}"})
        body = get_json(f"{self.base}/api/v1/series?{query}")
        names = sorted({s["__name__"] for s in body.get("data") or []})
        pods = sorted({s.get("pod", "") for s in body.get("data") or []})
        return f"/api/v1/series found {', '.join(names) or 'nothing yet'} for {len(pods)} pod(s)"

    def items(self) -> list[dict]:
        pods = self.workload.names()
        if not pods:
            return []
        matcher = f'pod="{pods[0]}"' if len(pods) == 1 else f'pod=~"{"|".join(pods)}"'
        series = re.match(r"\s*(\w+)", self.rule["seriesQuery"]).group(1)
        query = (self.rule["metricsQuery"].replace("<<.Series>>", series)
                 .replace("<<.LabelMatchers>>", f'namespace="{NAMESPACE}",{matcher}')
                 .replace("<<.GroupBy>>", "pod"))
        self.last_query = query
        params = urllib.parse.urlencode({"query": query, "time": f"{time.time():.3f}", "timeout": ""})
        body = get_json(f"{self.base}/api/v1/query?{params}")
        values = {r["metric"].get("pod"): float(r["value"][1]) for r in body["data"]["result"]}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return [{"describedObject": {"kind": "Pod", "namespace": NAMESPACE, "name": pod, "apiVersion": "/v1"},
                 "metric": {"name": METRIC, "selector": None}, "timestamp": stamp, "value": quantity(values[pod])}
                for pod in pods if pod in values]


class ShimSource:
    """GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second
    ?labelSelector=app=http-app from adapter-shim, as the HPA (through the aggregator) and
    `kubectl get --raw` ask it."""

    name = "adapter-shim (custom.metrics.k8s.io/v1beta2, via the read-only sigv4-proxy)"

    def __init__(self, port: int, token: str):
        self.url = (f"https://127.0.0.1:{port}/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}"
                    f"/pods/%2A/{METRIC}?labelSelector=" + urllib.parse.quote(f"app={APP}"))
        self.token = token
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # the shim's self-signed certificate
        self.last_query = "(the shim's own, from the rules ConfigMap)"

    def discovery(self) -> str:
        body = get_json(self.url.split("/namespaces/")[0], headers={"Authorization": f"Bearer {self.token}"}, context=self.context)
        return "custom.metrics.k8s.io/v1beta2 lists " + (", ".join(r["name"] for r in body.get("resources") or []) or "nothing yet")

    def items(self) -> list[dict]:
        try:
            body = get_json(self.url, headers={"Authorization": f"Bearer {self.token}"}, context=self.context)
        except urllib.error.HTTPError as error:
            if error.code == 404:  # no data yet for the listed pods
                return []
            raise
        return body.get("items") or []


class Hpa:
    """The autoscaling/v2 replica calculation for a Pods metric with an AverageValue target."""

    def __init__(self):
        self.recommendations: list[tuple[float, int]] = []
        self.last_sync = 0.0

    def desired(self, pods: list[str], items: list[dict]) -> tuple[int, str]:
        """The HPA's replica calculation (replica_calculator.go GetMetricReplicas) for the
        listed pods: pods without a value are "missing", assumed at 0 when scaling up and at
        the target when scaling down, and a result that would reverse direction is dropped."""
        current = len(pods)
        values = {i["describedObject"]["name"]: milli_value(i["value"]) for i in items}
        values = {pod: v for pod, v in values.items() if pod in pods}
        if not values:
            return current, "no metrics yet: keep the current count"
        target = TARGET_PER_POD * 1000
        ratio = sum(values.values()) / len(values) / target
        missing = [pod for pod in pods if pod not in values]
        average = sum(values.values()) / len(values) / 1000
        bounds = f"(min {MIN_REPLICAS}, max {MAX_REPLICAS})"
        if not missing:
            if abs(ratio - 1) <= HPA_TOLERANCE:
                return current, f"average {average:.2f} within {HPA_TOLERANCE:.0%} of the target {TARGET_PER_POD:g}: keep {current}"
            raw = math.ceil(len(values) * ratio)
            clamped = max(MIN_REPLICAS, min(MAX_REPLICAS, raw))
            return clamped, (f"desired = ceil({len(values)} × {average:.2f} / {TARGET_PER_POD:g}) = {raw}"
                             + (f" → {clamped} " if clamped != raw else " ") + bounds)
        assumed = target if ratio < 1 else 0
        total = sum(values.values()) + assumed * len(missing)
        new_ratio = total / (len(values) + len(missing)) / target
        note = f"{len(missing)} pod(s) without data yet, counted as {assumed / 1000:g}"
        if abs(new_ratio - 1) <= HPA_TOLERANCE or (ratio > 1) != (new_ratio > 1):
            return current, f"{note}: keep {current}"
        raw = math.ceil(new_ratio * current)
        if (new_ratio > 1 and raw < current) or (new_ratio < 1 and raw > current):
            return current, f"{note}: keep {current}"
        clamped = max(MIN_REPLICAS, min(MAX_REPLICAS, raw))
        return clamped, (f"{note}: desired = ceil({current} × {total / current / 1000:.2f} / {TARGET_PER_POD:g}) = {raw}"
                         + (f" → {clamped} " if clamped != raw else " ") + bounds)

    def stabilized(self, now: float, desired: int, current: int) -> int:
        """Scale up at once; scale down to the highest recommendation of the window."""
        self.recommendations = [(t, r) for t, r in self.recommendations if now - t <= SCALE_DOWN_WINDOW] + [(now, desired)]
        if desired >= current:
            return desired
        return min(current, max(r for _, r in self.recommendations))


# --------------------------------------------------------------------------------------
# Proxy and stand-in statistics


def proxy_counts(admin_port: int) -> dict[str, int]:
    """sigv4_proxy_requests_total summed by route and status class."""
    counts: dict[str, int] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return counts
    for match in re.finditer(r'^sigv4_proxy_requests_total\{([^}]*)\} (\S+)', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        key = f"{labels.get('route')} {labels.get('status', '?')[0]}xx"
        counts[key] = counts.get(key, 0) + int(float(match.group(2)))
    return counts


class StandinStats:
    def __init__(self, port: int):
        self.port = port
        self.verified = 0
        self.rejected = 0
        self.by_path: dict[str, int] = {}
        self.last_rejection = ""

    def poll(self) -> None:
        try:
            records = get_json(f"http://127.0.0.1:{self.port}/__standin/requests")
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.port}/__standin/reset", method="POST"), timeout=2).read()
        except OSError:
            return
        for record in records:
            path = record["target"].split("?", 1)[0].rsplit("/", 1)[-1]
            if record.get("verified"):
                self.verified += 1
                self.by_path[path] = self.by_path.get(path, 0) + 1
            else:
                self.rejected += 1
                self.last_rejection = record.get("detail", "")


# --------------------------------------------------------------------------------------
# Start-up


def shim_serves(binary: Path) -> bool:
    if not binary.is_file():
        return False
    result = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=20)
    return "--prometheus-url" in result.stdout


def proxy_argv(binary: Path, standin_port: int, port: int, admin: int, allow: list[str], read_only: bool) -> list[str]:
    argv = [str(binary), "--host", f"127.0.0.1:{standin_port}", "--upstream-url-scheme", "http",
            "--name", "aps", "--region", REGION, "--port", f"127.0.0.1:{port}", "--admin-port", f"127.0.0.1:{admin}",
            "--shutdown-timeout", "5s", "--log-failed-requests"]
    for path in allow:
        argv += ["--allow-path", path]
    if read_only:
        argv.append("--read-only")
    return argv


def proxy_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    return env


def start_prometheus(procs: Processes, name: str, workdir: Path, config: str, extra: list[str]) -> int:
    port = free_port()
    (workdir / f"{name}.yml").write_text(config)
    procs.start(name, ["prometheus", f"--config.file={workdir / (name + '.yml')}", f"--storage.tsdb.path={workdir / (name + '-data')}",
                       f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=2h", *extra])
    wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60)
    return port


def start_shim(procs: Processes, workdir: Path, proxy_port: int, rules_text: str, workload: Workload):
    """adapter-shim against the Kubernetes API stand-in; returns (ShimSource, on_change)."""
    if not KUBE_STANDIN.is_file():
        raise RuntimeError(f"{KUBE_STANDIN.relative_to(ROOT)} is not in this tree yet")
    process = procs.start("kube-standin", [sys.executable, str(KUBE_STANDIN), "--exit-with-stdin"],
                          stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    ready = json.loads(process.stdout.readline())
    api = f"{ready.get('scheme', 'http')}://127.0.0.1:{ready['port']}"
    control = f"http://127.0.0.1:{ready['control_port']}"
    token = "demo-hpa-token"

    def post(path: str, body: dict) -> None:
        request = urllib.request.Request(control + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).read()

    post("/_control/tokens", {token: {"username": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                                      "uid": "demo", "groups": ["system:serviceaccounts", "system:authenticated"]}})
    post("/_control/sar-policy", {"default": "allow", "rules": []})
    post("/_control/objects", {"op": "apply", "resource": "namespaces", "name": NAMESPACE, "labels": {}})
    for name in workload.names():
        post("/_control/objects", {"op": "apply", "resource": "pods", "namespace": NAMESPACE, "name": name, "labels": {"app": APP}})

    def on_change(op: str, name: str) -> None:
        post("/_control/objects", {"op": op, "resource": "pods", "namespace": NAMESPACE, "name": name, "labels": {"app": APP}})

    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "demo",
        "clusters": [{"name": "demo", "cluster": {"server": api, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "demo", "user": {"token": "demo-shim-token"}}],
        "contexts": [{"name": "demo", "context": {"cluster": "demo", "user": "demo"}}],
    }))
    config = workdir / "adapter-config.yaml"
    config.write_text(rules_text)
    port = free_port()
    procs.start("adapter-shim", [str(RELEASE / "adapter-shim"), "--config", str(config),
                                 "--prometheus-url", f"http://127.0.0.1:{proxy_port}/workspaces/{WORKSPACE}",
                                 "--metrics-relist-interval", "15s", "--metrics-max-age", "5m",
                                 "--secure-port", str(port), "--authorization-mode", "allow-authenticated",
                                 "--kubeconfig", str(kubeconfig)])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", timeout=2, context=context) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        procs.check()
        if time.monotonic() > deadline:
            raise RuntimeError("adapter-shim did not become ready in 60 s")
        time.sleep(0.5)
    return ShimSource(port, token), on_change


# --------------------------------------------------------------------------------------
# Display


def render(elapsed: float, load: LoadGenerator, workload: Workload, source, items: list[dict], decision: str,
           desired: int, write_counts: dict, read_counts: dict, standin: StandinStats, error: str) -> str:
    minutes, seconds = divmod(int(elapsed), 60)
    lines = [
        f"── {minutes:02d}:{seconds:02d} ── load {load.rate:5.1f} req/s ({profile_phase(elapsed)}), sent {load.sent}"
        + (f", failed {load.failed}" if load.failed else "") + f" ── pods {len(workload.names())} ──",
        f"$ kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}/pods/*/{METRIC}?labelSelector=app%3D{APP}'",
        f"  # answered by: {source.name}",
    ]
    if error:
        lines.append(f"  # metric read failed: {error}")
    head = '{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},"items":['
    if items:
        lines.append(head)
        for n, item in enumerate(items):
            lines.append("  " + json.dumps(item, separators=(",", ":")) + ("," if n < len(items) - 1 else ""))
        lines.append("]}")
        per_pod = ", ".join(f"{i['describedObject']['name']} {milli_value(i['value']) / 1000:.2f}/s" for i in items)
        lines.append(f"  per pod: {per_pod}")
    else:
        lines.append(head + "]}   # no samples yet: rate() needs two scrapes of each pod")
    lines.append(f"  HPA (Pods metric {METRIC}, AverageValue {TARGET_PER_POD:g}, {MIN_REPLICAS}-{MAX_REPLICAS} replicas): {decision}")
    lines.append(f"  → replicas an HPA would choose now: {desired}")
    write = ", ".join(f"{k} {v}" for k, v in sorted(write_counts.items())) or "-"
    read = ", ".join(f"{k} {v}" for k, v in sorted(read_counts.items())) or "-"
    lines.append(f"  sigv4-proxy write: {write} │ read-only: {read}")
    paths = ", ".join(f"{k} {v}" for k, v in sorted(standin.by_path.items()))
    lines.append(f"  AMP stand-in: {standin.verified} signatures verified ({paths}), {standin.rejected} rejected"
                 + (f" (last: {standin.last_rejection})" if standin.rejected else ""))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--workdir", type=Path, help="logs and data (default: a new temporary directory)")
    parser.add_argument("--refresh", type=float, default=5, help="seconds between display updates")
    parser.add_argument("--no-shim", action="store_true", help="always use the computed fallback")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="amp-sigv4-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    procs = Processes(workdir)
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    load = None
    try:
        rules_text = yaml.safe_load(RULES_CONFIGMAP.read_text())["data"]["config.yaml"]
        rule = next(r for r in yaml.safe_load(rules_text)["rules"] if r["seriesQuery"].startswith("http_requests_total"))
        log(f"demo: logs and data in {workdir}")

        log("[1/7] Prometheus as AMP's storage (remote-write receiver on)")
        backend = start_prometheus(procs, "amp-storage", workdir, "global: {}\n", ["--web.enable-remote-write-receiver"])

        log(f"[2/7] AMP stand-in: verifies every SigV4 signature (botocore) for workspace {WORKSPACE}, then forwards")
        standin_proc = procs.start("amp-standin", [sys.executable, str(STANDIN), "--upstream", f"http://127.0.0.1:{backend}",
                                                   "--workspace", WORKSPACE, "--region", REGION, "--service", "aps",
                                                   "--static-key", f"{ACCESS_KEY}:{SECRET_KEY}", "--exit-with-stdin"],
                                   stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        standin_port = json.loads(standin_proc.stdout.readline())["port"]
        standin = StandinStats(standin_port)

        log("[3/7] sigv4-proxy (write): remote_write only, demo credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        write_port, write_admin = free_port(), free_port()
        procs.start("sigv4-proxy-write", proxy_argv(RELEASE / "sigv4-proxy", standin_port, write_port, write_admin,
                                                    [f"/workspaces/{WORKSPACE}/api/v1/remote_write"], False), env=proxy_env())
        wait_http(f"http://127.0.0.1:{write_admin}/readyz")

        log(f"[4/7] sample workload {APP} (1 pod, prometheus_client) and a load generator ramping 4 → 75 → 4 req/s")
        workload = Workload(procs, workdir / "targets.json")
        workload.scale(1)
        load = LoadGenerator(workload)
        load.start()

        log(f"[5/7] Prometheus scraping the pods every {SCRAPE_INTERVAL}, remote-writing through the write proxy")
        start_prometheus(procs, "prometheus", workdir, yaml.safe_dump({
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [{"job_name": APP, "file_sd_configs": [{"files": [str(workdir / "targets.json")], "refresh_interval": "5s"}]}],
            "remote_write": [{"url": f"http://127.0.0.1:{write_port}/workspaces/{WORKSPACE}/api/v1/remote_write",
                              "queue_config": {"batch_send_deadline": "2s"}}],
        }), [])

        log("[6/7] sigv4-proxy (read-only): only /api/v1/query and /api/v1/series of the workspace")
        read_port, read_admin = free_port(), free_port()
        procs.start("sigv4-proxy-read", proxy_argv(RELEASE / "sigv4-proxy", standin_port, read_port, read_admin,
                                                   [f"/workspaces/{WORKSPACE}/api/v1/query", f"/workspaces/{WORKSPACE}/api/v1/series"], True),
                    env=proxy_env())
        wait_http(f"http://127.0.0.1:{read_admin}/readyz")

        on_change = None
        source = ComputedSource(read_port, rule, workload)
        if args.no_shim:
            log("[7/7] adapter-shim: skipped (--no-shim); computing its answer from PromQL through the read-only proxy")
        elif not shim_serves(RELEASE / "adapter-shim"):
            log("[7/7] adapter-shim: target/release/adapter-shim does not serve yet (no --prometheus-url);"
                " computing its answer from the same PromQL through the read-only proxy")
        else:
            log("[7/7] adapter-shim: serving custom.metrics.k8s.io, querying through the read-only proxy")
            try:
                source, on_change = start_shim(procs, workdir, read_port, rules_text, workload)
            except Exception as error:  # noqa: BLE001 (fall back, say why)
                log(f"      adapter-shim could not start ({error}); using the computed fallback")
        log(f"      rule: {rule['seriesQuery']} → {METRIC}; metricsQuery {rule['metricsQuery']}")
        log("      Ctrl-C stops everything.\n")

        hpa = Hpa()
        started = time.monotonic()
        last_hpa = started
        discovered = False
        failures = 0
        while not stopping.is_set():
            stopping.wait(args.refresh)
            now = time.monotonic()
            elapsed = now - started
            procs.check()
            error = ""
            items: list[dict] = []
            try:
                if not discovered and elapsed > 20:
                    log(f"  discovery: {source.discovery()}")
                    discovered = True
                items = source.items()
                failures = 0
            except Exception as exc:  # noqa: BLE001 (shown, and the loop goes on)
                error = str(exc)[:200]
                failures += 1
                if isinstance(source, ShimSource) and failures >= 6:
                    log(f"  adapter-shim failed {failures} times in a row ({error}); switching to the computed fallback"
                        f" (shim log: {workdir / 'adapter-shim.log'})")
                    source = ComputedSource(read_port, rule, workload)
            current = len(workload.names())
            desired, decision = hpa.desired(workload.names(), items)
            if now - last_hpa >= HPA_SYNC_SECONDS:
                last_hpa = now
                target = hpa.stabilized(now, desired, current)
                if target != current:
                    decision += f"; scaling {current} → {target}" + (" (scale-down stabilized over 60 s)" if target < current and target != desired else "")
                    workload.scale(target, on_change)
            standin.poll()
            print(render(elapsed, load, workload, source, items, decision, desired,
                         proxy_counts(write_admin), proxy_counts(read_admin), standin, error), flush=True)
            (workdir / "last-metric-value-list.json").write_text(json.dumps(
                {"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {}, "items": items}, indent=1))
            if args.duration and elapsed >= args.duration:
                break
    except RuntimeError as error:
        log(f"demo: {error}")
        return 1
    finally:
        log("\ndemo: stopping (load generator, then every process in reverse order of start)")
        if load:
            load.stop()
        procs.stop_all()
        log(f"demo: stopped; logs in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
