"""Lambda behaviour of the real bootstrap (docs/contracts.md §5, issue 3 section 4):
CONTROL_MESSAGE, corrupt events, CloudWatch down, the EMF sink, the SourceIp cap per invocation,
start-up errors."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict

import pytest

from lambda_events import control_message_event, corrupt_events

GIB = 2 ** 30
SIM = dict(seed=21, pods=24, nodes=3, nat_gateways=2, minutes=2, external_snat=True, scope="vpc")


@pytest.fixture
def sim(simulate):
    return simulate(**SIM)


def _natbytes_metrics(cw, namespace):
    from cwread import MetricsReader
    return MetricsReader(cw, namespace, 0, 60).list_metrics()


def test_control_message_is_acknowledged_and_emits_nothing(sim, start_bootstrap, cw, namespace):
    b = start_bootstrap(sim.env(namespace))
    inv = b.invoke_detail(control_message_event(), timeout_s=30)
    assert inv.kind == "response", f"CONTROL_MESSAGE must be acknowledged; got {inv.kind}: {inv.text()[:500]}"
    assert _natbytes_metrics(cw, namespace) == [], "CONTROL_MESSAGE emitted metrics"
    emitted = [l for l in b.stdout_json_of(inv) if "NatBytes" in l or "_aws" in l]
    assert emitted == [], f"CONTROL_MESSAGE wrote metric/detail lines to stdout: {emitted[:3]}"
    assert b.alive()


CORRUPT_KINDS = ["bad_base64", "truncated_gzip", "json_without_logEvents", "gzip_of_non_json",
                 "base64_of_non_gzip", "no_awslogs_key"]


@pytest.mark.parametrize("kind", CORRUPT_KINDS)
def test_corrupt_event_fails_the_invocation_and_the_runtime_survives(kind, sim, start_bootstrap, cw, namespace):
    template = sim.decoded(sim.nat_eni_events()[0])
    event = corrupt_events(template)[kind]
    b = start_bootstrap(sim.env(namespace), name=f"bootstrap-{kind}")
    inv = b.invoke_detail(event, timeout_s=30)
    assert inv.kind == "error", (f"a {kind} event must fail the invocation (so Lambda retries and the "
                                 f"on-failure destination keeps it); got {inv.kind}: {inv.text()[:500]}")
    try:
        err = json.loads(inv.body)
    except ValueError:
        pytest.fail(f"error body is not JSON: {inv.text()[:300]}")
    assert (err.get("errorMessage") or "").strip(), f"error without a message: {err}"
    assert b.alive(), f"process exited after a {kind} event: status {b.proc.returncode}"
    # the same process answers the next invocation
    nxt = b.invoke_detail(control_message_event(), timeout_s=30)
    assert nxt.kind == "response", f"next invocation after {kind}: {nxt.kind}: {nxt.text()[:300]}"
    assert b.alive()
    assert _natbytes_metrics(cw, namespace) == [], "a corrupt event emitted metrics"


def test_cloudwatch_down_fails_before_the_deadline(sim, start_bootstrap, closed_port, namespace, record_measurement):
    deadline_s = 15.0
    b = start_bootstrap(sim.env(namespace), endpoint=f"http://127.0.0.1:{closed_port}")
    event = sim.nat_eni_events()[0].read_bytes()
    t0 = time.monotonic()
    inv = b.invoke_detail(event, timeout_s=deadline_s + 20, deadline_s=deadline_s)
    took = time.monotonic() - t0
    record_measurement("cloudwatch_down_invocation", {"deadline_s": deadline_s, "answered_after_s": round(took, 3),
                                                      "kind": inv.kind})
    assert inv.kind == "error", (f"with CloudWatch unreachable the invocation must fail (so the event is "
                                 f"retried); got {inv.kind} after {took:.1f}s: {inv.text()[:500]}")
    assert inv.finished_before_deadline and took < deadline_s, (
        f"error posted {took:.2f}s after the invocation, deadline was {deadline_s}s")
    assert (json.loads(inv.body).get("errorMessage") or "").strip()
    assert b.alive()


def _emf_lines(lines):
    return [l for l in lines if isinstance(l.get("_aws"), dict)]


def _emf_sum(lines, metric, dimset, key_dims=None):
    """Sum `metric` over EMF lines that declare `dimset` (a list of dimension names) for it.
    Each line counts once for one dimension set. Keyed by the values of key_dims (default dimset)."""
    key_dims = dimset if key_dims is None else key_dims
    want = sorted(dimset)
    out = defaultdict(float)
    for l in lines:
        hit = False
        for d in l["_aws"].get("CloudWatchMetrics", []):
            if any(m.get("Name") == metric for m in d.get("Metrics", [])) and \
                    any(sorted(ds) == want for ds in d.get("Dimensions", [])):
                hit = True
        if hit and metric in l:
            v = l[metric]
            out[tuple(l[k] for k in key_dims)] += sum(v) if isinstance(v, list) else v
    return dict(out)


def test_emf_sink_gives_the_same_totals_and_sends_nothing(sim, start_bootstrap, cw, namespace):
    b = start_bootstrap(sim.env(namespace, NATMETER_SINK="emf", NATMETER_MAX_SOURCES="5"))
    invs = [b.invoke_detail(p.read_bytes(), timeout_s=60) for p in sim.events]
    failed = [(i.kind, i.text()[:200]) for i in invs if i.kind != "response"]
    assert not failed, f"invocations failed with NATMETER_SINK=emf: {failed[:3]}"
    assert _natbytes_metrics(cw, namespace) == [], "NATMETER_SINK=emf sent metrics to CloudWatch"

    lines = _emf_lines(b.stdout_json())
    assert lines, "no EMF lines (JSON objects with an _aws key) on stdout"
    t = sim.truth
    # structure and EMF limits
    lo_ms, hi_ms = sim.start * 1000, (sim.start + sim.minutes * 60) * 1000
    traffic = {"NatBytes", "NatCost", "NatPackets"}
    for l in lines:
        aws = l["_aws"]
        assert isinstance(aws.get("Timestamp"), int), aws
        names = {m.get("Name") for d in aws.get("CloudWatchMetrics", []) for m in d.get("Metrics", [])}
        if names & traffic:  # traffic datapoints carry the flow minute (counters may carry "now")
            assert lo_ms <= aws["Timestamp"] < hi_ms, \
                f"EMF Timestamp {aws['Timestamp']} of {sorted(names)} is not a simulated flow minute [{lo_ms}, {hi_ms})"
        for d in aws["CloudWatchMetrics"]:
            assert d["Namespace"] == namespace
            assert 1 <= len(d["Metrics"]) <= 100
            for ds in d["Dimensions"]:
                assert len(ds) <= 30 and all(isinstance(l.get(k), str) for k in ds), (ds, l)
            for m in d["Metrics"]:
                v = l.get(m["Name"])
                assert v is not None, f"metric {m['Name']} declared but absent: {l}"
                vals = v if isinstance(v, list) else [v]
                assert len(vals) <= 100 and all(isinstance(x, (int, float)) and math.isfinite(x) for x in vals), m

    total = _emf_sum(lines, "NatBytes", [])
    assert total.get((), 0) == t["totals"]["bytes"], "EMF NatBytes under dimension set [] != truth total"
    per_gw = _emf_sum(lines, "NatBytes", ["NatGatewayId"])
    assert {k: v for k, v in per_gw.items() if v} == \
        {(g["nat_gateway"],): g["bytes"] for g in t["nat_gateways"] if g["bytes"]}
    per_dir = _emf_sum(lines, "NatBytes", ["NatGatewayId", "Direction"])
    want_dir = {}
    for g in t["nat_gateways"]:
        want_dir[(g["nat_gateway"], "outbound")] = g["outbound_bytes"]
        want_dir[(g["nat_gateway"], "inbound")] = g["inbound_bytes"]
    assert {k: v for k, v in per_dir.items() if v} == {k: v for k, v in want_dir.items() if v}
    per_dst = _emf_sum(lines, "NatBytes", ["Destination"])
    assert {k: v for k, v in per_dst.items() if v} == \
        {(d["destination"],): d["bytes"] for d in t["destinations"] if d["bytes"]}
    per_src = _emf_sum(lines, "NatBytes", ["SourceIp"])
    assert sum(per_src.values()) == t["totals"]["bytes"]
    cost = _emf_sum(lines, "NatCost", [])
    assert math.isclose(cost.get((), 0.0), t["totals"]["bytes"] / GIB * t["price_per_gb_usd"], rel_tol=1e-9)


def test_both_sink_sends_and_prints(sim, start_bootstrap, cw, namespace):
    from cwread import MetricsReader
    emf_ns = namespace + "/emf"
    b = start_bootstrap(sim.env(namespace, NATMETER_SINK="both", NATMETER_EMF_NAMESPACE=emf_ns))
    invs = [b.invoke_detail(p.read_bytes(), timeout_s=60) for p in sim.events]
    assert all(i.kind == "response" for i in invs), [i.text()[:200] for i in invs if i.kind != "response"][:3]
    total = sim.truth["totals"]["bytes"]
    r = MetricsReader(cw, namespace, sim.start - 600, sim.start + sim.minutes * 60 + 600)
    assert r.value("NatBytes", unit="Bytes") == total, "NATMETER_SINK=both: CloudWatch total != truth"
    lines = _emf_lines(b.stdout_json())
    # One namespace, one sink: CloudWatch extracts EMF lines into metrics too, so the EMF copy must
    # name its own namespace or every Sum in NATMETER_NAMESPACE would double.
    namespaces = {m["Namespace"] for l in lines for m in l["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {emf_ns}, namespaces
    assert _emf_sum(lines, "NatBytes", []).get((), 0) == total, \
        "NATMETER_SINK=both: EMF total != truth"


def test_source_ip_cap_per_invocation(sim, start_bootstrap, cw):
    """Each invocation: at most NATMETER_MAX_SOURCES SourceIp series plus 'other'; the named ones are
    the largest sources of that invocation (by its uncapped detail lines); all sum to its total."""
    from cwread import MetricsReader
    cap = 3
    checked = 0
    for i, path in enumerate(sim.nat_eni_events()[:3]):
        ns = f"NatMeterE2E/cap-{i}-{int(time.time() * 1000)}"
        b = start_bootstrap(sim.env(ns, NATMETER_MAX_SOURCES=str(cap), NATMETER_MIN_SOURCE_SHARE="0"),
                            name=f"bootstrap-cap-{i}")
        inv = b.invoke_detail(path.read_bytes(), timeout_s=60)
        assert inv.kind == "response", inv.text()[:300]
        r = MetricsReader(cw, ns, sim.start - 600, sim.start + sim.minutes * 60 + 600)
        total = r.value("NatBytes")
        if total == 0:
            continue
        series = {ip: v for (ip,), v in r.by_dimensions("NatBytes", ["SourceIp"]).items()}
        assert len(series) <= cap + 1, f"{len(series)} SourceIp series > cap {cap} + other: {sorted(series)}"
        assert sum(series.values()) == total
        detail = defaultdict(int)
        for l in b.stdout_json_of(inv):
            if "_aws" not in l and "SourceIp" in l and "NatBytes" in l:
                detail[l["SourceIp"]] += l["NatBytes"]
        named = {ip: v for ip, v in series.items() if ip != "other"}
        if len(detail) > cap:
            assert len(named) == cap and series.get("other", 0) > 0, (named, series.get("other"))
            assert all(named[ip] == detail[ip] for ip in named), (named, dict(detail))
            smallest_named = min(named.values())
            assert all(v <= smallest_named for ip, v in detail.items() if ip not in named), \
                "a larger source was folded into 'other' while a smaller one kept its series"
            assert series["other"] == sum(v for ip, v in detail.items() if ip not in named)
        elif detail:
            assert named == dict(detail) and not series.get("other")
        checked += 1
    assert checked, "no NAT-ENI event with bytes to check the cap on"


STARTUP_ERRORS = {
    "max_sources_not_a_number": ({"NATMETER_MAX_SOURCES": "lots"}, "NATMETER_MAX_SOURCES", "lots"),
    "sink_unknown": ({"NATMETER_SINK": "kafka"}, "NATMETER_SINK", "kafka"),
    "nat_gateways_not_json": ({"NATMETER_NAT_GATEWAYS": "[{nat"}, "NATMETER_NAT_GATEWAYS", None),
    "nat_gateways_missing": ({"NATMETER_NAT_GATEWAYS": None}, "NATMETER_NAT_GATEWAYS", None),
    "price_not_a_number": ({"NATMETER_PRICE_PER_GB": "cheap"}, "NATMETER_PRICE_PER_GB", "cheap"),
    "unknown_region_without_price": ({"AWS_REGION": "xx-nowhere-9", "AWS_DEFAULT_REGION": "xx-nowhere-9"},
                                     ("NATMETER_PRICE_PER_GB", "AWS_REGION"), "xx-nowhere-9"),
    "private_cidrs_bad": ({"NATMETER_PRIVATE_CIDRS": "10.0.0.0/33"}, "NATMETER_PRIVATE_CIDRS", "10.0.0.0/33"),
}


@pytest.mark.parametrize("case", sorted(STARTUP_ERRORS))
def test_bad_setting_is_a_startup_error_naming_the_variable(case, sim, start_bootstrap, namespace):
    env_over, var, value = STARTUP_ERRORS[case]
    env = sim.env(namespace)
    env.update(env_over)
    b = start_bootstrap(env, name=f"bootstrap-{case}", wait_ready=False)
    end = time.monotonic() + 15
    while b.alive() and b.api.init_error is None and b.api.next_requests == 0 and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.2)
    if b.api.next_requests and b.api.init_error is None:
        pytest.fail(f"{case}: the function started serving invocations despite a bad setting ({env_over})")
    assert not b.alive() or b.api.init_error is not None, f"{case}: neither exited nor reported an init error"
    text = b.stderr_text() + (b.api.init_error or b"").decode(errors="replace")
    names = var if isinstance(var, tuple) else (var,)
    assert any(n in text for n in names), f"{case}: the start-up error does not name {' or '.join(names)}:\n{text[-1500:]}"
    if value:
        assert value in text, f"{case}: the start-up error does not show the value {value!r}:\n{text[-1500:]}"
