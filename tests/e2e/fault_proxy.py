"""A fault-injecting HTTP proxy for CloudWatch (Smithy RPC v2 CBOR), placed between the real
`bootstrap` (AWS_ENDPOINT_URL_CLOUDWATCH=<proxy.url>) and LocalStack.

Every request gets an outcome from a programmable schedule, by its arrival number (0-based) or
by a rule over the request (e.g. its attempt number for the same body):

    pass         forward to the upstream (LocalStack) and relay its answer
    throttle     HTTP 400, CBOR body {"__type": "Throttling", "message": "Rate exceeded"},
                 header smithy-protocol: rpc-v2-cbor (what CloudWatch's rpc-v2-cbor endpoint
                 returns when it throttles; the SDK reads the code from __type,
                 aws-sdk-cloudwatch src/cbor_errors.rs)
    throttle_qc  the same plus x-amzn-query-error: Throttling;Sender (CloudWatch is
                 @awsQueryCompatible: the SDK then takes the code from that header,
                 aws_query_compatible_errors.rs)
    500          HTTP 500, CBOR body {"__type": "InternalServiceError", ...} (CloudWatch's
                 InternalServiceFault), smithy-protocol header
    invalid      HTTP 400, CBOR body {"__type": "InvalidParameterValue", ...} (not retryable)
    reset        read the whole request, then close the socket with SO_LINGER 0 (a TCP RST),
                 no response
    delay        hold the request for `delay_s` (longer than any deadline used), then close the
                 connection without a response
    ddb_throttle HTTP 400, Content-Type application/x-amz-json-1.0, body
                 {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                  "message": "Rate of requests exceeds the allowed throughput."}: what DynamoDB
                 (awsJson1_0) answers a throttled request; for the proxy in front of the DynamoDB
                 emulator (test_inventory.py). `proxy.always("ddb_throttle")` throttles every
                 request, `proxy.healthy()` passes them through again; a rule can throttle by
                 `request.target` (X-Amz-Target, e.g. "DynamoDB_20120810.BatchWriteItem").

With `emulate_cloudwatch=True`, a `pass` request is first checked the way the real CloudWatch
checks PutMetricData input and LocalStack does not (API reference: PutMetricData, MetricDatum,
Dimension): the namespace (1-255 ASCII characters, no control characters, pattern [^:].*, not AWS/),
timestamps within the past two weeks and at most two hours ahead, dimension values
1-1024 ASCII characters without control characters and not all whitespace, at most 30 dimensions
and 1000 datums. A violation is answered 400 InvalidParameterValue (outcome `rejected`), as
CloudWatch does, e.g. "The parameter MetricData.member.1.Timestamp must specify a time within the
past two weeks."

Only `pass` requests reach the upstream: a faulted request never reaches LocalStack. Every
request is recorded (arrival and completion time, outcome, SHA-256 of the decoded body, the
attempt number of that body, the upstream status, the datums it carried).

    proxy = FaultProxy("http://127.0.0.1:4566")
    proxy.set_rule(lambda r: "throttle" if r.attempt < 2 else "pass")
    ... bootstrap with AWS_ENDPOINT_URL_CLOUDWATCH=proxy.url ...
    proxy.stop()
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import http.client
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

import cbor2

OUTCOMES = ("pass", "throttle", "throttle_qc", "500", "invalid", "reset", "delay", "ddb_throttle")
DDB_THROTTLE_TYPE = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
DDB_THROTTLE_MESSAGE = "Rate of requests exceeds the allowed throughput."
TWO_WEEKS_S = 14 * 24 * 3600
TWO_HOURS_S = 2 * 3600
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
              "upgrade", "host", "content-length"}


@dataclass
class ProxyRequest:
    n: int  # arrival number, 0-based
    t: float  # time.monotonic() when the whole request had been read
    method: str
    path: str
    headers: dict
    raw_len: int
    body_sha256: str  # of the decoded (gunzipped) body
    attempt: int  # 0 for the first time this body was seen, 1 for its first retry, ...
    outcome: str = ""
    t_done: Optional[float] = None  # when the response was sent / the socket closed
    upstream_status: Optional[int] = None  # for forwarded requests
    error: Optional[str] = None  # a proxy-side problem (e.g. upstream unreachable)
    body: bytes = field(default=b"", repr=False)  # decoded body

    @property
    def operation(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def target(self) -> str:
        """The X-Amz-Target header (awsJson protocols: "DynamoDB_20120810.Query"), else ""."""
        return self.headers.get("x-amz-target", "")

    @property
    def ddb_operation(self) -> str:
        """The DynamoDB operation of an awsJson1_0 request ("Query", "BatchWriteItem", ...), else ""."""
        t = self.target
        return t.split(".", 1)[1] if t.startswith("DynamoDB_") and "." in t else ""

    def json_body(self):
        """The decoded body as JSON (DynamoDB requests)."""
        return json.loads(self.body) if self.body else {}

    @property
    def forwarded_ok(self) -> bool:
        return self.outcome == "pass" and self.upstream_status == 200

    def document(self) -> dict:
        """The decoded CBOR request ({"Namespace":..., "MetricData":[...]} for PutMetricData)."""
        return cbor2.loads(self.body) if self.body else {}

    def datums(self) -> list[tuple]:
        """One hashable identity per MetricDatum: (name, dims, timestamp, value(s), unit)."""
        out = []
        for d in self.document().get("MetricData", []):
            ts = d.get("Timestamp")
            if isinstance(ts, dt.datetime):
                ts = ts.timestamp()
            dims = tuple(sorted((x["Name"], x["Value"]) for x in d.get("Dimensions", [])))
            value = d.get("Value")
            if value is None:
                value = (tuple(d.get("Values", [])), tuple(d.get("Counts", [])))
            out.append((d.get("MetricName"), dims, ts, value, d.get("Unit")))
        return out

    def summary(self) -> dict:
        return {"n": self.n, "t": round(self.t, 4), "t_done": None if self.t_done is None else round(self.t_done, 4),
                "op": self.ddb_operation or self.operation, "outcome": self.outcome, "attempt": self.attempt,
                "sha256": self.body_sha256[:16], "raw_len": self.raw_len, "upstream_status": self.upstream_status,
                "error": self.error}


def _cbor_error(code: str, message: str) -> bytes:
    return cbor2.dumps({"__type": code, "message": message})


def cloudwatch_validation_error(req: ProxyRequest, now: Optional[float] = None) -> Optional[str]:
    """The InvalidParameterValue message CloudWatch would answer this PutMetricData with, or None."""
    if req.operation != "PutMetricData":
        return None
    now = time.time() if now is None else now
    try:
        doc = req.document()
    except Exception as e:  # noqa: BLE001
        if "datetime" in str(e):  # cbor2 cannot represent it: years beyond 9999 (or before 1)
            return f"The parameter MetricData Timestamp must specify a time no more than two hours in the future ({e})."
        return f"could not decode the request body: {e}"
    data = doc.get("MetricData") or []
    problems = []
    ns = doc.get("Namespace")
    if not isinstance(ns, str) or not (1 <= len(ns) <= 255) or ns.startswith(":") or not ns.isascii() \
            or any(ord(c) < 32 or ord(c) == 127 for c in ns) or ns.startswith("AWS/"):
        problems.append(f"The parameter Namespace must be 1-255 ASCII characters without control characters, matching "
                        f"[^:].* and not starting with AWS/ (got {str(ns)[:60]!r}).")
    if len(data) > 1000:
        problems.append(f"The collection MetricData must not have a size greater than 1000.")
    for i, d in enumerate(data, 1):
        ts = d.get("Timestamp")
        if isinstance(ts, dt.datetime):
            ts = ts.timestamp()
        if ts is not None:
            if ts < now - TWO_WEEKS_S:
                problems.append(f"The parameter MetricData.member.{i}.Timestamp must specify a time within the past two weeks.")
            elif ts > now + TWO_HOURS_S:
                problems.append(f"The parameter MetricData.member.{i}.Timestamp must specify a time no more than two hours in the future.")
        dims = d.get("Dimensions") or []
        if len(dims) > 30:
            problems.append(f"The collection MetricData.member.{i}.Dimensions must not have a size greater than 30.")
        for j, dim in enumerate(dims, 1):
            v = dim.get("Value")
            if not isinstance(v, str) or not (1 <= len(v) <= 1024) or not v.isascii() or not v.strip() \
                    or any(ord(c) < 32 or ord(c) == 127 for c in v):
                problems.append(f"The parameter MetricData.member.{i}.Dimensions.member.{j}.Value must be 1-1024 "
                                f"ASCII characters without control characters, not only whitespace (got {str(v)[:40]!r}"
                                f"{'...' if isinstance(v, str) and len(v) > 40 else ''}, {len(v) if isinstance(v, str) else '?'} characters).")
    return "\n".join(problems[:5]) if problems else None


def _read_body(rfile, headers) -> bytes:
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            line = rfile.readline()
            if not line:
                break
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    t = rfile.readline()
                    if not t or t in (b"\r\n", b"\n"):
                        break
                break
            chunks.append(rfile.read(size))
            rfile.readline()
        return b"".join(chunks)
    n = int(headers.get("Content-Length") or 0)
    return rfile.read(n) if n else b""


class FaultProxy:
    def __init__(self, upstream: str, host: str = "127.0.0.1", delay_s: float = 60.0,
                 emulate_cloudwatch: bool = False):
        u = urllib.parse.urlsplit(upstream)
        self.emulate_cloudwatch = emulate_cloudwatch
        self.upstream_host, self.upstream_port = u.hostname, u.port or 80
        self.delay_s = delay_s
        self.requests: list[ProxyRequest] = []
        self._schedule: list[str] = []
        self._default = "pass"
        self._rule: Optional[Callable[[ProxyRequest], str]] = None
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}  # body sha256 -> times seen
        self._stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def finish(self):  # the socket may be gone (reset / delay)
                try:
                    super().finish()
                except (OSError, ValueError):
                    pass

            def _send(self, status: int, body: bytes, headers: dict):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _drop(self, rst: bool):
                self.close_connection = True
                try:
                    if rst:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    else:
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    self.connection.close()
                except OSError:
                    pass

            def _handle(self):
                raw = _read_body(self.rfile, self.headers)
                body = raw
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    try:
                        body = gzip.decompress(raw)
                    except OSError:
                        body = raw
                sha = hashlib.sha256(body).hexdigest()
                with proxy._lock:
                    attempt = proxy._seen.get(sha, 0)
                    proxy._seen[sha] = attempt + 1
                    req = ProxyRequest(n=len(proxy.requests), t=time.monotonic(), method=self.command,
                                       path=self.path, headers={k.lower(): v for k, v in self.headers.items()},
                                       raw_len=len(raw), body_sha256=sha, attempt=attempt, body=body)
                    proxy.requests.append(req)
                    outcome = proxy._outcome_for(req)
                    req.outcome = outcome
                try:
                    self._respond(req, outcome, raw)
                finally:
                    req.t_done = time.monotonic()

            def _respond(self, req: ProxyRequest, outcome: str, raw: bytes):
                rid = str(uuid.uuid4())
                cbor_headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                                "x-amzn-RequestId": rid}
                if outcome == "pass" and proxy.emulate_cloudwatch:
                    problem = cloudwatch_validation_error(req)
                    if problem:
                        req.outcome = "rejected"
                        req.error = problem
                        self._send(400, _cbor_error("InvalidParameterValue", problem),
                                   dict(cbor_headers, **{"x-amzn-query-error": "InvalidParameterValue;Sender"}))
                        return
                if outcome == "pass":
                    try:
                        status, headers, body = proxy._forward(self.command, self.path, self.headers, raw)
                    except OSError as e:
                        req.error = f"upstream: {e}"
                        self._send(502, b"upstream unreachable", {"Content-Type": "text/plain"})
                        return
                    req.upstream_status = status
                    self._send(status, body, headers)
                elif outcome in ("throttle", "throttle_qc"):
                    h = dict(cbor_headers)
                    if outcome == "throttle_qc":
                        h["x-amzn-query-error"] = "Throttling;Sender"
                    self._send(400, _cbor_error("Throttling", "Rate exceeded"), h)
                elif outcome == "500":
                    self._send(500, _cbor_error("InternalServiceError", "injected internal failure"), cbor_headers)
                elif outcome == "invalid":
                    self._send(400, _cbor_error("InvalidParameterValue", "injected invalid parameter"), cbor_headers)
                elif outcome == "reset":
                    self._drop(rst=True)
                elif outcome == "ddb_throttle":
                    self._send(400, json.dumps({"__type": DDB_THROTTLE_TYPE, "message": DDB_THROTTLE_MESSAGE}).encode(),
                               {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": rid})
                elif outcome == "delay":
                    proxy._stopping.wait(proxy.delay_s)
                    self._drop(rst=False)
                else:
                    raise ValueError(f"unknown outcome {outcome!r}")

            def do_POST(self):
                self._handle()

            def do_GET(self):
                self._handle()

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()

    # ---- schedule ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_schedule(self, outcomes: list[str], default: str = "pass", restart: bool = True):
        """Outcome of request number k (counted from now when restart) is outcomes[k]; `default`
        after the list."""
        for o in list(outcomes) + [default]:
            assert o in OUTCOMES, o
        with self._lock:
            self._schedule = list(outcomes)
            self._default = default
            self._rule = None
            self._base = len(self.requests) if restart else 0

    def set_rule(self, rule: Callable[[ProxyRequest], str]):
        """rule(request) -> outcome, for every request from now on."""
        with self._lock:
            self._rule = rule

    def always(self, outcome: str):
        self.set_schedule([], default=outcome)

    def healthy(self):
        self.always("pass")

    def _outcome_for(self, req: ProxyRequest) -> str:  # under the lock
        if self._rule is not None:
            o = self._rule(req)
            assert o in OUTCOMES, o
            return o
        k = req.n - getattr(self, "_base", 0)
        return self._schedule[k] if 0 <= k < len(self._schedule) else self._default

    # ---- forwarding -------------------------------------------------------------------------
    def _forward(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            h = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            h["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            h["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            out = {k: v for k, v in r.getheaders() if k.lower() not in HOP_BY_HOP}
            return r.status, out, data
        finally:
            conn.close()

    # ---- inspection -------------------------------------------------------------------------
    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    def since(self, mark: int = 0) -> list[ProxyRequest]:
        with self._lock:
            return list(self.requests[mark:])

    def wait_idle(self, quiet_s: float = 0.3, timeout_s: float = 10.0) -> None:
        """Wait until no request has been in flight for quiet_s."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._lock:
                busy = any(r.t_done is None for r in self.requests)
                last = max((r.t_done or 0 for r in self.requests), default=0)
            if not busy and time.monotonic() - last >= quiet_s:
                return
            time.sleep(0.05)

    def stop(self):
        self._stopping.set()  # releases held (delayed) requests
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
