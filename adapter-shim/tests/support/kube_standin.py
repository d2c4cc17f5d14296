#!/usr/bin/env python3
"""Kubernetes API stand-in for adapter-shim's tests (there is no kube-apiserver here).

It answers what adapter-shim's kube-rs client asks, with the JSON a real kube-apiserver
writes: discovery, List and Watch (with resourceVersion, bookmarks, and the metadata-only
`as=PartialObjectMetadata(List)` form), single-object GET, TokenReview and
SubjectAccessReview. Control endpoints let a test change the cluster and read back what
was asked. Standard library only.

    kube_standin.py [--tls-cert FILE --tls-key FILE] [--exit-with-stdin]

When ready it prints ONE JSON line on stdout, {"port": N, "scheme": "https"|"http",
"control_port": M}; logs go to stderr. The API port speaks HTTPS when given a certificate;
the control port is always plain HTTP (it serves the API routes too). Served types:

  core/v1            pods, services, namespaces, configmaps, nodes (+ pods/status, pods/log)
  apps/v1            deployments (+ deployments/scale, deployments/status)
  stable.example.com v1 (preferred) and v1beta1: crontabs (namespaced, CRD, + crontabs/status),
                     clusterwidgets (cluster-scoped, CRD)
  authentication.k8s.io/v1 tokenreviews (create), authorization.k8s.io/v1
  subjectaccessreviews (create)

Control endpoints (JSON bodies):

  POST /_control/objects     {"op": "apply"|"delete", "resource": "pods" | "deployments.apps"
                              | "crontabs.stable.example.com" | ..., "namespace": "prod",
                              "name": "web-1", "labels": {...}}; answers {"resourceVersion"};
                             {"objects": [{resource, namespace, name, labels}, ...]} applies many
  POST /_control/configmap   {"data": {...}} creates/replaces kube-system/
                             extension-apiserver-authentication; {"delete": true} deletes it
  POST /_control/tokens      {"TOKEN": {"username", "uid", "groups", "extra"}} (merged in;
                             a null value removes the token)
  POST /_control/sar-policy  {"default": "deny"|"allow", "rules": [{"match": {field: value},
                             "allowed": bool, "reason": str}]}; match fields: user, group,
                             verb, group_api (resource group), resource, subresource,
                             namespace, name, path (non-resource)
  POST /_control/fail        {"prefix": "/api/v1/pods", "status": 500, "count": N}
  GET  /_control/recorded    {"tokenreviews": [...], "subjectaccessreviews": [...]}; each
                             entry {"body": request JSON, "authorization": caller header}
  GET  /_control/requests    every API request: {"method", "path", "query", "accept"}
  POST /_control/reset       forget the recordings
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

AUTH_CM_NS = "kube-system"
AUTH_CM_NAME = "extension-apiserver-authentication"


def log(msg: str) -> None:
    sys.stderr.write(f"kube_standin: {msg}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------


class RType:
    def __init__(self, group, versions, plural, singular, kind, namespaced, verbs=None, subresources=()):
        self.group = group
        self.versions = versions  # preferred first
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.namespaced = namespaced
        self.verbs = verbs or ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        self.subresources = subresources

    @property
    def key(self) -> str:
        return self.plural if not self.group else f"{self.plural}.{self.group}"

    def api_version(self, version) -> str:
        return version if not self.group else f"{self.group}/{version}"


TYPES = [
    RType("", ["v1"], "pods", "pod", "Pod", True, subresources=("status", "log")),
    RType("", ["v1"], "services", "service", "Service", True, subresources=("status",)),
    RType("", ["v1"], "namespaces", "namespace", "Namespace", False, subresources=("status", "finalize")),
    RType("", ["v1"], "configmaps", "configmap", "ConfigMap", True),
    RType("", ["v1"], "nodes", "node", "Node", False, subresources=("status",)),
    RType("apps", ["v1"], "deployments", "deployment", "Deployment", True, subresources=("scale", "status")),
    RType("stable.example.com", ["v1", "v1beta1"], "crontabs", "crontab", "CronTab", True, subresources=("status",)),
    RType("stable.example.com", ["v1", "v1beta1"], "clusterwidgets", "clusterwidget", "ClusterWidget", False),
]
REVIEW_GROUPS = {
    "authentication.k8s.io": [("tokenreviews", "TokenReview")],
    "authorization.k8s.io": [("subjectaccessreviews", "SubjectAccessReview")],
}
BY_KEY = {t.key: t for t in TYPES}


def group_versions():
    """(group, [versions]) for every non-core group, in a stable order."""
    groups = {}
    for t in TYPES:
        if t.group:
            groups.setdefault(t.group, [])
            for v in t.versions:
                if v not in groups[t.group]:
                    groups[t.group].append(v)
    for g in REVIEW_GROUPS:
        groups[g] = ["v1"]
    return groups


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


class State:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 100
        self.objects = {t.key: {} for t in TYPES}  # key -> {(ns, name): object}
        self.events = []  # (rv, type_key, event_type, object)
        self.tokens = {}
        self.sar_policy = {"default": "deny", "rules": []}
        self.recorded = {"tokenreviews": [], "subjectaccessreviews": []}
        self.requests = []
        self.failures = []  # [{"prefix", "status", "count"}]
        for ns in ("default", "kube-system", "prod", "dev"):
            self.apply("namespaces", "", ns, {"kubernetes.io/metadata.name": ns})

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def apply(self, key, namespace, name, labels, data=None):
        """Creates or replaces an object; the caller holds no lock."""
        with self.cond:
            t = BY_KEY[key]
            ns = namespace if t.namespaced else ""
            old = self.objects[key].get((ns, name))
            rv = self.next_rv()
            meta = {
                "name": name,
                "uid": old["metadata"]["uid"] if old else str(uuid.uuid4()),
                "resourceVersion": str(rv),
                "creationTimestamp": old["metadata"]["creationTimestamp"]
                if old
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if ns:
                meta["namespace"] = ns
            if labels:
                meta["labels"] = dict(labels)
            obj = {"kind": t.kind, "apiVersion": t.api_version(t.versions[0]), "metadata": meta}
            if key == "pods":
                obj["spec"] = {"containers": [{"name": "app", "image": "example/app:1"}]}
                obj["status"] = {"phase": "Running"}
            elif key == "configmaps":
                obj["data"] = dict(data or {})
            elif key != "namespaces":
                obj["spec"] = {}
            self.objects[key][(ns, name)] = obj
            self.events.append((rv, key, "MODIFIED" if old else "ADDED", obj))
            self.cond.notify_all()
            return rv

    def delete(self, key, namespace, name):
        with self.cond:
            t = BY_KEY[key]
            ns = namespace if t.namespaced else ""
            old = self.objects[key].pop((ns, name), None)
            if old is None:
                return None
            rv = self.next_rv()
            obj = copy.deepcopy(old)
            obj["metadata"]["resourceVersion"] = str(rv)
            self.events.append((rv, key, "DELETED", obj))
            self.cond.notify_all()
            return rv


STATE = State()


def metadata_only(obj):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def match_labels(selector: str, labels: dict) -> bool:
    """Equality-based selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`), enough for tests."""
    if not selector:
        return True
    for req in selector.split(","):
        req = req.strip()
        if not req:
            continue
        if "!=" in req:
            k, v = req.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in req:
            k, v = req.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif req.startswith("!"):
            if req[1:].strip() in labels:
                return False
        elif req not in labels:
            return False
    return True


def match_fields(selector: str, obj) -> bool:
    if not selector:
        return True
    meta = obj["metadata"]
    for req in selector.split(","):
        if "=" not in req:
            continue
        neg = "!=" in req
        k, v = req.replace("!=", "=").replace("==", "=").split("=", 1)
        actual = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}.get(k)
        if actual is None:
            continue
        if (actual == v) == neg:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Discovery documents
# ---------------------------------------------------------------------------------------------


def api_resource_list(group, version):
    resources = []
    types = [t for t in TYPES if t.group == group and version in t.versions]
    for t in types:
        resources.append(
            {
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": t.verbs,
                "storageVersionHash": "x" + t.plural[:6],
            }
        )
        for sub in t.subresources:
            resources.append(
                {
                    "name": f"{t.plural}/{sub}",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": "Scale" if sub == "scale" else t.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    for plural, kind in REVIEW_GROUPS.get(group, []):
        resources.append({"name": plural, "singularName": plural[:-1], "namespaced": False, "kind": kind, "verbs": ["create"]})
    if not resources:
        return None
    gv = version if not group else f"{group}/{version}"
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def api_group(group, versions):
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def status_body(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-standin"

    def log_message(self, fmt, *args):  # quieter than the default
        log(fmt % args)

    # -- helpers ---------------------------------------------------------------------------

    def send_json(self, code, body, content_type="application/json"):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}

    def send_chunk(self, body):
        data = (json.dumps(body) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # -- dispatch --------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        url = urlsplit(self.path)
        path = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/_control/"):
                return self.control(method, path, query)
            with STATE.cond:
                STATE.requests.append({"method": method, "path": path, "query": query, "accept": self.headers.get("Accept", "")})
                for f in STATE.failures:
                    if f["count"] > 0 and path.startswith(f["prefix"]):
                        f["count"] -= 1
                        code = int(f["status"])
                        reason = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests", 503: "ServiceUnavailable"}.get(code, "InternalError")
                        body = status_body(code, reason, f"injected failure {code} for {path}")
                        break
                else:
                    body = None
            if body is not None:
                return self.send_json(code, body)
            self.api(method, path, query)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def control(self, method, path, query):
        if method == "GET" and path == "/_control/recorded":
            with STATE.cond:
                return self.send_json(200, STATE.recorded)
        if method == "GET" and path == "/_control/requests":
            with STATE.cond:
                return self.send_json(200, STATE.requests)
        if method != "POST":
            return self.send_json(404, {"error": "no such control endpoint"})
        body = self.read_json()
        if path == "/_control/objects" and "objects" in body:
            rv = 0
            for item in body["objects"]:
                if item["resource"] not in BY_KEY:
                    return self.send_json(400, {"error": f"unknown resource {item['resource']}"})
                rv = STATE.apply(item["resource"], item.get("namespace", ""), item["name"], item.get("labels") or {})
            return self.send_json(200, {"resourceVersion": rv})
        if path == "/_control/objects":
            key = body["resource"]
            if key not in BY_KEY:
                return self.send_json(400, {"error": f"unknown resource {key}"})
            if body.get("op", "apply") == "delete":
                rv = STATE.delete(key, body.get("namespace", ""), body["name"])
            else:
                rv = STATE.apply(key, body.get("namespace", ""), body["name"], body.get("labels") or {})
            return self.send_json(200, {"resourceVersion": rv})
        if path == "/_control/configmap":
            if body.get("delete"):
                rv = STATE.delete("configmaps", AUTH_CM_NS, AUTH_CM_NAME)
            else:
                rv = STATE.apply("configmaps", AUTH_CM_NS, AUTH_CM_NAME, {}, data=body.get("data") or {})
            return self.send_json(200, {"resourceVersion": rv})
        if path == "/_control/tokens":
            with STATE.cond:
                for token, user in body.items():
                    if user is None:
                        STATE.tokens.pop(token, None)
                    else:
                        STATE.tokens[token] = user
            return self.send_json(200, {})
        if path == "/_control/sar-policy":
            with STATE.cond:
                STATE.sar_policy = {"default": body.get("default", "deny"), "rules": body.get("rules", [])}
            return self.send_json(200, {})
        if path == "/_control/fail":
            with STATE.cond:
                STATE.failures.append({"prefix": body["prefix"], "status": body.get("status", 500), "count": body.get("count", 1)})
            return self.send_json(200, {})
        if path == "/_control/reset":
            with STATE.cond:
                STATE.recorded = {"tokenreviews": [], "subjectaccessreviews": []}
                STATE.requests = []
            return self.send_json(200, {})
        return self.send_json(404, {"error": "no such control endpoint"})

    def api(self, method, path, query):
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if method == "GET" and path == "/version":
            return self.send_json(
                200,
                {
                    "major": "1",
                    "minor": "35",
                    "gitVersion": "v1.35.0-standin",
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.25.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            )
        if method == "GET" and parts == ["api"]:
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server.address}]})
        if method == "GET" and parts == ["apis"]:
            groups = [api_group(g, vs) for g, vs in group_versions().items()]
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if method == "GET" and parts == ["api", "v1"]:
            return self.send_json(200, api_resource_list("", "v1"))
        if parts and parts[0] == "apis" and len(parts) == 2 and method == "GET":
            vs = group_versions().get(parts[1])
            if vs is None:
                return self.not_found(path)
            return self.send_json(200, dict(api_group(parts[1], vs), kind="APIGroup", apiVersion="v1"))
        if parts and parts[0] == "apis" and len(parts) == 3 and method == "GET":
            doc = api_resource_list(parts[1], parts[2])
            return self.send_json(200, doc) if doc else self.not_found(path)
        if method == "POST" and parts == ["apis", "authentication.k8s.io", "v1", "tokenreviews"]:
            return self.token_review()
        if method == "POST" and parts == ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"]:
            return self.subject_access_review()
        # Resource paths: /api/v1/... or /apis/<g>/<v>/...
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts and parts[0] == "apis" and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return self.not_found(path)
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return self.not_found(path)
        key = rest[0] if not group else f"{rest[0]}.{group}"
        t = BY_KEY.get(key)
        if t is None or version not in t.versions or method != "GET":
            return self.not_found(path)
        if namespace and not t.namespaced:
            return self.not_found(path)
        accept = self.headers.get("Accept", "")
        meta_only = "as=PartialObjectMetadata" in accept
        if len(rest) == 2:
            return self.get_one(t, version, namespace, rest[1], meta_only)
        if query.get("watch") in ("true", "1"):
            return self.watch(t, version, namespace, query, meta_only)
        return self.list(t, version, namespace, query, meta_only)

    def not_found(self, path):
        return self.send_json(404, status_body(404, "NotFound", "the server could not find the requested resource", {}))

    def convert(self, t, version, obj, meta_only):
        if meta_only:
            return metadata_only(obj)
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = t.api_version(version)
        return obj

    def get_one(self, t, version, namespace, name, meta_only):
        with STATE.cond:
            obj = STATE.objects[t.key].get((namespace if t.namespaced else "", name))
            obj = copy.deepcopy(obj) if obj else None
        if obj is None:
            return self.send_json(
                404,
                status_body(404, "NotFound", f'{t.plural}{"." + t.group if t.group else ""} "{name}" not found', {"name": name, "group": t.group, "kind": t.plural}),
            )
        return self.send_json(200, self.convert(t, version, obj, meta_only))

    def selected(self, t, namespace, query):
        out = []
        for (ns, _), obj in sorted(STATE.objects[t.key].items()):
            if namespace and ns != namespace:
                continue
            if not match_labels(query.get("labelSelector", ""), obj["metadata"].get("labels", {})):
                continue
            if not match_fields(query.get("fieldSelector", ""), obj):
                continue
            out.append(obj)
        return out

    def list(self, t, version, namespace, query, meta_only):
        with STATE.cond:
            items = [self.convert(t, version, o, meta_only) for o in self.selected(t, namespace, query)]
            rv = str(STATE.rv)
        if meta_only:
            kind, api_version = "PartialObjectMetadataList", "meta.k8s.io/v1"
        else:
            kind, api_version = t.kind + "List", t.api_version(version)
        self.send_json(200, {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv}, "items": items})

    def watch(self, t, version, namespace, query, meta_only):
        timeout = min(float(query.get("timeoutSeconds") or 60), 290.0)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        since = query.get("resourceVersion", "")
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with STATE.cond:
            if since in ("", "0"):
                # "Start at any point": synthetic ADDED events for the current state.
                for obj in self.selected(t, namespace, query):
                    self.send_chunk({"type": "ADDED", "object": self.convert(t, version, obj, meta_only)})
                cursor = STATE.rv
            else:
                cursor = int(since)
        last_bookmark = time.monotonic()
        while True:
            with STATE.cond:
                pending = [e for e in STATE.events if e[0] > cursor and e[1] == t.key]
                if not pending:
                    STATE.cond.wait(timeout=0.5)
                    pending = [e for e in STATE.events if e[0] > cursor and e[1] == t.key]
                current = STATE.rv
            for rv, _, etype, obj in pending:
                cursor = max(cursor, rv)
                if namespace and obj["metadata"].get("namespace", "") != namespace:
                    continue
                if not match_labels(query.get("labelSelector", ""), obj["metadata"].get("labels", {})):
                    continue
                if not match_fields(query.get("fieldSelector", ""), obj):
                    continue
                self.send_chunk({"type": etype, "object": self.convert(t, version, obj, meta_only)})
            now = time.monotonic()
            if bookmarks and now - last_bookmark >= 1.0:
                cursor = max(cursor, current)
                kind = "PartialObjectMetadata" if meta_only else t.kind
                api_version = "meta.k8s.io/v1" if meta_only else t.api_version(version)
                self.send_chunk({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(cursor)}}})
                last_bookmark = now
            if now >= deadline:
                break
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- reviews ---------------------------------------------------------------------------

    def record(self, kind, body):
        with STATE.cond:
            STATE.recorded[kind].append({"body": body, "authorization": self.headers.get("Authorization", "")})

    def token_review(self):
        body = self.read_json()
        self.record("tokenreviews", body)
        token = (body.get("spec") or {}).get("token", "")
        with STATE.cond:
            user = STATE.tokens.get(token)
        status = {"authenticated": False, "error": "token not recognised"} if user is None else {"authenticated": True, "user": user, "audiences": (body.get("spec") or {}).get("audiences") or []}
        out = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": None}, "spec": body.get("spec") or {}, "status": status}
        self.send_json(201, out)

    def subject_access_review(self):
        body = self.read_json()
        self.record("subjectaccessreviews", body)
        spec = body.get("spec") or {}
        ra = spec.get("resourceAttributes") or {}
        na = spec.get("nonResourceAttributes") or {}
        fields = {
            "user": spec.get("user", ""),
            "verb": ra.get("verb") or na.get("verb", ""),
            "group_api": ra.get("group", ""),
            "resource": ra.get("resource", ""),
            "subresource": ra.get("subresource", ""),
            "namespace": ra.get("namespace", ""),
            "name": ra.get("name", ""),
            "path": na.get("path", ""),
        }
        groups = spec.get("groups") or []
        with STATE.cond:
            policy = copy.deepcopy(STATE.sar_policy)
        allowed, reason = policy["default"] == "allow", ""
        for rule in policy["rules"]:
            m = rule.get("match", {})
            ok = all((v in groups) if k == "group" else fields.get(k, None) == v for k, v in m.items())
            if ok:
                allowed, reason = bool(rule.get("allowed")), rule.get("reason", "")
                break
        status = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        if not allowed:
            status["denied"] = False
        out = {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
        self.send_json(201, out)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address = ""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--exit-with-stdin", action="store_true")
    args = parser.parse_args(argv)

    if args.exit_with_stdin:

        def watch_parent():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()

    server = Server(("127.0.0.1", 0), Handler)
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    port = server.server_address[1]
    server.address = f"127.0.0.1:{port}"
    control = Server(("127.0.0.1", 0), Handler)
    control.address = server.address
    control_port = control.server_address[1]
    threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.5}, name="control", daemon=True).start()
    log(f"listening on {scheme}://127.0.0.1:{port}, control on http://127.0.0.1:{control_port}")
    sys.stdout.write(json.dumps({"port": port, "scheme": scheme, "control_port": control_port}) + "\n")
    sys.stdout.flush()
    sys.stdout = sys.stderr
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
