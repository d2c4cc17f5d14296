#!/usr/bin/env python3
"""Generates the AMP-shaped SigV4 golden cases (*.golden) in this directory.

The expected Authorization values come from botocore's SigV4Auth, a signer independent of
the aws-sigv4 crate our proxy uses. The Rust test (tests/sigv4_vectors.rs,
amp_golden_cases_match_botocore) only reads the *.golden files; it never runs Python.

Regenerate (from the repository root), with the botocore version recorded in the files:

    python3 -m venv /tmp/vecvenv
    /tmp/vecvenv/bin/pip install botocore==1.44.5
    /tmp/vecvenv/bin/python sigv4-proxy/tests/data/amp-golden/generate.py          # rewrite
    /tmp/vecvenv/bin/python sigv4-proxy/tests/data/amp-golden/generate.py --check  # compare

What is modelled, so that botocore signs exactly what our Signer signs:

* Signer::new(service, region): path normalised (dot segments, '//') and every '%' of the
  wire path encoded again ('%2F' is signed as '%252F'). botocore's SigV4Auth does the same
  (normalize_url_path, then quote(path, safe='/~')).
* Header set: every request header that sigv4_proxy::headers::is_signable accepts (mirrored
  in SIGNABLE below; keep the two in step), plus host, x-amz-date and, with a session token,
  x-amz-security-token. Headers the policy rejects are still written into the case file (the
  Rust test puts them on the request, so the policy itself is exercised) but are not given
  to botocore.
* Query: the proxy rewrites queries into strict RFC 3986 encoding before signing
  (src/target.rs), so every case's query is written in that form. botocore only sorts the
  raw pairs, which for a strictly encoded query is the canonical query; the script asserts
  the queries are strict.
* Payload: SHA-256 of the body, or with `payload: unsigned` the literal UNSIGNED-PAYLOAD,
  sent and signed as x-amz-content-sha256 (botocore: payload_signing_enabled = False).
* Time: SigV4Auth.add_auth reads the clock through botocore.auth.get_current_datetime and
  overwrites request.context['timestamp'] with it, so the clock is patched to the case's
  fixed timestamp (and the resulting context['timestamp'] is checked).

File format (one case per file, UTF-8, LF):

    # comments
    key: value            service, region, timestamp (YYYY-MM-DDTHH:MM:SSZ),
                          access_key_id, secret_access_key, [session_token],
                          payload (sha256|unsigned), body_hex, authorization
    --- request
    METHOD TARGET HTTP/1.1
    Name:value            every header on the request, Host first
    --- botocore canonical request (informational; not read by the test)
    ...
    --- botocore string to sign (informational; not read by the test)
    ...
"""

import datetime
import hashlib
import pathlib
import sys
from unittest import mock
from urllib.parse import quote, unquote

import botocore
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HERE = pathlib.Path(__file__).resolve().parent

# Mirror of sigv4_proxy::headers::is_signable.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
}
NEVER_SIGNED = {
    "expect", "user-agent", "x-amzn-trace-id", "authorization", "via", "forwarded",
    "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
}


def signable(name):
    name = name.lower()
    return not (name in HOP_BY_HOP or name in NEVER_SIGNED or name.startswith("x-forwarded-"))


AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WS = "ws-3f6a0d2c-9b41-4e57-a8c2-5d1e7b90f4aa"


def host(region):
    return f"aps-workspaces.{region}.amazonaws.com"


def strict(text):
    return quote(text, safe="-_.~")


def query(pairs):
    return "&".join(f"{strict(k)}={strict(v)}" for k, v in pairs)


# Stand-in for a snappy-compressed remote-write protobuf: arbitrary bytes, many >= 0x80.
REMOTE_WRITE_BODY = bytes((i * 37 + 11) % 256 for i in range(173))
QUERY_RANGE_FORM = query([
    ("query", 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="api"}[5m])))'),
    ("start", "2024-03-01T00:00:00Z"),
    ("end", "2024-03-01T06:00:00Z"),
    ("step", "60s"),
]).encode()

CASES = [
    {
        "name": "query-promql-get",
        "about": "GET instant query, PromQL with {}\"=~()[] percent-encoded; user-agent, "
                 "x-forwarded-for and x-amzn-trace-id present but not signed",
        "region": "us-east-1",
        "timestamp": "2024-03-01T08:15:30Z",
        "method": "GET",
        "target": f"/workspaces/{WS}/api/v1/query?" + query([
            ("query", 'sum by (job) (rate(http_requests_total{job="api",code=~"5.."}[5m]))'),
            ("time", "1709280930"),
        ]),
        "headers": [
            ("Accept", "application/json"),
            ("Accept-Encoding", "gzip"),
            ("User-Agent", "Grafana/11.0.0"),
            ("X-Forwarded-For", "10.1.2.3"),
            ("X-Amzn-Trace-Id", "Root=1-65e18f52-0123456789abcdef01234567"),
        ],
    },
    {
        "name": "series-repeated-match",
        "about": "GET series with repeated match[] (sorted by value in the canonical query), "
                 "params not in canonical order on the wire",
        "region": "eu-west-1",
        "timestamp": "2024-06-15T23:59:59Z",
        "method": "GET",
        "target": f"/workspaces/{WS}/api/v1/series?" + query([
            ("start", "1718488800"),
            ("match[]", 'up{job="node"}'),
            ("match[]", "process_start_time_seconds"),
            ("end", "1718495999"),
        ]),
        "headers": [("Accept", "application/json")],
    },
    {
        "name": "query-range-form-post",
        "about": "form-POST query_range: the PromQL is in the body, signed via its SHA-256; "
                 "content-type and content-length signed",
        "region": "us-west-2",
        "timestamp": "2024-03-01T06:00:05Z",
        "method": "POST",
        "target": f"/workspaces/{WS}/api/v1/query_range",
        "headers": [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", str(len(QUERY_RANGE_FORM))),
            ("Accept", "application/json"),
            ("User-Agent", "Go-http-client/1.1"),
        ],
        "body": QUERY_RANGE_FORM,
    },
    {
        "name": "remote-write",
        "about": "Prometheus remote_write: binary body, content-type, content-encoding, "
                 "x-prometheus-remote-write-version signed; user-agent not",
        "region": "ap-southeast-2",
        "timestamp": "2024-11-05T13:07:42Z",
        "method": "POST",
        "target": f"/workspaces/{WS}/api/v1/remote_write",
        "headers": [
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("Content-Length", str(len(REMOTE_WRITE_BODY))),
            ("User-Agent", "Prometheus/2.53.0"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        "body": REMOTE_WRITE_BODY,
    },
    {
        "name": "alertmanager-escaped-slash",
        "about": "a path segment with %2F: signed double-encoded as %252F, like botocore "
                 "and the Go SDKs",
        "region": "us-east-2",
        "timestamp": "2025-01-20T10:00:00Z",
        "method": "DELETE",
        "target": f"/workspaces/{WS}/alertmanager/api/v2/silence/team%2Fdb-maintenance",
        "headers": [("Accept", "application/json")],
    },
    {
        "name": "labels-session-token",
        "about": "temporary credentials: x-amz-security-token signed; a custom header "
                 "(as from --custom-headers) signed",
        "region": "eu-central-1",
        "timestamp": "2025-07-04T00:00:01Z",
        "method": "GET",
        "target": f"/workspaces/{WS}/api/v1/labels?" + query([("match[]", "up")]),
        "headers": [
            ("Accept", "application/json"),
            ("X-Scope-Tenant", "team-a"),
        ],
        "session_token": "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+example/token=",
    },
    {
        "name": "remote-write-unsigned-payload",
        "about": "remote_write with --unsigned-payload (Payload::Unsigned): "
                 "x-amz-content-sha256: UNSIGNED-PAYLOAD sent and signed, with a session token",
        "region": "us-east-1",
        "timestamp": "2025-02-28T18:30:00Z",
        "method": "POST",
        "target": f"/workspaces/{WS}/api/v1/remote_write",
        "headers": [
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("Content-Length", str(len(REMOTE_WRITE_BODY))),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        "body": REMOTE_WRITE_BODY,
        "session_token": "FwoGZXIvYXdzEXAMPLEsessiontoken0123456789",
        "unsigned": True,
    },
]


class RecordingSigV4Auth(SigV4Auth):
    """SigV4Auth that remembers its canonical request and string to sign."""

    def canonical_request(self, request):
        self.last_canonical_request = super().canonical_request(request)
        return self.last_canonical_request

    def string_to_sign(self, request, canonical_request):
        self.last_string_to_sign = super().string_to_sign(request, canonical_request)
        return self.last_string_to_sign


def assert_strict_query(target):
    _, _, raw = target.partition("?")
    for part in raw.split("&") if raw else []:
        for piece in part.partition("=")[::2]:
            assert strict(unquote(piece)) == piece, f"not strictly encoded: {piece!r}"


def sign(case):
    service = "aps"
    region = case["region"]
    token = case.get("session_token")
    body = case.get("body", b"")
    assert_strict_query(case["target"])
    headers = [("Host", host(region))] + case["headers"]
    for name, value in headers:
        assert value.isascii() and value.isprintable(), f"{name}: value must be visible ASCII"
    signed = [(n, v) for n, v in headers if signable(n)]
    names = [n.lower() for n, _ in signed]
    assert len(names) == len(set(names)), "duplicate signed headers are not modelled"

    request = AWSRequest(
        method=case["method"],
        url=f"https://{host(region)}{case['target']}",
        headers=dict(signed),
        data=body,
    )
    if case.get("unsigned"):
        request.context["payload_signing_enabled"] = False
    now = datetime.datetime.strptime(case["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    auth = RecordingSigV4Auth(Credentials(AKID, SECRET, token), service, region)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        auth.add_auth(request)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    assert request.context["timestamp"] == amz_date
    assert request.headers["X-Amz-Date"] == amz_date
    return headers, request.headers["Authorization"], auth


def render(case):
    headers, authorization, auth = sign(case)
    body = case.get("body", b"")
    lines = [
        f"# AMP golden case {case['name']}: {case['about']}.",
        f"# Generated by generate.py with botocore {botocore.__version__} SigV4Auth; do not edit,",
        "# change generate.py and regenerate (see its docstring).",
        "service: aps",
        f"region: {case['region']}",
        f"timestamp: {case['timestamp']}",
        f"access_key_id: {AKID}",
        f"secret_access_key: {SECRET}",
    ]
    if case.get("session_token"):
        lines.append(f"session_token: {case['session_token']}")
    lines += [
        f"payload: {'unsigned' if case.get('unsigned') else 'sha256'}",
        f"body_hex: {body.hex()}".rstrip(),
    ]
    if body and body.isascii():
        lines.append(f"# body as text: {body.decode()}")
    lines += [
        f"authorization: {authorization}",
        "--- request",
        f"{case['method']} {case['target']} HTTP/1.1",
    ]
    lines += [f"{name}:{value}" for name, value in headers]
    lines += [
        "--- botocore canonical request (informational; not read by the test)",
        auth.last_canonical_request,
        "--- botocore string to sign (informational; not read by the test)",
        auth.last_string_to_sign,
    ]
    return "\n".join(lines) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for case in CASES:
        path = HERE / f"{case['name']}.golden"
        text = render(case)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.name}")
    if check:
        if stale:
            print("out of date: " + ", ".join(stale))
            return 1
        print(f"all {len(CASES)} cases up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
