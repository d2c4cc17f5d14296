#!/usr/bin/env python3
"""AMP stand-in: a strict, independent SigV4 verifier in front of a real Prometheus.

The integration tests put this between sigv4-proxy and a real Prometheus. Every request under
/workspaces/<ws>/ is verified the way a SigV4 server does it (signature math from botocore,
canonical query and header checks written here); verified requests go on to Prometheus,
everything else gets the 403 AMP would give. Nothing here talks to AWS.

    amp_standin.py --upstream http://127.0.0.1:9090 --workspace ws-test --region us-east-1 \
        --service aps [--static-key AKID:SECRET[:TOKEN]]... [--creds-ttl 900] \
        [--creds-token TOKEN] [--moto]

When ready it prints ONE JSON line on stdout, {"port": N, "moto_port": M or null}; logs go to
stderr. Routes:

  /workspaces/<ws>/<rest>       verified, then forwarded to <upstream>/<rest> (streamed back);
                                AMP's api/v1/remote_write goes to Prometheus' api/v1/write
  /workspaces/<ws>/__test/...   verified, then answered here (bytes, echo, status, redirect,
                                gzip, slow, reset, garbage)
  GET  /__creds                 container credentials (ECS / EKS Pod Identity format)
  GET  /__standin/requests      every /workspaces request seen, in order
  POST /__standin/reset         forget them (and the unrouted ones)
  GET  /__standin/stats         {"creds_fetches": n, "sts_calls": m, "connections": c,
                                 "dispatched": d, "creds_requests": r}
  GET  /__standin/unrouted      requests that matched no route: [{"method", "target"}]
  POST /__standin/creds?fail=1  make /__creds answer 500 from now on (fail=0 undoes it)
  POST /__standin/fail-next?count=N&status=S
                                answer the next N verified /workspaces requests with status S
                                (before forwarding or test routes); count=0 cancels

Test routes for failure modes:
  __test/reset?after=N[&framing=chunked|length]
                                200 head, N body bytes, then a TCP reset (no end of body)
  __test/garbage                non-HTTP bytes, then close
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gzip
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote_to_bytes, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)
EXPIRED_TOKEN = "The security token included in the request is expired"

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$"
)
AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")

# Request headers passed on to the upstream Prometheus.
FORWARDED_REQUEST_HEADERS = (
    "content-type",
    "content-encoding",
    "accept",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "user-agent",
)
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    sys.stderr.write(f"{stamp} amp-standin: {message}\n")
    sys.stderr.flush()


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso_z(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Credentials known to the "service"
# --------------------------------------------------------------------------------------------


class KeyEntry:
    __slots__ = ("secret", "token", "expires", "source")

    def __init__(self, secret, token, expires, source):
        self.secret: str = secret
        self.token: str | None = token
        self.expires: datetime.datetime | None = expires
        self.source: str = source


class KeyTable:
    """Access key -> secret, session token and expiry: static keys, keys this process issued
    on /__creds, and (with --moto) keys moto's STS issued."""

    def __init__(self, moto: bool):
        self._lock = threading.Lock()
        self._keys: dict[str, KeyEntry] = {}
        self._moto = moto
        self._issued = 0

    def add(self, akid: str, entry: KeyEntry) -> None:
        with self._lock:
            self._keys[akid] = entry

    def issue(self, ttl_secs: int) -> tuple[str, KeyEntry]:
        with self._lock:
            self._issued += 1
            akid = f"ASIASTANDIN{self._issued:09d}"
            # Real secrets are 40 base64 characters, '/' and '+' included.
            secret = base64.b64encode(secrets.token_bytes(30)).decode()
            token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(96)).decode()
            expires = (utcnow() + datetime.timedelta(seconds=ttl_secs)).replace(microsecond=0)
            entry = KeyEntry(secret, token, expires, "container-credentials")
            self._keys[akid] = entry
            return akid, entry

    @property
    def issued(self) -> int:
        with self._lock:
            return self._issued

    def lookup(self, akid: str) -> KeyEntry | None:
        with self._lock:
            entry = self._keys.get(akid)
        if entry is not None or not self._moto:
            return entry
        for role in moto_assumed_roles():
            if role.access_key_id == akid:
                expires = role.expiration
                if expires.tzinfo is None:  # moto keeps naive UTC datetimes
                    expires = expires.replace(tzinfo=datetime.timezone.utc)
                return KeyEntry(role.secret_access_key, role.session_token, expires, "moto-sts")
        return None


def moto_assumed_roles() -> list:
    """Every AssumedRole record in moto's STS backends (AssumeRole, AssumeRoleWithWebIdentity
    and AssumeRoleWithSAML all append to STSBackend.assumed_roles of the role's account)."""
    from moto.sts.models import sts_backends

    roles = []
    for account_backend in list(dict.values(sts_backends)):
        for backend in list(dict.values(account_backend)):
            roles.extend(list(getattr(backend, "assumed_roles", [])))
    return roles


# --------------------------------------------------------------------------------------------
# Verification (server model)
# --------------------------------------------------------------------------------------------


class Verdict:
    __slots__ = ("ok", "detail", "error_type", "signed_headers")

    def __init__(self, ok, detail, error_type="InvalidSignatureException", signed_headers=None):
        self.ok: bool = ok
        self.detail: str = detail
        self.error_type: str = error_type
        self.signed_headers: list[str] = signed_headers or []


def canonical_query_strict(raw_query: str) -> str:
    """Split the raw query on '&' and the first '=', percent-decode, RFC 3986-encode, sort.
    A '+' is refused before this point, so there is nothing to guess about it."""
    pairs = []
    for part in raw_query.split("&"):
        if part == "":
            continue
        key, _, value = part.partition("=")
        pairs.append(
            (
                quote(unquote_to_bytes(key), safe="-_.~"),
                quote(unquote_to_bytes(value), safe="-_.~"),
            )
        )
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def header_text(value: str) -> str:
    # http.server decodes header bytes as latin-1; sign the UTF-8 text the client had.
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def redact(canonical: str) -> str:
    return re.sub(r"(?m)^(x-amz-security-token:).*$", r"\1<redacted>", canonical)


def verify(method, target, headers, body, keys: KeyTable, region, service, max_skew) -> Verdict:
    hmap: dict[str, list[str]] = {}
    for name, value in headers:
        hmap.setdefault(name.lower(), []).append(value)

    def single(name):
        values = hmap.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise ValueError(f"header {name} appears {len(values)} times")
        return values[0]

    try:
        auth = single("authorization")
        amz_date = single("x-amz-date")
        token_header = single("x-amz-security-token")
        content_sha = single("x-amz-content-sha256")
    except ValueError as err:
        return Verdict(False, str(err))
    if auth is None:
        return Verdict(False, "missing Authorization header")
    m = AUTH_RE.match(auth.strip())
    if not m:
        return Verdict(False, "malformed Authorization header (want AWS4-HMAC-SHA256 "
                       "Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=..., "
                       "Signature=64 hex)")
    akid, scope_date, scope_region, scope_service, signed, signature = m.groups()
    signed_names = signed.split(";")
    if any(n == "" or n != n.lower() for n in signed_names):
        return Verdict(False, f"SignedHeaders must be lowercase names: {signed}", signed_headers=signed_names)
    if signed_names != sorted(set(signed_names)):
        return Verdict(False, f"SignedHeaders must be sorted and unique: {signed}", signed_headers=signed_names)

    def fail(detail, error_type="InvalidSignatureException"):
        return Verdict(False, detail, error_type, signed_names)

    if scope_region != region:
        return fail(f"credential scope region {scope_region!r} is not {region!r}")
    if scope_service != service:
        return fail(f"credential scope service {scope_service!r} is not {service!r}")
    entry = keys.lookup(akid)
    if entry is None:
        return fail(f"unknown access key {akid}")

    if amz_date is None or not AMZ_DATE_RE.match(amz_date):
        return fail("x-amz-date missing or not YYYYMMDDTHHMMSSZ")
    if amz_date[:8] != scope_date:
        return fail(f"x-amz-date {amz_date} does not match credential scope date {scope_date}")
    signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    now = utcnow()
    skew = (now - signed_at).total_seconds()
    if abs(skew) > max_skew:
        return fail(f"signature time {amz_date} is {skew:+.0f}s from server time (max {max_skew}s)")
    if entry.expires is not None and now >= entry.expires:
        return fail(f"credentials {akid} expired at {iso_z(entry.expires)}", "ExpiredTokenException")

    if "host" not in signed_names:
        return fail("host is not a signed header")
    if "x-amz-date" not in signed_names:
        return fail("x-amz-date is not a signed header")
    if entry.token is not None:
        if token_header is None:
            return fail(f"access key {akid} needs x-amz-security-token")
        if not hmac.compare_digest(token_header.encode("latin-1", "replace"), entry.token.encode()):
            return fail("x-amz-security-token does not belong to this access key")
        if "x-amz-security-token" not in signed_names:
            return fail("x-amz-security-token is not a signed header")
    elif token_header is not None:
        return fail(f"x-amz-security-token sent, but access key {akid} has no session token")

    body_sha = hashlib.sha256(body).hexdigest()
    if content_sha is not None and content_sha not in ("UNSIGNED-PAYLOAD", body_sha):
        return fail(f"x-amz-content-sha256 {content_sha} does not match the body ({body_sha})")

    path, _, query = target.partition("?")
    if "+" in query:
        return fail("literal '+' in the query is ambiguous across AWS services; send %20 or %2B")
    for name in signed_names:
        if name not in hmap:
            return fail(f"signed header {name} is not present")

    # Canonical request, with botocore's path normalisation and header canonicalisation.
    credentials = Credentials(akid, entry.secret, entry.token)
    signer = SigV4Auth(credentials, service, region)
    header_map = HTTPHeaders()
    for name in signed_names:
        for value in hmap[name]:
            header_map[name] = header_text(value)
    request = AWSRequest(method=method, url=f"http://{hmap['host'][0]}{path}", data=body)
    request.context["timestamp"] = amz_date
    payload_hash = content_sha if "x-amz-content-sha256" in signed_names else body_sha
    canonical = "\n".join(
        [
            method,
            signer._normalize_url_path(path),  # remove dot segments and '//', quote(safe='/~')
            canonical_query_strict(query),
            signer.canonical_headers(header_map) + "\n",
            signed,
            payload_hash,
        ]
    )
    string_to_sign = signer.string_to_sign(request, canonical)
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, signature):
        return fail(
            "signature mismatch\n--- canonical request ---\n"
            + redact(canonical)
            + "\n--- string to sign ---\n"
            + string_to_sign
        )
    return Verdict(True, f"ok key={akid} ({entry.source}) signed={signed}", "", signed_names)


# --------------------------------------------------------------------------------------------
# Upstream connections
# --------------------------------------------------------------------------------------------


class UpstreamPool:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"--upstream must be http://host:port, got {upstream!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPConnection(self.host, self.port, timeout=300), False

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 32:
                self._idle.append(conn)
                return
        conn.close()


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class ClientGone(Exception):
    pass


class BadRequest(Exception):
    pass


def filler_block(size: int) -> bytes:
    unit = (
        '{"status":"success","data":{"resultType":"vector","result":[{"metric":'
        '{"__name__":"standin_filler","job":"amp-standin"},"value":[1700000000,"1"]}]}}\n'
    ).encode()
    return (unit * (size // len(unit) + 1))[:size]


GZIP_JSON = json.dumps(
    {"status": "success", "data": {"resultType": "scalar", "result": [0, "gzip"]}}
).encode()
GZIP_BODY = gzip.compress(GZIP_JSON, mtime=0)


class StandIn:
    def __init__(self, args, keys: KeyTable):
        self.args = args
        self.keys = keys
        self.pool = UpstreamPool(args.upstream)
        self.records: list[dict] = []
        self.records_lock = threading.Lock()
        # One Handler instance serves one TCP connection: counting them shows pooling.
        self.connections = 0
        # Every request that is not a control or credentials request, routed or not.
        self.dispatched = 0
        self.unrouted: list[dict] = []
        self.creds_requests = 0
        self.creds_fail = False
        # (count, status): answer the next `count` verified workspace requests with `status`.
        self.fail_next = (0, 503)

    def take_forced_status(self) -> int | None:
        with self.records_lock:
            count, status = self.fail_next
            if count <= 0:
                return None
            self.fail_next = (count - 1, status)
            return status

    def record(self, rec: dict) -> None:
        with self.records_lock:
            self.records.append(rec)

    def snapshot(self) -> list[dict]:
        with self.records_lock:
            return [dict(r) for r in self.records]

    def stats(self) -> dict:
        return {
            "creds_fetches": self.keys.issued,
            "sts_calls": len(moto_assumed_roles()) if self.args.moto else 0,
            "connections": self.connections,
            "dispatched": self.dispatched,
            "creds_requests": self.creds_requests,
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "amp-standin/1"
    sys_version = ""
    disable_nagle_algorithm = True
    app: StandIn  # set on the class before serving

    # ---- plumbing ---------------------------------------------------------------------------

    def setup(self):
        super().setup()
        with self.app.records_lock:
            self.app.connections += 1

    def log_message(self, format, *args):  # noqa: A002 (signature from the base class)
        log(f"{self.address_string()} {format % args}")

    def log_request(self, code="-", size="-"):
        pass  # one line per request is written by dispatch()

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def read_body(self) -> bytes:
        te = [t.strip().lower() for v in self.headers.get_all("Transfer-Encoding", []) for t in v.split(",")]
        te = [t for t in te if t]
        if te:
            if te[-1] != "chunked":
                raise BadRequest(f"unsupported Transfer-Encoding {te}")
            return self.read_chunked()
        lengths = self.headers.get_all("Content-Length", [])
        if not lengths:
            return b""
        if len(set(v.strip() for v in lengths)) != 1 or not lengths[0].strip().isdigit():
            raise BadRequest(f"bad Content-Length {lengths}")
        n = int(lengths[0])
        body = self.rfile.read(n)
        if len(body) != n:
            raise ClientGone(f"body ended after {len(body)} of {n} bytes")
        return body

    def read_chunked(self) -> bytes:
        parts = []
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise ClientGone("chunked body ended early")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest(f"bad chunk size {size_text!r}") from None
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = self.rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n"):
                        return b"".join(parts)
                    if not trailer:
                        raise ClientGone("chunked body ended in the trailers")
            data = self.rfile.read(size)
            if len(data) != size:
                raise ClientGone("chunk ended early")
            parts.append(data)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("chunk not followed by CRLF")

    def send_bytes(self, status: int, body: bytes, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.write(body)

    def send_json(self, status: int, obj, headers=()):
        self.send_bytes(status, json.dumps(obj).encode(), "application/json", headers)

    def write(self, data) -> None:
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError) as err:
            self.close_connection = True
            raise ClientGone(str(err)) from None

    def start_streaming(self, status: int, reason: str | None, headers) -> bool:
        """Sends the head of a response whose length is not known; returns True if the body
        is chunked (HTTP/1.1 clients) or False if it is delimited by closing (HTTP/1.0)."""
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        chunked = self.request_version != "HTTP/1.0"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        return chunked

    def write_chunk(self, chunked: bool, data) -> None:
        if not data:
            return
        if chunked:
            self.write(b"%x\r\n" % len(data) + bytes(data) + b"\r\n")
        else:
            self.write(data)

    def end_chunks(self, chunked: bool) -> None:
        if chunked:
            self.write(b"0\r\n\r\n")

    def abort_connection(self) -> None:
        """Closes the TCP connection with a reset (SO_LINGER 0), mid-message."""
        self.close_connection = True
        conn = self.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile (a makefile) holds a reference to the socket; the descriptor only closes,
        # and the RST only goes out, once it is gone. wfile writes straight to the socket
        # and stays open so that http.server's own final flush() is a harmless no-op.
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            conn.close()
        except OSError:
            pass

    # ---- routing ----------------------------------------------------------------------------

    def dispatch(self):
        started = time.monotonic()
        target = self.path
        status_note = ""
        counted_path = target.split("?", 1)[0]
        if not counted_path.startswith("/__standin/") and counted_path != "/__creds":
            with self.app.records_lock:
                self.app.dispatched += 1
        try:
            try:
                body = self.read_body()
            except BadRequest as err:
                self.close_connection = True
                self.send_json(400, {"message": f"bad request: {err}"})
                status_note = f"400 {err}"
                return
            path = target.split("?", 1)[0]
            if path.startswith("/workspaces/"):
                status_note = self.workspace(target, body)
            elif path == "/__creds":
                status_note = self.creds()
            elif path == "/__standin/requests" and self.command == "GET":
                self.send_json(200, self.app.snapshot())
            elif path == "/__standin/reset" and self.command == "POST":
                with self.app.records_lock:
                    self.app.records.clear()
                    self.app.unrouted.clear()
                self.send_json(200, {"reset": True})
            elif path == "/__standin/stats" and self.command == "GET":
                self.send_json(200, self.app.stats())
            elif path == "/__standin/unrouted" and self.command == "GET":
                with self.app.records_lock:
                    unrouted = [dict(r) for r in self.app.unrouted]
                self.send_json(200, unrouted)
            elif path == "/__standin/creds" and self.command == "POST":
                self.app.creds_fail = self.control_params(target).get("fail", "0") not in ("", "0")
                self.send_json(200, {"creds_fail": self.app.creds_fail})
            elif path == "/__standin/fail-next" and self.command == "POST":
                params = self.control_params(target)
                try:
                    count = int(params.get("count", "1"))
                    status = int(params.get("status", "503"))
                except ValueError:
                    self.send_json(400, {"message": "count and status must be integers"})
                    return
                if not 200 <= status <= 599:
                    self.send_json(400, {"message": "status must be 200..599"})
                    return
                with self.app.records_lock:
                    self.app.fail_next = (count, status)
                self.send_json(200, {"count": count, "status": status})
            else:
                with self.app.records_lock:
                    self.app.unrouted.append({"method": self.command, "target": target})
                self.send_json(404, {"message": f"no route for {self.command} {path}"})
                status_note = "404"
        except ClientGone as err:
            self.close_connection = True
            status_note = f"client gone: {err}"
        finally:
            if not target.startswith("/__standin/"):
                elapsed = (time.monotonic() - started) * 1000
                log(f"{self.command} {target.split('?', 1)[0]} {status_note} ({elapsed:.0f} ms)")

    @staticmethod
    def control_params(target: str) -> dict:
        query = target.partition("?")[2]
        return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}

    def creds(self) -> str:
        with self.app.records_lock:
            self.app.creds_requests += 1
        if self.app.creds_fail:
            self.send_json(500, {"code": "InternalError", "message": "credential source is down (test)"})
            return "500 creds: failing on purpose"
        wanted = self.app.args.creds_token
        if wanted is not None and self.headers.get("Authorization") != wanted:
            self.send_json(401, {"code": "Unauthorized", "message": "missing or wrong Authorization token"})
            return "401 creds: wrong token"
        if self.command != "GET":
            self.send_json(405, {"code": "MethodNotAllowed", "message": "GET only"})
            return "405"
        akid, entry = self.app.keys.issue(self.app.args.creds_ttl)
        self.send_json(
            200,
            {
                "AccessKeyId": akid,
                "SecretAccessKey": entry.secret,
                "Token": entry.token,
                "Expiration": iso_z(entry.expires),
            },
        )
        return f"200 issued {akid} until {iso_z(entry.expires)}"

    def workspace(self, target: str, body: bytes) -> str:
        app = self.app
        headers = list(self.headers.items())
        verdict = verify(
            self.command, target, headers, body, app.keys, app.args.region, app.args.service,
            app.args.max_skew,
        )
        rec = {
            "method": self.command,
            "target": target,
            "headers": [[k, v] for k, v in headers],
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "verified": verdict.ok,
            "detail": verdict.detail,
            "status": 0,
            "signed_headers": verdict.signed_headers,
        }
        app.record(rec)
        if not verdict.ok:
            rec["status"] = 403
            log(f"REJECTED {self.command} {target.split('?', 1)[0]}: {verdict.detail}")
            message = EXPIRED_TOKEN if verdict.error_type == "ExpiredTokenException" else SIGNATURE_MISMATCH
            self.send_json(
                403,
                {"message": message, "detail": verdict.detail},
                headers=[("x-amzn-ErrorType", verdict.error_type)],
            )
            return f"403 {verdict.error_type}"

        path, sep, query = target.partition("?")
        prefix = f"/workspaces/{app.args.workspace}"
        if path != prefix and not path.startswith(prefix + "/"):
            rec["status"] = 404
            self.send_json(
                404,
                {"message": f"Workspace not found: {path.split('/')[2]}"},
                headers=[("x-amzn-ErrorType", "ResourceNotFoundException")],
            )
            return "404 workspace"
        forced = app.take_forced_status()
        if forced is not None:
            rec["status"] = forced
            self.send_json(
                forced,
                {"message": f"status {forced} forced by /__standin/fail-next"},
                headers=[("x-amzn-ErrorType", "StandInForcedError")],
            )
            return f"{forced} forced"
        rest = path[len(prefix):] or "/"
        if rest.startswith("/__test/"):
            return self.test_route(rest[len("/__test/"):], query, headers, body, rec)
        if rest == "/api/v1/remote_write":
            # AMP's remote-write path; Prometheus' own receiver listens on /api/v1/write.
            rest = "/api/v1/write"
        return self.forward(rest + sep + query, body, rec)

    # ---- forwarding -------------------------------------------------------------------------

    def forward(self, upstream_target: str, body: bytes, rec: dict) -> str:
        pool = self.app.pool
        upstream_target = pool.base_path + upstream_target
        forwarded = []
        for name in FORWARDED_REQUEST_HEADERS:
            for value in self.headers.get_all(name, []):
                forwarded.append((name, value))
        for attempt in range(2):
            conn, reused = pool.get()
            try:
                conn.putrequest(self.command, upstream_target, skip_accept_encoding=True)
                for name, value in forwarded:
                    conn.putheader(name, value)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError) as err:
                conn.close()
                if reused and attempt == 0:
                    continue
                rec["status"] = 502
                self.send_json(502, {"message": f"upstream unavailable: {err}"})
                return f"502 {err}"
            except (OSError, http.client.HTTPException, ValueError, UnicodeError) as err:
                conn.close()
                rec["status"] = 502
                self.send_json(502, {"message": f"upstream request failed: {err}"})
                return f"502 {err}"

        rec["status"] = resp.status
        connection_tokens = {
            t.strip().lower() for v in resp.headers.get_all("Connection", []) for t in v.split(",")
        }
        out_headers = [
            (k, v)
            for k, v in resp.getheaders()
            if k.lower() not in HOP_BY_HOP and k.lower() not in connection_tokens
        ]
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        try:
            if no_body or (resp.length is not None and not resp.chunked):
                # Content-Length (if any) passes through unchanged.
                self.send_response(resp.status, resp.reason)
                for k, v in out_headers:
                    self.send_header(k, v)
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if not no_body:
                    while True:
                        data = resp.read1(65536)
                        if not data:
                            break
                        self.write(data)
                # read1() never marks a Content-Length body finished; read() does, which
                # is what lets http.client send the next request on this connection.
                resp.read()
            else:
                out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-length"]
                chunked = self.start_streaming(resp.status, resp.reason, out_headers)
                while True:
                    data = resp.read1(65536)
                    if not data:
                        break
                    self.write_chunk(chunked, data)
                resp.read()
                self.end_chunks(chunked)
        except ClientGone:
            conn.close()
            raise
        except (OSError, http.client.HTTPException) as err:
            # The upstream broke mid-body: the client's connection cannot be trusted either.
            conn.close()
            self.close_connection = True
            return f"{resp.status} upstream broke mid-body: {err}"
        if resp.will_close:
            conn.close()
        else:
            pool.put(conn)
        return f"{resp.status} forwarded"

    # ---- test routes ------------------------------------------------------------------------

    def test_route(self, name: str, query: str, headers, body: bytes, rec: dict) -> str:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}

        def int_param(key, default):
            try:
                return int(params.get(key, default))
            except ValueError:
                raise BadRequest(f"{key} must be an integer") from None

        def answer(status, obj, extra=()):
            rec["status"] = status
            self.send_json(status, obj, extra)
            return str(status)

        try:
            if name == "bytes":
                size = int_param("size", 0)
                chunk = max(1, min(int_param("chunk", 65536), 16 * 1024 * 1024))
                delay_ms = int_param("delay_ms", 0)
                rec["status"] = 200
                block = memoryview(filler_block(chunk))
                chunked = self.start_streaming(200, None, [("Content-Type", "application/json")])
                self.wfile.flush()
                if delay_ms > 0:
                    time.sleep(delay_ms / 1000)
                if self.command != "HEAD":
                    remaining = size
                    while remaining > 0:
                        n = min(chunk, remaining)
                        self.write_chunk(chunked, block[:n])
                        remaining -= n
                self.end_chunks(chunked)
                return f"200 streamed {size} bytes"
            if name == "echo":
                return answer(
                    200,
                    {
                        "method": self.command,
                        "target": self.path,
                        "headers": [[k, v] for k, v in headers],
                        "body_len": len(body),
                        "body_sha256": hashlib.sha256(body).hexdigest(),
                    },
                )
            if name == "status":
                code = int_param("code", 200)
                if not 200 <= code <= 599:
                    raise BadRequest("code must be 200..599")
                extra = []
                if "retry_after" in params:
                    extra.append(("Retry-After", params["retry_after"]))
                if code in (204, 304):
                    rec["status"] = code
                    self.send_response(code)
                    for k, v in extra:
                        self.send_header(k, v)
                    self.end_headers()
                    return str(code)
                return answer(
                    code,
                    {"status": "error", "errorType": "standin", "error": f"status {code} as requested"},
                    extra,
                )
            if name == "redirect":
                return answer(302, {"status": "redirect", "location": "/elsewhere"}, [("Location", "/elsewhere")])
            if name == "gzip":
                rec["status"] = 200
                self.send_bytes(200, GZIP_BODY, "application/json", [("Content-Encoding", "gzip")])
                return "200 gzip"
            if name == "slow":
                ms = int_param("ms", 1000)
                time.sleep(max(0, ms) / 1000)
                return answer(200, {"status": "success", "slept_ms": ms})
            if name == "reset":
                after = max(0, int_param("after", 1024))
                framing = params.get("framing", "chunked")
                if framing not in ("chunked", "length"):
                    raise BadRequest("framing must be chunked or length")
                rec["status"] = 200
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if framing == "length":
                    # Promise twice what will be sent.
                    self.send_header("Content-Length", str(2 * after + 1))
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                data = filler_block(after)
                if data:
                    self.write(b"%x\r\n" % len(data) + data + b"\r\n" if framing == "chunked" else data)
                self.wfile.flush()
                # Let the bytes leave before the reset discards anything still queued.
                time.sleep(0.05)
                self.abort_connection()
                return f"200 reset after {after} bytes ({framing})"
            if name == "garbage":
                rec["status"] = 0
                try:
                    self.wfile.write(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True
                return "garbage sent"
            return answer(404, {"message": f"no test route {name!r}"})
        except BadRequest as err:
            return answer(400, {"message": str(err)})


# --------------------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default of 5 drops connections under load tests


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="http://host:port of the real Prometheus")
    p.add_argument("--workspace", default="ws-test")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--service", default="aps")
    p.add_argument("--static-key", action="append", default=[], metavar="AKID:SECRET[:TOKEN]")
    p.add_argument("--creds-ttl", type=int, default=900, help="lifetime of /__creds keys (s)")
    p.add_argument("--creds-token", default=None, help="Authorization value /__creds requires")
    p.add_argument("--max-skew", type=int, default=300, help="allowed x-amz-date skew (s)")
    p.add_argument("--moto", action="store_true", help="run moto (STS) in-process")
    p.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="exit when stdin reaches EOF (the parent test process went away)",
    )
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    keys = KeyTable(moto=args.moto)
    for spec in args.static_key:
        parts = spec.split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise SystemExit(f"--static-key wants AKID:SECRET[:TOKEN], got a value with {len(parts)} part(s)")
        keys.add(parts[0], KeyEntry(parts[1], parts[2] if len(parts) == 3 and parts[2] else None, None, "static"))

    if args.exit_with_stdin:

        def watch_parent():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()

    app = StandIn(args, keys)
    moto_port = None
    if args.moto:
        # moto must not pick up the developer's AWS settings.
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            os.environ.pop(var, None)
        from moto.server import ThreadedMotoServer

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        moto_port = moto.get_host_and_port()[1]
        log(f"moto (STS) listening on 127.0.0.1:{moto_port}")

    Handler.app = app
    server = Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    log(
        f"listening on 127.0.0.1:{port}, upstream {args.upstream}, workspace {args.workspace}, "
        f"{args.service} in {args.region}, {len(args.static_key)} static key(s)"
    )
    sys.stdout.write(json.dumps({"port": port, "moto_port": moto_port}) + "\n")
    sys.stdout.flush()
    sys.stdout = sys.stderr  # nothing else may land on the ready pipe
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
