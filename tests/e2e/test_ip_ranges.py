"""AWS's ip-ranges.json read by the function at cold start (issue 15 item 3, docs/attribution.md
§5.1): NATMETER_IP_RANGES_URL served on loopback by the test (the simulator's file, which names
S3 in us-east-1 and eu-west-1 and DynamoDB in us-east-1).

The contract checked:
- a record whose pkt-dst-aws-service is `-` gets its service from the ranges; every destination
  the ranges know gets its region: the source detail lines carry DestinationRegion, and the
  Destination dimension stays the service (S3 in two regions is one S3 series);
- a URL that cannot be read leaves the function up and metering, destinations named by the
  records' own field, with a warning naming the URL.
"""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

import flowgen
from cwread import MetricsReader

RANGES = json.dumps({"createDate": "2025-12-01-00-00-00", "prefixes": [
    {"ip_prefix": "52.216.0.0/14", "region": "us-east-1", "service": "AMAZON"},
    {"ip_prefix": "52.216.0.0/15", "region": "us-east-1", "service": "S3"},
    {"ip_prefix": "52.218.0.0/17", "region": "eu-west-1", "service": "S3"},
    {"ip_prefix": "3.218.180.0/22", "region": "us-east-1", "service": "DYNAMODB"},
], "ipv6_prefixes": []}).encode()


@pytest.fixture
def ranges_url():
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(RANGES)))
            self.end_headers()
            self.wfile.write(RANGES)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/ip-ranges.json"
    finally:
        srv.shutdown()


def event() -> bytes:
    recs = [
        flowgen.record(srcport=20001, pkt_dstaddr="52.216.1.1", pkt_dst_aws_service="-", bytes=1000),
        flowgen.record(srcport=20002, pkt_dstaddr="52.218.3.3", pkt_dst_aws_service="S3", bytes=2000),
        flowgen.record(srcport=20003, pkt_dstaddr="3.218.181.9", pkt_dst_aws_service="DYNAMODB", bytes=4000),
        flowgen.record(srcport=20004, pkt_dstaddr="203.0.113.5", bytes=8000),
    ]
    return flowgen.event(recs)


def details(b, inv) -> dict:
    out = {}
    for l in b.stdout_json_of(inv):
        if l.get("natmeter") == "source":
            key = (l["Destination"], l.get("DestinationRegion"))
            out[key] = out.get(key, 0) + l["NatBytes"]
    return out


def test_the_ranges_name_services_and_regions(ranges_url, start_bootstrap, cw, namespace):
    b = start_bootstrap(flowgen.env(namespace, NATMETER_IP_RANGES_URL=ranges_url))
    assert any(l.get("message") == "AWS ip-ranges read" and l.get("prefixes") == 4 for l in b.stderr_json()), \
        b.stderr_tail()
    inv = b.invoke_detail(event(), timeout_s=60)
    assert inv.kind == "response", inv.text()[:500]
    assert details(b, inv) == {
        ("S3", "us-east-1"): 1000,  # the record said "-": the service is the ranges'
        ("S3", "eu-west-1"): 2000,
        ("DYNAMODB", "us-east-1"): 4000,
        ("INTERNET", None): 8000,
    }
    m = MetricsReader(cw, namespace, flowgen.minute_ago(15), int(time.time()) + 120)
    deadline = time.time() + 20
    while True:
        got = {d: m.value("NatBytes", {"Destination": d}) for d in ("S3", "DYNAMODB", "INTERNET")}
        if got == {"S3": 3000, "DYNAMODB": 4000, "INTERNET": 8000} or time.time() > deadline:
            break
        time.sleep(0.5)
    assert got == {"S3": 3000, "DYNAMODB": 4000, "INTERNET": 8000}, "one Destination series per service"
    # Avoidable: S3 and DynamoDB in the function's region (us-east-1), not S3 in eu-west-1.
    assert m.value("NatAvoidableBytes") == 1000 + 4000, sorted(m.metric_names())
    assert abs(m.value("NatAvoidableCost") - 5000 / 2 ** 30 * 0.045) < 1e-12


def test_unreadable_ranges_leave_the_function_metering(start_bootstrap, closed_port, namespace):
    url = f"http://127.0.0.1:{closed_port}/ip-ranges.json"
    b = start_bootstrap(flowgen.env(namespace, NATMETER_IP_RANGES_URL=url, NATMETER_SINK="emf"))
    warn = [l for l in b.stderr_json() if "ip-ranges could not be read" in l.get("message", "")]
    assert warn and warn[0]["url"] == url, b.stderr_tail()
    inv = b.invoke_detail(event(), timeout_s=60)
    assert inv.kind == "response", inv.text()[:500]
    assert details(b, inv) == {("INTERNET", None): 9000, ("S3", None): 2000, ("DYNAMODB", None): 4000}


def test_remote_prefixes_name_internet_destinations_by_slash_24(ranges_url, start_bootstrap, namespace):
    env = flowgen.env(namespace, NATMETER_IP_RANGES_URL=ranges_url, NATMETER_REMOTE_PREFIXES="on",
                      NATMETER_SINK="emf")
    b = start_bootstrap(env)
    recs = [flowgen.record(srcport=20001, pkt_dstaddr="203.0.113.5", bytes=100),
            flowgen.record(srcport=20002, pkt_dstaddr="203.0.113.77", bytes=200),
            flowgen.record(srcport=20003, pkt_dstaddr="198.51.100.9", bytes=400),
            flowgen.record(srcport=20004, pkt_dstaddr="52.216.1.1", pkt_dst_aws_service="S3", bytes=800)]
    inv = b.invoke_detail(flowgen.event(recs), timeout_s=60)
    assert inv.kind == "response", inv.text()[:500]
    got = {}
    for l in b.stdout_json_of(inv):
        if l.get("natmeter") == "source":
            key = (l["Destination"], l.get("DestinationRegion"), l.get("RemotePrefix"))
            got[key] = got.get(key, 0) + l["NatBytes"]
    assert got == {("INTERNET", None, "203.0.113.0/24"): 300, ("INTERNET", None, "198.51.100.0/24"): 400,
                   ("S3", "us-east-1", None): 800}
    # The metrics keep one INTERNET series: the prefixes are in the detail lines only.
    emf = [l for l in b.stdout_json_of(inv) if "_aws" in l and l.get("Destination") == "INTERNET"]
    assert emf and sum(l["NatBytes"] for l in emf) == 700
