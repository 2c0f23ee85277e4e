"""Self-tests of the harness (no natmeter binary needed): Runtime API server, process wrapper,
LocalStack round trip through the metrics reader."""

import datetime as dt
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from cwread import MetricsReader
from lambda_events import control_message_event, decode_event, CONTROL_MESSAGE

HERE = Path(__file__).resolve().parent
STANDIN = [sys.executable, str(HERE / "standin_runtime.py")]


def _client_loop(api, stop, seen):
    """An in-process runtime client over http.client with keep-alive, like the Rust one."""
    conn = http.client.HTTPConnection(api.host, api.port, timeout=30)
    while not stop.is_set():
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return
        rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
        seen.append({k: r.getheader(k) for k in ("Lambda-Runtime-Aws-Request-Id", "Lambda-Runtime-Deadline-Ms",
                                                  "Lambda-Runtime-Invoked-Function-Arn", "Lambda-Runtime-Trace-Id")})
        ev = json.loads(body)
        kind = "error" if "fail" in ev else "response"
        out = json.dumps({"errorMessage": ev["fail"]} if kind == "error" else {"ok": ev}).encode()
        if ev.get("chunked"):
            conn.putrequest("POST", f"/2018-06-01/runtime/invocation/{rid}/{kind}")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for part in (out[:5], out[5:]):
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        else:
            conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/{kind}", body=out)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 202


def test_runtime_api_with_in_process_client(runtime_api):
    stop, seen = threading.Event(), []
    t0 = time.monotonic()
    th = threading.Thread(target=_client_loop, args=(runtime_api, stop, seen), daemon=True)
    th.start()
    # /next blocks until something is queued: the first request is recorded, nothing delivered yet
    for _ in range(200):
        if runtime_api.first_next_at:
            break
        time.sleep(0.01)
    assert runtime_api.first_next_at is not None and runtime_api.first_next_at >= t0
    time.sleep(0.3)
    assert seen == []

    assert runtime_api.invoke(b'{"n": 1}', timeout_s=5) == ("response", json.dumps({"ok": {"n": 1}}))
    kind, body = runtime_api.invoke(b'{"fail": "boom"}', timeout_s=5)
    assert kind == "error" and json.loads(body)["errorMessage"] == "boom"
    kind, body = runtime_api.invoke(b'{"n": 2, "chunked": true}', timeout_s=5)
    assert kind == "response" and json.loads(body) == {"ok": {"n": 2, "chunked": True}}
    inv = runtime_api.invoke_detail(b'{"n": 3}', timeout_s=5, deadline_s=15)
    assert inv.finished_before_deadline and 14_000 < inv.deadline_ms - time.time() * 1000 <= 15_000
    assert len(seen) == 4 and all(all(h.values()) for h in seen)
    assert len({h["Lambda-Runtime-Aws-Request-Id"] for h in seen}) == 4
    assert runtime_api.protocol_errors == []
    stop.set()
    runtime_api.submit(b'{"n": 0}')  # release the blocked /next


def test_runtime_api_times_out_when_nobody_answers(runtime_api):
    with pytest.raises(TimeoutError):
        runtime_api.invoke(b"{}", timeout_s=0.5)


def test_process_wrapper_with_standin_runtime(start_bootstrap, record_measurement):
    b = start_bootstrap({"NATMETER_X": "1"}, name="standin", endpoint=None, argv=STANDIN)
    assert 0 < b.startup_s < 5
    assert b.invoke(b'{"echo": "hi"}', timeout_s=10)[0] == "response"
    kind, body = b.invoke(b'{"fail": "nope"}', timeout_s=10)
    assert kind == "error" and json.loads(body)["errorMessage"] == "nope"
    assert b.alive()
    assert [l["event"] for l in b.stdout_json()] == [{"echo": "hi"}, {"fail": "nope"}]
    env = json.loads((b.outdir / "standin.env.json").read_text())
    assert env["NATMETER_X"] == "1" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert "AWS_ENDPOINT_URL_CLOUDWATCH" not in env
    status = b.proc_status()
    assert status["VmHWM"] > 0
    # a runtime that dies mid-invocation is reported, not waited for
    with pytest.raises(AssertionError, match="exited"):
        b.invoke(b'{"exit": 3}', timeout_s=10)
    assert not b.alive() and b.proc.returncode == 3
    record_measurement("harness_python_standin_startup_s", round(b.startup_s, 4))


def test_process_wrapper_reports_init_error(start_bootstrap):
    b = start_bootstrap({"STANDIN_INIT_ERROR": "bad NATMETER_X"}, endpoint=None, argv=STANDIN, wait_ready=False)
    with pytest.raises(AssertionError, match="bad NATMETER_X"):
        b.wait_ready(timeout_s=10)


def test_control_message_event_shape():
    assert decode_event(control_message_event()) == CONTROL_MESSAGE


def test_localstack_round_trip(localstack_instance, cw, namespace):
    """The reader against LocalStack: dimension sets, Values/Counts weighting, window edges, units."""
    assert localstack_instance.ready_after_s < 60
    start = (int(time.time()) - 1800) // 60 * 60
    ts = lambda s: dt.datetime.fromtimestamp(s, dt.timezone.utc)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "NatBytes", "Unit": "Bytes", "Timestamp": ts(start), "Value": 100},
        {"MetricName": "NatBytes", "Unit": "Bytes", "Timestamp": ts(start + 60), "Values": [10, 20], "Counts": [2, 3]},
        {"MetricName": "NatBytes", "Unit": "Bytes", "Timestamp": ts(start + 120), "Dimensions": [
            {"Name": "NatGatewayId", "Value": "nat-1"}, {"Name": "Direction", "Value": "outbound"}], "Value": 7},
        {"MetricName": "NatBytes", "Unit": "Bytes", "Timestamp": ts(start + 120),
         "Dimensions": [{"Name": "NatGatewayId", "Value": "nat-1"}], "Value": 5},
        # LocalStack matches dimensions with LIKE '%SourceIp=10.0.1.1%': these over-match each other
        {"MetricName": "NatBytes", "Unit": "Bytes", "Timestamp": ts(start), "Value": 1000,
         "Dimensions": [{"Name": "SourceIp", "Value": "10.0.1.1"}]},
        {"MetricName": "NatBytes", "Unit": "Bytes", "Timestamp": ts(start), "Value": 20000,
         "Dimensions": [{"Name": "SourceIp", "Value": "10.0.1.15"}]},
        {"MetricName": "NatBytes", "Unit": "Bytes", "Timestamp": ts(start), "Value": 300000,
         "Dimensions": [{"Name": "SourceIp", "Value": "10.0.1.1_5"}]},
    ])
    r = MetricsReader(cw, namespace, start - 600, start + 900)
    assert r.metric_names() == {"NatBytes"}
    assert r.dimension_sets("NatBytes") == {(), ("NatGatewayId",), ("Direction", "NatGatewayId"), ("SourceIp",)}
    # what LocalStack itself answers for the one-dimension query (documents the over-matching):
    raw = r._get([{"MetricName": "NatBytes", "Dimensions": [{"Name": "NatGatewayId", "Value": "nat-1"}]}], "Sum", None)
    assert raw == [12.0], "LocalStack's dimension matching changed: revisit cwread.MetricsReader.like_matching"
    assert r.by_dimensions("NatBytes", ["SourceIp"]) == {("10.0.1.1",): 1000, ("10.0.1.15",): 20000,
                                                         ("10.0.1.1_5",): 300000}
    assert r.value("NatBytes", {"SourceIp": "10.0.1.15"}) == 20000
    assert r.value("NatBytes") == 180  # only the series without dimensions
    assert r.value("NatBytes", unit="Bytes") == 180
    assert r.value("NatBytes", unit="Count") == 0
    assert r.by_dimensions("NatBytes", ["NatGatewayId"]) == {("nat-1",): 5}
    assert r.by_dimensions("NatBytes", ["NatGatewayId", "Direction"]) == {("nat-1", "outbound"): 7}
    assert r.with_window(start, start + 60).value("NatBytes") == 100  # end exclusive
    assert r.with_window(start + 60, start + 120).value("NatBytes") == 80
    assert r.with_window(int(time.time()) - 300, int(time.time()) + 300).value("NatBytes") == 0


def test_localstack_keeps_its_metrics_in_its_own_tmpfs_database(localstack_instance, cw, namespace,
                                                                record_measurement):
    """LocalStack's CloudWatch commits once per datum to SQLite (localstack_proc._place_metrics_db):
    the database is this instance's own, on tmpfs when /dev/shm has room, so a 1,000-datum request
    costs no fsyncs and no run shares or inherits another's file."""
    db = localstack_instance.metrics_dir / "metrics.db"
    start = (int(time.time()) - 600) // 60 * 60
    data = [{"MetricName": "Harness", "Unit": "Count", "Value": 1.0,
             "Timestamp": dt.datetime.fromtimestamp(start + i % 60, dt.timezone.utc),
             "Dimensions": [{"Name": "I", "Value": str(i)}]} for i in range(1000)]
    before = db.stat().st_size if db.exists() else 0
    t0 = time.monotonic()
    cw.put_metric_data(Namespace=namespace, MetricData=data)
    took = time.monotonic() - t0
    assert db.is_file() and db.stat().st_size > before, f"the datums did not go to {db}"
    on_tmpfs = str(db.resolve()).startswith("/dev/shm/")
    assert db.parent.resolve() != Path("/tmp/localstack/state/cloudwatch").resolve(), "the machine-wide default"
    st = os.statvfs("/dev/shm") if Path("/dev/shm").is_dir() else None
    if st is not None and os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize >= 1 << 30:
        assert on_tmpfs, \
            f"/dev/shm has room, yet the database is at {db.resolve()}"
    record_measurement("localstack_put_1000_datums", {"seconds": round(took, 3), "database": str(db),
                                                      "on_tmpfs": on_tmpfs})
