"""Fault injection between the real bootstrap and CloudWatch (issue 6 section 3).

The bootstrap talks to a fault-injecting proxy (fault_proxy.py) in front of LocalStack. Faults:
throttling (HTTP 400 + CBOR __type Throttling, as the rpc-v2-cbor endpoint answers), 500s,
connection resets, and latency beyond the deadline. The contract (docs/operations.md §1.2,
crates/cloudwatch/src/put.rs):

- failed PutMetricData calls are retried with backoff (100 ms doubling to 2 s, jittered into
  [b/2, b)) until the deadline nears (750 ms margin, no attempt with < 250 ms left);
- every datapoint arrives exactly once when the endpoint recovers before the deadline, and no
  datapoint is sent twice within one invocation;
- when it does not recover the invocation fails (naming what was not delivered): no silent loss;
- a retry of a failed event is processed normally (it is not taken for a duplicate).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict

import pytest

from bootstrap_proc import json_lines
from lambda_events import control_message_event

GIB = 2 ** 30
# 2 events (one per NAT ENI), 30 minutes each: ~1,700 datums per invocation -> 2 PutMetricData
# requests sent concurrently per invocation.
SIM = dict(seed=31, pods=60, nodes=3, nat_gateways=2, minutes=30, external_snat=True, scope="nat-enis")
BACKOFF_START_S = 0.100
BACKOFF_MAX_S = 2.0
DEADLINE_MARGIN_S = 0.750
MIN_ATTEMPT_S = 0.250
ERROR_RX = re.compile(r"(\d+) of (\d+) PutMetricData requests \((\d+) datums\) were not delivered")


@pytest.fixture
def sim(simulate):
    return simulate(**SIM)


# ---------------------------------------------------------------- helpers ---------------------

def put_requests(reqs):
    return [r for r in reqs if r.operation == "PutMetricData"]


def by_body(reqs) -> dict[str, list]:
    out = defaultdict(list)
    for r in sorted(put_requests(reqs), key=lambda r: r.t):
        out[r.body_sha256].append(r)
    return dict(out)


def assert_exactly_once(reqs, what: str):
    """Every logical request (a distinct body) was answered by the upstream with 200 exactly once,
    and no datum identity reached the upstream twice."""
    groups = by_body(reqs)
    assert groups, f"{what}: no PutMetricData request reached the proxy"
    ok_per_body = {sha: sum(1 for r in g if r.forwarded_ok) for sha, g in groups.items()}
    twice = {sha[:12]: n for sha, n in ok_per_body.items() if n > 1}
    assert not twice, f"{what}: request bodies forwarded and accepted more than once: {twice}"
    never = [sha[:12] for sha, n in ok_per_body.items() if n == 0]
    assert not never, f"{what}: request bodies never delivered: {never}"
    forwarded = [r for r in put_requests(reqs) if r.outcome == "pass"]
    assert all(r.upstream_status == 200 for r in forwarded), \
        f"{what}: LocalStack refused a forwarded request: {[r.summary() for r in forwarded if r.upstream_status != 200]}"
    datums = [d for r in forwarded for d in r.datums()]
    dup = [d for d, n in Counter(datums).items() if n > 1]
    assert not dup, f"{what}: {len(dup)} datapoints sent twice within one invocation, e.g. {dup[:2]}"
    wanted = {d for g in groups.values() for d in g[0].datums()}
    assert set(datums) == wanted, f"{what}: delivered datums differ from the datums the function tried to send"
    return len(datums)


def assert_backoff(reqs, what: str, faulted_outcomes: set[str]):
    """Per logical request: attempt k+1 arrives after [b_k/2, b_k + slack] following the end of
    attempt k (b_k = min(100 ms * 2^k, 2 s)), so the gaps grow. Returns the gap series."""
    series = {}
    for sha, g in by_body(reqs).items():
        gaps = []
        for k in range(len(g) - 1):
            assert g[k].outcome in faulted_outcomes, (
                f"{what}: body {sha[:12]} sent again after a '{g[k].outcome}' answer: "
                f"{[r.summary() for r in g]}")
            gap = g[k + 1].t - g[k].t_done
            b = min(BACKOFF_START_S * 2 ** k, BACKOFF_MAX_S)
            assert gap >= b / 2 - 0.005, (f"{what}: retry {k + 1} of body {sha[:12]} came {gap * 1000:.0f} ms after "
                                          f"the failure; backoff {b * 1000:.0f} ms jittered must wait >= {b * 500:.0f} ms")
            assert gap <= b + 0.35, (f"{what}: retry {k + 1} of body {sha[:12]} came {gap * 1000:.0f} ms after the "
                                     f"failure; backoff {b * 1000:.0f} ms (+350 ms slack) expected")
            gaps.append(gap)
        for k in range(len(gaps) - 1):
            # while the backoff doubles, [b/2, b) jitter cannot shrink a gap; at the 2 s cap it may
            if min(BACKOFF_START_S * 2 ** (k + 1), BACKOFF_MAX_S) == 2 * min(BACKOFF_START_S * 2 ** k, BACKOFF_MAX_S):
                assert gaps[k + 1] >= gaps[k] - 0.03, f"{what}: backoff shrank for body {sha[:12]}: {gaps}"
        if len(gaps) >= 3:
            assert gaps[-1] > 1.5 * gaps[0], f"{what}: gaps do not grow for body {sha[:12]}: {gaps}"
        series[sha[:12]] = [round(x * 1000) for x in gaps]
    return series


def check_truth(cw, sim, namespace, factor: int = 1):
    """NatBytes/NatCost/NatPackets totals, per gateway and per direction equal factor x truth."""
    r = sim.reader(cw, namespace)
    t = sim.truth
    assert r.value("NatBytes", unit="Bytes") == factor * t["totals"]["bytes"], "NatBytes total != truth"
    got = {gw: v for (gw,), v in r.by_dimensions("NatBytes", ["NatGatewayId"]).items() if v}
    want = {g["nat_gateway"]: factor * g["bytes"] for g in t["nat_gateways"] if g["bytes"]}
    assert got == want, "NatBytes per gateway != truth"
    got = {k: v for k, v in r.by_dimensions("NatBytes", ["NatGatewayId", "Direction"]).items() if v}
    want = {}
    for g in t["nat_gateways"]:
        for d in ("outbound", "inbound"):
            if g[f"{d}_bytes"]:
                want[(g["nat_gateway"], d)] = factor * g[f"{d}_bytes"]
    assert got == want, "NatBytes per gateway and direction != truth"
    pk = sum(r.by_dimensions("NatPackets", ["NatGatewayId"]).values())
    assert pk == factor * t["totals"]["packets"], "NatPackets != truth"
    cost = r.value("NatCost")
    assert math.isclose(cost, factor * t["totals"]["bytes"] / GIB * t["price_per_gb_usd"], rel_tol=1e-9), "NatCost"
    assert r.value("RecordsCounted") == factor * t["records"]["counted"], "RecordsCounted != truth"


def invocation_log(b, inv) -> dict:
    lines = [l for l in json_lines(b.stderr_text_of(inv)) if l.get("message") == "natmeter invocation"]
    assert len(lines) == 1, f"expected one 'natmeter invocation' log line, got {len(lines)}"
    return lines[0]


def retry_warnings(b, inv) -> list[dict]:
    return [l for l in json_lines(b.stderr_text_of(inv)) if l.get("message") == "PutMetricData failed; retrying"]


def detail_lines(b, inv) -> list[dict]:
    return [l for l in b.stdout_json_of(inv) if l.get("natmeter") == "source"]


def run_events(b, sim, deadline_s: float):
    return [b.invoke_detail(p.read_bytes(), timeout_s=deadline_s + 30, deadline_s=deadline_s) for p in sim.events]


def transient(sim, start_bootstrap, cw, namespace, proxy, outcomes: list[str], what: str, record_measurement):
    """Each logical request meets `outcomes` (by attempt number) and then a healthy endpoint."""
    proxy.set_rule(lambda r: outcomes[r.attempt] if r.attempt < len(outcomes) else "pass")
    b = start_bootstrap(sim.env(namespace), endpoint=proxy.url)
    report = {"invocations": []}
    for p in sim.events:
        mark = proxy.mark()
        inv = b.invoke_detail(p.read_bytes(), timeout_s=60, deadline_s=30)
        assert inv.kind == "response", f"{what}: the endpoint recovered, yet the invocation failed: {inv.text()[:800]}"
        proxy.wait_idle()
        reqs = proxy.since(mark)
        groups = by_body(reqs)
        n_datums = assert_exactly_once(reqs, what)
        assert all(len(g) == len(outcomes) + 1 for g in groups.values()), \
            f"{what}: each request should take {len(outcomes) + 1} attempts: {[len(g) for g in groups.values()]}"
        gaps = assert_backoff(reqs, what, set(outcomes))
        body = inv.json()
        assert body["datums_sent"] == n_datums, f"{what}: response datums_sent {body['datums_sent']} != delivered {n_datums}"
        log = invocation_log(b, inv)
        faulted = sum(1 for r in put_requests(reqs) if r.outcome != "pass")
        assert log["retries"] == faulted, f"{what}: log says {log['retries']} retries, the proxy saw {faulted} faulted attempts"
        warns = retry_warnings(b, inv)
        assert len(warns) == faulted, f"{what}: {len(warns)} retry warnings for {faulted} faulted attempts"
        assert len(detail_lines(b, inv)) > 0, f"{what}: no source detail lines after a successful send"
        report["invocations"].append({"requests": len(groups), "attempts": len(put_requests(reqs)), "datums": n_datums,
                                      "gaps_ms": gaps, "elapsed_s": round(inv.elapsed_s, 3)})
    check_truth(cw, sim, namespace)
    assert b.alive()
    record_measurement(f"faults_{what}", report)
    return b


# ---------------------------------------------------------------- tests -----------------------

def test_transient_throttling_then_recovery(sim, start_bootstrap, cw, namespace, fault_proxy, record_measurement):
    """3 throttled attempts per request (CBOR __type only, then with x-amzn-query-error too), then
    success: totals exact, retries with growing gaps, nothing delivered twice; the SDK reads the
    throttle as error code Throttling."""
    proxy = fault_proxy()
    outcomes = ["throttle", "throttle_qc", "throttle"]
    b = transient(sim, start_bootstrap, cw, namespace, proxy, outcomes, "throttling", record_measurement)
    warns = [l for inv in b.invocations for l in retry_warnings(b, inv)]
    assert warns, "no retry warnings"
    not_throttling = [w["error"][:300] for w in warns if 'code: Some("Throttling")' not in w["error"]]
    assert not not_throttling, f"the SDK did not classify the injected throttle as code Throttling: {not_throttling[:2]}"


def test_transient_500s_and_resets_then_recovery(sim, start_bootstrap, cw, namespace, fault_proxy, record_measurement):
    proxy = fault_proxy()
    outcomes = ["500", "reset", "500", "reset"]
    b = transient(sim, start_bootstrap, cw, namespace, proxy, outcomes, "500_and_reset", record_measurement)
    errors = [w["error"] for inv in b.invocations for w in retry_warnings(b, inv)]
    assert any("InternalServiceError" in e for e in errors), "no 500 (InternalServiceError) seen by the SDK"
    assert any("Connection reset" in e or "connection closed" in e.lower() for e in errors), \
        f"no connection reset seen by the SDK: {[e[:200] for e in errors]}"


@pytest.mark.parametrize("fault", ["500", "delay"])
def test_persistent_fault_fails_before_the_deadline_naming_what_was_lost(
        fault, sim, start_bootstrap, cw, namespace, fault_proxy, record_measurement):
    """The endpoint never recovers: the invocation fails before its deadline, its error names the
    undelivered requests and datums, nothing reached LocalStack and no detail line was printed."""
    deadline_s = 6.0
    proxy = fault_proxy(delay_s=120)
    proxy.always(fault)
    b = start_bootstrap(sim.env(namespace), endpoint=proxy.url)
    event = sim.events[0]
    t0 = time.monotonic()
    inv = b.invoke_detail(event.read_bytes(), timeout_s=deadline_s + 30, deadline_s=deadline_s)
    took = time.monotonic() - t0
    assert inv.kind == "error", f"persistent {fault}: the invocation must fail; got {inv.kind}: {inv.text()[:500]}"
    assert inv.finished_before_deadline, f"persistent {fault}: error posted {took:.2f}s after the invoke, deadline {deadline_s}s"
    msg = inv.json().get("errorMessage", "")
    m = ERROR_RX.search(msg)
    assert m, f"persistent {fault}: the error does not name the undelivered requests: {msg[:500]}"
    failed, total, datums = map(int, m.groups())
    reqs = put_requests(proxy.since(0))
    groups = by_body(reqs)
    assert failed == total == len(groups), f"message says {failed} of {total} failed; the proxy saw {len(groups)} bodies"
    want_datums = sum(len(g[0].datums()) for g in groups.values())
    assert datums == want_datums, f"message says {datums} datums undelivered; the requests carried {want_datums}"
    assert not any(r.outcome == "pass" for r in reqs), "a request reached LocalStack"
    assert detail_lines(b, inv) == [], "detail lines printed although the metrics were not delivered"
    assert sim.reader(cw, namespace).list_metrics() == [], "metrics reached LocalStack"
    attempts = {sha[:12]: len(g) for sha, g in groups.items()}
    last_attempt = max(r.t for r in reqs) - t0
    if fault == "500":
        # kept retrying with backoff until the deadline neared: >= 5 attempts in ~5 s
        assert min(attempts.values()) >= 5, f"too few attempts before giving up: {attempts}"
        assert last_attempt >= deadline_s - DEADLINE_MARGIN_S - BACKOFF_MAX_S - MIN_ATTEMPT_S - 0.3, \
            f"gave up early: last attempt {last_attempt:.2f}s into a {deadline_s}s invocation"
        assert_backoff(reqs, "persistent 500", {"500"})
        assert "InternalServiceError" in msg
    else:
        # each attempt is held past the deadline: one attempt per request, timed out at the deadline
        assert set(attempts.values()) == {1}, f"attempts per request: {attempts}"
        assert "timed out at the deadline" in msg, msg[:500]
        assert took >= deadline_s - DEADLINE_MARGIN_S - 0.5, f"gave up after {took:.2f}s, before the deadline neared"
    assert b.alive()
    nxt = b.invoke_detail(control_message_event(), timeout_s=30)
    assert nxt.kind == "response", f"the next invocation after a persistent {fault}: {nxt.text()[:300]}"
    record_measurement(f"faults_persistent_{fault}", {"deadline_s": deadline_s, "answered_after_s": round(took, 3),
                                                     "attempts_per_request": attempts, "error": msg[:300]})


def test_retry_after_failed_invocation_delivers_exactly_once(sim, start_bootstrap, cw, namespace, fault_proxy):
    """Every event first fails (CloudWatch answers 500 until the deadline), then Lambda's retry of the
    same event arrives with CloudWatch healthy: LocalStack holds the truth once, not twice, and the
    retry is not mistaken for a duplicate delivery."""
    proxy = fault_proxy()
    proxy.always("500")
    b = start_bootstrap(sim.env(namespace), endpoint=proxy.url)
    failed = run_events(b, sim, deadline_s=4.0)
    assert all(i.kind == "error" for i in failed), [i.text()[:200] for i in failed if i.kind != "error"]
    assert all(detail_lines(b, i) == [] for i in failed), "detail lines printed by failed invocations"
    assert sim.reader(cw, namespace).list_metrics() == []
    proxy.healthy()
    mark = proxy.mark()
    retried = run_events(b, sim, deadline_s=30.0)
    for i in retried:
        assert i.kind == "response", f"retry failed: {i.text()[:500]}"
        assert i.json().get("batch") == "data", f"the retry of a failed event was not processed: {i.text()[:300]}"
        assert detail_lines(b, i), "no detail lines from the successful retry"
    assert all(r.outcome == "pass" and r.upstream_status == 200 for r in put_requests(proxy.since(mark)))
    check_truth(cw, sim, namespace)


def _fail_all_but_the_first_request(sim, start_bootstrap, namespace, fault_proxy):
    """One of an invocation's requests is delivered, the others fail until the deadline, so the
    invocation fails. Returns (proxy, bootstrap, event, requests, NatBytes total of the delivered one)."""
    proxy = fault_proxy()
    first: dict = {}

    def rule(r):
        first.setdefault("sha", r.body_sha256)
        return "pass" if r.body_sha256 == first["sha"] else "500"

    proxy.set_rule(rule)
    # Every source its own series (no share floor) so that this event needs two requests.
    env = sim.env(namespace, NATMETER_MIN_SOURCE_SHARE="0")
    b = start_bootstrap(env, endpoint=proxy.url)
    event = sim.events[1]  # 1,023 datums with this seed: two requests
    # The passing request must be answered before the deadline: 4 s left too little on a loaded
    # 2-core machine once LocalStack also ran S3 and SQS (the first request timed out in 2 of 5
    # runs); the failing ones are retried until the deadline whatever its length.
    inv = b.invoke_detail(event.read_bytes(), timeout_s=40, deadline_s=8.0)
    assert inv.kind == "error", f"a request failed until the deadline, yet: {inv.kind} {inv.text()[:300]}"
    m = ERROR_RX.search(inv.json().get("errorMessage", ""))
    assert m, inv.text()[:500]
    failed, total = int(m.group(1)), int(m.group(2))
    assert total >= 2 and failed == total - 1, (
        f"expected all but one request to fail: {inv.text()[:300]}; the proxy saw: "
        f"{[r.summary() for r in put_requests(proxy.since(0))][:8]}")
    proxy.wait_idle()
    delivered = [r for r in put_requests(proxy.since(0)) if r.forwarded_ok]
    assert len(delivered) == 1
    # Which request goes first is a race: the delivered one may or may not carry the total.
    over = sum(v for (name, dims, ts, v, unit) in delivered[0].datums() if name == "NatBytes" and dims == ())
    proxy.healthy()
    return proxy, b, env, event, total, over, len(delivered[0].datums())


def test_partial_failure_then_retry_in_the_same_container_sends_only_the_rest(
        sim, start_bootstrap, cw, namespace, fault_proxy, record_measurement):
    """The warm container remembers what the failed attempt delivered (request digests, and the
    clock it used so the requests come out the same): Lambda's retry sends only the failed
    requests, and CloudWatch holds the event's truth exactly. (Before this, the retry re-sent every
    request: the resent count below told the difference even when the delivered request carried
    no total.)"""
    proxy, b, _, event, total, over, _ = _fail_all_but_the_first_request(sim, start_bootstrap, namespace, fault_proxy)
    mark = proxy.mark()
    retry = b.invoke_detail(event.read_bytes(), timeout_s=40, deadline_s=30.0)
    assert retry.kind == "response" and retry.json()["batch"] == "data", retry.text()[:300]
    proxy.wait_idle()
    resent = put_requests(proxy.since(mark))
    assert len(resent) == total - 1 and all(r.forwarded_ok for r in resent), \
        f"the retry sent {len(resent)} requests; {total - 1} had failed"
    event_bytes = retry.json()["bytes"]
    held = sim.reader(cw, namespace).value("NatBytes", unit="Bytes")
    assert held == event_bytes, (f"CloudWatch holds {held}; the event is {event_bytes} "
                                 f"(the first attempt's delivered request carried {over})")
    record_measurement("faults_partial_failure_warm_retry", {
        "event_bytes": event_bytes, "held_bytes": held, "requests": total, "resent_requests": len(resent)})


def test_partial_failure_then_retry_in_another_container_double_counts_only_what_was_delivered(
        sim, start_bootstrap, cw, namespace, fault_proxy, record_measurement):
    """At-least-once, measured: the retry lands on a new container, which knows nothing of the
    first attempt and sends every request. CloudWatch then holds the event's truth plus exactly the
    datums of the request delivered the first time (the bounded double count the README
    documents), nothing else."""
    proxy, _, env, event, total, over, first_datums = _fail_all_but_the_first_request(
        sim, start_bootstrap, namespace, fault_proxy)
    cold = start_bootstrap(env, endpoint=proxy.url, name="cold")
    retry = cold.invoke_detail(event.read_bytes(), timeout_s=40, deadline_s=30.0)
    assert retry.kind == "response" and retry.json()["batch"] == "data", retry.text()[:300]
    event_bytes = retry.json()["bytes"]
    held = sim.reader(cw, namespace).value("NatBytes", unit="Bytes")
    assert held == event_bytes + over, (f"CloudWatch holds {held}; the event is {event_bytes} and the part delivered "
                                        f"before the failure carried {over}")
    record_measurement("faults_partial_failure_double_count", {
        "event_bytes": event_bytes, "double_counted_bytes": over, "requests": total,
        "delivered_datums_first_time": first_datums})


def test_rejected_request_is_not_retried(sim, start_bootstrap, cw, namespace, fault_proxy):
    """An InvalidParameterValue answer is final: one attempt per request, the invocation fails at once."""
    proxy = fault_proxy()
    proxy.always("invalid")
    b = start_bootstrap(sim.env(namespace), endpoint=proxy.url)
    inv = b.invoke_detail(sim.events[0].read_bytes(), timeout_s=40, deadline_s=20.0)
    assert inv.kind == "error"
    assert "not retried" in inv.json().get("errorMessage", ""), inv.text()[:500]
    assert inv.elapsed_s < 5, f"took {inv.elapsed_s:.1f}s: was it retried?"
    groups = by_body(proxy.since(0))
    assert groups and all(len(g) == 1 for g in groups.values()), {k[:12]: len(g) for k, g in groups.items()}
