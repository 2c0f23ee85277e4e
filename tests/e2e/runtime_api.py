"""A minimal AWS Lambda Runtime API server, for driving a real `bootstrap` binary.

Implements the endpoints a custom runtime uses
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):

    GET  /2018-06-01/runtime/invocation/next          blocks until an invocation is queued
    POST /2018-06-01/runtime/invocation/{id}/response
    POST /2018-06-01/runtime/invocation/{id}/error
    POST /2018-06-01/runtime/init/error

One server serves one runtime process. `invoke()` queues an event and waits for the
runtime's answer.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:natmeter-e2e"


class RuntimeGone(RuntimeError):
    """The runtime process exited (or reported an init error) while an invocation was pending."""


@dataclass
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    queued_at: float = field(default_factory=time.monotonic)
    fetched_at: Optional[float] = None  # when the runtime received it through /next
    finished_at: Optional[float] = None  # when the runtime posted response or error
    finished_wall_ms: Optional[int] = None  # the same, as epoch milliseconds (vs deadline_ms)
    kind: Optional[str] = None  # "response" | "error"
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def elapsed_s(self) -> Optional[float]:
        if self.finished_at is None:
            return None
        return self.finished_at - self.queued_at

    @property
    def finished_before_deadline(self) -> Optional[bool]:
        if self.finished_wall_ms is None:
            return None
        return self.finished_wall_ms < self.deadline_ms

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    te = (handler.headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        chunks = []
        while True:
            line = handler.rfile.readline()
            if not line:
                break
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailers until empty line
                while True:
                    t = handler.rfile.readline()
                    if not t or t in (b"\r\n", b"\n"):
                        break
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # CRLF after each chunk
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class RuntimeApi:
    def __init__(self, host: str = "127.0.0.1", send_trace_id: bool = True):
        # Lambda sends Lambda-Runtime-Trace-Id with every invocation; False omits it (diagnostics)
        self.send_trace_id = send_trace_id
        self._queue: "queue.Queue[Invocation]" = queue.Queue()
        self._by_id: dict[str, Invocation] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.first_next_at: Optional[float] = None  # time.monotonic() of the first GET /next
        self.next_requests = 0
        self.init_error: Optional[bytes] = None
        self.init_error_headers: dict = {}
        self.protocol_errors: list[str] = []
        self.user_agents: set[str] = set()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep pytest output clean
                pass

            def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self):
                ua = self.headers.get("User-Agent")
                if ua:
                    api.user_agents.add(ua)
                if self.path != f"{PREFIX}/invocation/next":
                    api.protocol_errors.append(f"GET {self.path}")
                    self._send(404, b'{"errorMessage":"unknown path"}')
                    return
                with api._lock:
                    api.next_requests += 1
                    if api.first_next_at is None:
                        api.first_next_at = time.monotonic()
                inv = None
                while not api._stopping.is_set():
                    try:
                        inv = api._queue.get(timeout=0.1)
                        break
                    except queue.Empty:
                        continue
                if inv is None:
                    # shutting down: leave the runtime waiting on a closed connection
                    self.close_connection = True
                    return
                inv.fetched_at = time.monotonic()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                }
                if api.send_trace_id:  # a new X-Ray trace header per invocation, as Lambda sends
                    headers["Lambda-Runtime-Trace-Id"] = (
                        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
                        f"Parent={uuid.uuid4().hex[:16]};Sampled=0"
                    )
                try:
                    self._send(200, inv.event, headers)
                except OSError as e:  # runtime went away
                    api.protocol_errors.append(f"sending invocation {inv.request_id}: {e}")

            def do_POST(self):
                body = _read_body(self)
                path = self.path
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                if path == f"{PREFIX}/init/error":
                    api.init_error = body
                    api.init_error_headers = hdrs
                    self._send(202, b'{"status":"OK"}')
                    return
                parts = path[len(PREFIX):].strip("/").split("/") if path.startswith(PREFIX) else []
                # invocation/{id}/response|error
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    with api._lock:
                        inv = api._by_id.get(parts[1])
                    if inv is None or inv.fetched_at is None:
                        api.protocol_errors.append(f"POST {path}: unknown or unfetched request id")
                        self._send(400, b'{"errorMessage":"unknown request id"}')
                        return
                    if inv.done.is_set():
                        api.protocol_errors.append(f"POST {path}: second answer for {parts[1]}")
                        self._send(400, b'{"errorMessage":"already answered"}')
                        return
                    inv.kind = parts[2]
                    inv.body = body
                    inv.headers = hdrs
                    inv.finished_at = time.monotonic()
                    inv.finished_wall_ms = int(time.time() * 1000)
                    self._send(202, b'{"status":"OK"}')
                    inv.done.set()
                    return
                api.protocol_errors.append(f"POST {path}")
                self._send(404, b'{"errorMessage":"unknown path"}')

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"runtime-api-{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """Value for AWS_LAMBDA_RUNTIME_API."""
        return f"{self.host}:{self.port}"

    def submit(self, event: bytes, deadline_s: float = 60.0) -> Invocation:
        if isinstance(event, str):
            event = event.encode()
        inv = Invocation(request_id=str(uuid.uuid4()), event=event,
                         deadline_ms=int((time.time() + deadline_s) * 1000))
        with self._lock:
            self._by_id[inv.request_id] = inv
        self._queue.put(inv)
        return inv

    def wait(self, inv: Invocation, timeout_s: float,
             alive: Optional[Callable[[], bool]] = None) -> Invocation:
        end = time.monotonic() + timeout_s
        while not inv.done.wait(0.05):
            if self.init_error is not None:
                raise RuntimeGone(f"runtime reported an init error: {self.init_error!r}")
            if alive is not None and not alive():
                # give an in-flight POST a moment to land
                if inv.done.wait(0.2):
                    break
                raise RuntimeGone(f"runtime process exited while invocation {inv.request_id} was pending")
            if time.monotonic() > end:
                raise TimeoutError(
                    f"no response/error for invocation {inv.request_id} within {timeout_s:.1f}s "
                    f"(fetched by runtime: {inv.fetched_at is not None})")
        return inv

    def invoke_detail(self, event: bytes, timeout_s: float = 60.0, deadline_s: Optional[float] = None,
                      alive: Optional[Callable[[], bool]] = None) -> Invocation:
        inv = self.submit(event, deadline_s if deadline_s is not None else timeout_s)
        return self.wait(inv, timeout_s, alive)

    def invoke(self, event: bytes, timeout_s: float = 60.0, deadline_s: Optional[float] = None,
               alive: Optional[Callable[[], bool]] = None) -> tuple[str, str]:
        """Queue one event and return ("response", body) or ("error", body)."""
        inv = self.invoke_detail(event, timeout_s, deadline_s, alive)
        return inv.kind, inv.text()

    def stop(self):
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
