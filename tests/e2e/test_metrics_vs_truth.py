"""The real bootstrap, fed `natmeter simulate` events through the Runtime API, sends metrics to
LocalStack; what CloudWatch then holds must equal the simulator's truth.json.

Contract: docs/contracts.md §2 and §5; issue 3 section 4.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import pytest

from conftest import OUT, launch_bootstrap, _safe

GIB = 2 ** 30
DEFAULT_MAX_SOURCES = 20  # docs/contracts.md §3

# NatBytes / NatCost dimension sets (names sorted), docs/contracts.md §2.1
BYTES_SETS = {(), ("NatGatewayId",), ("Direction", "NatGatewayId"), ("Destination",), ("SourceIp",)}
CONTRACT_SETS = {
    "NatBytes": BYTES_SETS,
    "NatCost": BYTES_SETS,
    "NatPackets": {("NatGatewayId",)},
    "RecordsCounted": {()},
    "RecordsSkipped": {(), ("Reason",)},
    "ParseErrors": {()},
    "IngestLag": {()},
}
SKIP_REASON_FIELDS = ("public_side", "not_nat", "rejected", "no_data", "skip_data", "zero_bytes")

SCENARIOS = {
    # pods SNATed to their node IP (VPC CNI default): few sources, default cap; all ENIs of the VPC logged
    "snat-vpc-default-cap": dict(sim=dict(seed=11, pods=40, nodes=4, nat_gateways=2, minutes=3,
                                       external_snat=False, scope="vpc"), max_sources=None),
    # external SNAT: pod IPs reach the NAT gateway; only NAT ENIs logged; SourceIp cap bites
    "podip-natenis-capped": dict(sim=dict(seed=12, pods=30, nodes=3, nat_gateways=3, minutes=2,
                                          external_snat=True, scope="nat-enis"), max_sources=5),
    # many small batches: one minute of one gateway spread over several invocations, each with its
    # own SourceIp cap; the format's field order shuffled
    "podip-vpc-small-batches": dict(sim=dict(seed=13, pods=80, nodes=5, nat_gateways=2, minutes=5,
                                             external_snat=True, scope="vpc", max_batch_bytes=20000,
                                             shuffle_format=True), max_sources=8),
}


@dataclass
class Run:
    name: str
    sim: object
    namespace: str
    max_sources: int
    bootstrap: object
    invocations: list
    reader: object
    min_share: float

    @property
    def truth(self):
        return self.sim.truth


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def run(request, simulate, bootstrap_bin, localstack, cw):
    sc = SCENARIOS[request.param]
    sim = simulate(**sc["sim"])
    ns = f"NatMeterE2E/{request.param}-{uuid.uuid4().hex[:8]}"
    outdir = OUT / _safe(f"metrics_vs_truth-{request.param}")
    # max_sources None: NATMETER_MAX_SOURCES unset, the default (20) applies
    max_sources = sc["max_sources"] if sc["max_sources"] is not None else DEFAULT_MAX_SOURCES
    # With an explicit cap, NATMETER_MIN_SOURCE_SHARE=0 tests the plain top-N; the default scenario
    # keeps the default share floor (0.05), under which small sources fold into 'other'.
    env = sim.env(ns) if sc["max_sources"] is None else sim.env(
        ns, NATMETER_MAX_SOURCES=str(max_sources), NATMETER_MIN_SOURCE_SHARE="0")
    min_share = 0.05 if sc["max_sources"] is None else 0.0
    b = launch_bootstrap([str(bootstrap_bin)], env, outdir, "bootstrap", localstack)
    try:
        invs = [b.invoke_detail(p.read_bytes(), timeout_s=60) for p in sim.events]
        (outdir / "invocations.json").write_text(json.dumps(
            [{"event": str(p), "request_id": i.request_id, "kind": i.kind, "elapsed_s": i.elapsed_s,
              "body": i.text()[:2000]} for p, i in zip(sim.events, invs)], indent=1))
        yield Run(request.param, sim, ns, max_sources, b, invs, sim.reader(cw, ns), min_share)
    finally:
        b.stop()


def _nonzero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


def test_every_invocation_succeeds(run):
    failed = [(p.name, i.kind, i.text()[:300]) for p, i in zip(run.sim.events, run.invocations)
              if i.kind != "response"]
    assert not failed, f"{len(failed)}/{len(run.invocations)} invocations did not succeed: {failed[:5]}"
    assert run.bootstrap.alive()
    assert run.bootstrap.api.protocol_errors == []


def test_metric_names_and_dimension_sets(run):
    r = run.reader
    names = r.metric_names()
    required = {"NatBytes", "NatCost", "NatPackets", "RecordsCounted", "IngestLag"}
    if sum(run.truth["records"][k] for k in SKIP_REASON_FIELDS):
        required.add("RecordsSkipped")
    if run.truth["records"]["parse_errors"]:
        required.add("ParseErrors")
    assert required <= names, f"missing metrics: {sorted(required - names)}; present: {sorted(names)}"
    assert names <= set(CONTRACT_SETS), f"metrics outside the contract: {sorted(names - set(CONTRACT_SETS))}"
    for m in sorted(names):
        sets = r.dimension_sets(m)
        if m in ("NatBytes", "NatCost"):
            assert sets == CONTRACT_SETS[m], f"{m} dimension sets {sorted(sets)} != {sorted(CONTRACT_SETS[m])}"
        else:
            assert sets <= CONTRACT_SETS[m], f"{m} dimension sets {sorted(sets)} not within {sorted(CONTRACT_SETS[m])}"


def test_total_bytes(run):
    assert run.truth["totals"]["bytes"] > 0, "simulation produced no NAT bytes: scenario is useless"
    assert run.reader.value("NatBytes", unit="Bytes") == run.truth["totals"]["bytes"]


def test_bytes_per_nat_gateway(run):
    got = run.reader.by_dimensions("NatBytes", ["NatGatewayId"], unit="Bytes")
    want = {(g["nat_gateway"],): g["bytes"] for g in run.truth["nat_gateways"]}
    assert _nonzero(got) == _nonzero(want)


def test_bytes_per_nat_gateway_and_direction(run):
    got = run.reader.by_dimensions("NatBytes", ["NatGatewayId", "Direction"], unit="Bytes")
    want = {}
    for g in run.truth["nat_gateways"]:
        want[(g["nat_gateway"], "outbound")] = g["outbound_bytes"]
        want[(g["nat_gateway"], "inbound")] = g["inbound_bytes"]
    assert _nonzero(got) == _nonzero(want)
    assert {d for (_, d) in got} <= {"outbound", "inbound"}
    assert sum(got.values()) == run.truth["totals"]["bytes"]


def test_bytes_per_destination(run):
    got = run.reader.by_dimensions("NatBytes", ["Destination"], unit="Bytes")
    want = {(d["destination"],): d["bytes"] for d in run.truth["destinations"]}
    assert _nonzero(got) == _nonzero(want)


def test_source_ip_series(run):
    got = run.reader.by_dimensions("NatBytes", ["SourceIp"], unit="Bytes")
    truth_sources = {s["source"]: s["bytes"] for s in run.truth["sources"] if s["bytes"]}
    total = run.truth["totals"]["bytes"]
    assert sum(got.values()) == total, "SourceIp series (with 'other') must sum to the total"
    unknown = {k for (k,) in got} - set(truth_sources) - {"other"}
    assert not unknown, f"SourceIp values that are not simulated sources: {sorted(unknown)[:10]}"
    for (ip,), v in got.items():
        if ip != "other":
            assert v <= truth_sources[ip], f"SourceIp={ip}: {v} > its true bytes {truth_sources[ip]}"
    n_inv = len(run.invocations)
    assert len(got) <= (run.max_sources + 1) * n_inv
    if run.min_share > 0:
        # under the share floor only heavy sources are named; the sum above is the guarantee
        pass
    elif len(truth_sources) <= run.max_sources:
        # the cap cannot bite: every source is its own series, exactly
        assert _nonzero({k: v for (k,), v in got.items()}) == truth_sources
    else:
        assert got.get(("other",), 0) > 0, (
            f"{len(truth_sources)} sources > NATMETER_MAX_SOURCES={run.max_sources}, yet no SourceIp=other")


def test_cost(run):
    price = run.truth["price_per_gb_usd"]
    total = run.truth["totals"]["bytes"]
    got = run.reader.value("NatCost", unit="None")
    assert math.isclose(got, total / GIB * price, rel_tol=1e-9), (got, total / GIB * price)
    per_gw = run.reader.by_dimensions("NatCost", ["NatGatewayId"], unit="None")
    for g in run.truth["nat_gateways"]:
        if g["bytes"]:
            assert math.isclose(per_gw.get((g["nat_gateway"],), 0.0), g["bytes"] / GIB * price, rel_tol=1e-9), g
    per_src = run.reader.by_dimensions("NatCost", ["SourceIp"], unit="None")
    assert math.isclose(sum(per_src.values()), total / GIB * price, rel_tol=1e-9)
    per_dst = run.reader.by_dimensions("NatCost", ["Destination"], unit="None")
    assert math.isclose(sum(per_dst.values()), total / GIB * price, rel_tol=1e-9)


def test_packets(run):
    got = run.reader.by_dimensions("NatPackets", ["NatGatewayId"], unit="Count")
    assert sum(got.values()) == run.truth["totals"]["packets"]
    assert {k for (k,) in _nonzero(got)} <= {g["nat_gateway"] for g in run.truth["nat_gateways"]}


def _counters_reader(run):
    """Processing counters may be stamped with the flow minute or the processing time (docs/contracts.md §2.3
    says the invocation's clock): read them over a window covering both."""
    return run.reader.with_window(run.sim.start - 600, int(time.time()) + 600)


def test_record_counters(run):
    rec = run.truth["records"]
    r = _counters_reader(run)
    assert r.value("RecordsCounted", unit="Count") == rec["counted"]
    assert r.value("ParseErrors") == rec["parse_errors"]
    skipped = sum(rec[k] for k in SKIP_REASON_FIELDS)
    assert r.value("RecordsSkipped") == skipped, (
        f"RecordsSkipped != public_side+not_nat+rejected+no_data+skip_data+zero_bytes of truth.records {rec}")
    by_reason = r.by_dimensions("RecordsSkipped", ["Reason"])
    assert sum(by_reason.values()) == skipped, f"RecordsSkipped by Reason {by_reason} does not sum to {skipped}"


def test_ingest_lag(run):
    r = _counters_reader(run)
    assert "IngestLag" in r.metric_names()
    lo = r.value("IngestLag", stat="Minimum", unit="Seconds")
    hi = r.value("IngestLag", stat="Maximum", unit="Seconds")
    # flows ended between SIM_START and SIM_START + minutes; processing happened now
    now = time.time()
    assert now - (run.sim.start + run.sim.minutes * 60) - 300 <= lo <= hi <= now - run.sim.start + 300, (lo, hi)


def test_datapoints_carry_the_flow_minute(run):
    sim, r = run.sim, run.reader
    flow = r.with_window(sim.start, sim.start + sim.minutes * 60)
    assert flow.value("NatBytes") == run.truth["totals"]["bytes"], "NatBytes outside the simulated minutes"
    now = int(time.time())
    assert r.with_window(now - 600, now + 600).value("NatBytes") == 0, "NatBytes stamped with processing time"
    # per flow minute, when the simulator's truth has them (StartTime inclusive, EndTime exclusive)
    minutes = {int(k): v for k, v in run.truth.get("minutes", {}).items()}
    if minutes:
        got = {m: r.with_window(m, m + 60).value("NatBytes") for m in sorted(minutes)}
        assert got == minutes, "NatBytes per flow minute != truth.minutes"


def test_source_detail_lines(run):
    """Every source, uncapped, as one stdout JSON line per (minute, source, gateway, direction, destination)."""
    lines = [l for l in run.bootstrap.stdout_json() if "_aws" not in l and "SourceIp" in l]
    assert lines, "no source detail lines (JSON with SourceIp, NatBytes, ...) on stdout"
    keys = {"SourceIp", "NatGatewayId", "Direction", "Destination", "NatBytes", "NatPackets", "NatCost"}
    bad = [l for l in lines if not keys <= set(l)]
    assert not bad, f"detail lines lacking {keys}: {bad[:3]}"
    price = run.truth["price_per_gb_usd"]
    per_src = defaultdict(int)
    per_src_pk = defaultdict(int)
    per_src_dst = defaultdict(int)
    per_gw_dir = defaultdict(int)
    for l in lines:
        per_src[l["SourceIp"]] += l["NatBytes"]
        per_src_pk[l["SourceIp"]] += l["NatPackets"]
        per_src_dst[(l["SourceIp"], l["Destination"])] += l["NatBytes"]
        per_gw_dir[(l["NatGatewayId"], l["Direction"])] += l["NatBytes"]
        assert math.isclose(l["NatCost"], l["NatBytes"] / GIB * price, rel_tol=1e-9, abs_tol=1e-15), l
    t = run.truth
    assert _nonzero(dict(per_src)) == {s["source"]: s["bytes"] for s in t["sources"] if s["bytes"]}
    assert _nonzero(dict(per_src_pk)) == {s["source"]: s["packets"] for s in t["sources"] if s["packets"]}
    assert _nonzero(dict(per_src_dst)) == _nonzero(
        {(s["source"], d["destination"]): d["bytes"] for s in t["sources"] for d in s["destinations"]})
    want_gw = {}
    for g in t["nat_gateways"]:
        want_gw[(g["nat_gateway"], "outbound")] = g["outbound_bytes"]
        want_gw[(g["nat_gateway"], "inbound")] = g["inbound_bytes"]
    assert _nonzero(dict(per_gw_dir)) == _nonzero(want_gw)


def test_one_summary_log_line_per_invocation(run):
    """docs/contracts.md §5.4: one structured log line per invocation (request id, log stream, records, bytes,
    cost, datums sent, duration). Checked here: a JSON line on stderr naming the request id."""
    b = run.bootstrap
    missing = []
    for inv in run.invocations:
        text = b.stderr_text_of(inv)
        js = [l for l in text.splitlines() if l.startswith("{") and inv.request_id in l]
        if not js:
            missing.append(inv.request_id)
    assert not missing, (f"{len(missing)}/{len(run.invocations)} invocations have no JSON stderr line with "
                         f"their request id, e.g. {missing[:2]}; stderr tail:\n{b.stderr_tail(10)}")
