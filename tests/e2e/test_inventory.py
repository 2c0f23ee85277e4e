"""The function's inventory against a real DynamoDB implementation (issue 13 item 4): moto's server on
loopback (dynamodb_proc.py), the real bootstrap, LocalStack's CloudWatch.

The contract checked (NATMETER_INVENTORY_TABLE set, AWS_ENDPOINT_URL_DYNAMODB the emulator):
- an EKS audit batch (log group /aws/eks/<cluster>/cluster, stream kube-apiserver-audit-<hex>) is
  answered {"batch":"audit","log_stream","audit_events","facts_written","audit_errors"} and stores
  one item per relevant event: pk "h#<stage hour>", sk the auditID, f a compact JSON fact,
  expires_at stage seconds + NATMETER_INVENTORY_RETENTION_HOURS (default 24); idempotent; a table
  that cannot be written fails the invocation with natmeter.InventoryNotStored;
- a flow batch: a cold container loads the retention window (a Query per hour bucket), a warm one
  re-reads recent buckets at most every 60 s, a container that stored an audit batch itself has its
  names at once; records resolve at their own start; a table that cannot be read fails the
  invocation with natmeter.InventoryUnavailable and publishes nothing; the response gains
  identity {resolved_bytes, node_bytes, unresolved_bytes};
- NatBytes/NatCost gain [Namespace] and [Namespace, Workload] (shop / Deployment/web, (node) /
  Node/<name>, (unresolved) / Unresolved, `other` beyond NATMETER_MAX_SOURCES), NatNodeBytes and
  NatUnresolvedBytes by []; source detail lines gain Namespace, Workload, Pod, Node.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

import pytest

import auditgen as ag
import flowgen
from auditgen import NODE, PodSpec, us
from bootstrap_proc import json_lines
from cwread import MetricsReader
from dynamodb_proc import scan_items
from lambda_events import encode_payload

GIB = 2 ** 30
PRICE = 0.045  # NATMETER_PRICE_PER_GB, set explicitly so NatCost is exact
POD_WL = ("shop", "Deployment/web")
NODE_WL = ("(node)", f"Node/{NODE.name}")
UNRESOLVED = ("(unresolved)", "Unresolved")
AUDIT_KEYS = ("batch", "log_stream", "audit_events", "facts_written", "audit_errors")
REFRESH_S = 60  # a warm container re-reads recent buckets at most this often
WRITES = {"PutItem", "BatchWriteItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


def inv_env(namespace: str, table: str, ddb_url: str, **extra) -> dict:
    return flowgen.env(namespace, NATMETER_INVENTORY_TABLE=table, AWS_ENDPOINT_URL_DYNAMODB=ddb_url,
                       NATMETER_PRICE_PER_GB=str(PRICE), **extra)


# ---------------------------------------------------------------- the cluster -----------------

@dataclass
class Cluster:
    """A Deployment pod on a node: create, the node's status, the kubelet's Running status patch."""
    pod: PodSpec
    events: list
    claim_s: float  # the pod's status patch (its podIP claim), Unix seconds
    stream: str

    @property
    def node(self):
        return self.pod.node


def cluster(minutes_ago: int = 20, pod: Optional[PodSpec] = None, seed: str = "e2e") -> Cluster:
    pod = pod or PodSpec()
    t0 = us(flowgen.minute_ago(minutes_ago) + 12.351234)
    claim = t0 + 2_351_234
    evs = [ag.pod_create(t0, pod), ag.node_status(t0 + 900_000, pod.node), ag.pod_status(claim, pod)]
    return Cluster(pod=pod, events=evs, claim_s=claim / 1e6, stream=ag.log_stream(seed))


# ---------------------------------------------------------------- flow batches ----------------

@dataclass
class Part:
    ip: str
    start: int
    bytes: int
    label: tuple  # (Namespace, Workload) the function should give it


@dataclass
class FlowBatch:
    event: bytes
    parts: list[Part] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(p.bytes for p in self.parts)

    def minutes(self) -> list[int]:
        return sorted({p.start // 60 * 60 for p in self.parts})

    def _in(self, minute: Optional[int]):
        return [p for p in self.parts if minute is None or p.start // 60 * 60 == minute]

    def by_workload(self, minute: Optional[int] = None) -> dict:
        out = defaultdict(int)
        for p in self._in(minute):
            out[p.label] += p.bytes
        return dict(out)

    def by_namespace(self, minute: Optional[int] = None) -> dict:
        out = defaultdict(int)
        for p in self._in(minute):
            out[(p.label[0],)] += p.bytes
        return dict(out)

    def node_bytes(self, minute: Optional[int] = None) -> int:
        return sum(p.bytes for p in self._in(minute) if p.label[0] == "(node)")

    def unresolved_bytes(self, minute: Optional[int] = None) -> int:
        return sum(p.bytes for p in self._in(minute) if p.label == UNRESOLVED)

    def identity(self) -> dict:
        node, unres = self.node_bytes(), self.unresolved_bytes()
        return {"resolved_bytes": self.total - node - unres, "node_bytes": node, "unresolved_bytes": unres}


def flow_batch(id_base: int, parts: list[Part]) -> FlowBatch:
    """One NAT-ENI subscription event: an outbound record per part (source port unique per id_base,
    so every batch is distinct and never a 'duplicate')."""
    recs = [flowgen.record(p.start, srcaddr=p.ip, pkt_srcaddr=p.ip, srcport=20000 + id_base + i, bytes=p.bytes)
            for i, p in enumerate(parts)]
    ts = (max(p.start for p in parts) + 70) * 1000
    return FlowBatch(event=flowgen.event(recs, id_base=id_base, ts_ms=ts), parts=list(parts))


def named_batch(cl: Cluster, minutes_ago: int, id_base: int) -> FlowBatch:
    """The pod (two records) and its node (one), `minutes_ago` minutes ago (after the claim)."""
    start = flowgen.minute_ago(minutes_ago) + 5
    assert start > cl.claim_s + 1
    return flow_batch(id_base, [Part(cl.pod.ip, start, 336781, POD_WL), Part(cl.pod.ip, start, 120000, POD_WL),
                                Part(cl.node.ip, start, 98304, NODE_WL)])


# ---------------------------------------------------------------- checks ----------------------

def _fail_text(b, inv) -> str:
    return f"{inv.kind}: {inv.text()[:800]}\n--- stderr of the invocation ---\n{b.stderr_text_of(inv)[-3000:]}"


def invoke(b, event: bytes, deadline_s: float = 30.0):
    """One invocation; its answer is appended to out/<test>/<bootstrap>.invocations.jsonl."""
    inv = b.invoke_detail(event, timeout_s=deadline_s + 30, deadline_s=deadline_s)
    with open(b.outdir / f"{b.name}.invocations.jsonl", "a") as f:
        f.write(json.dumps({"kind": inv.kind, "elapsed_s": round(inv.elapsed_s or 0, 3), "body": inv.text()[:2000]}) + "\n")
    return inv


def check_audit_response(b, inv, stream: str, events: int, written, errors: int = 0, what: str = ""):
    """written: the count, or a set of acceptable counts (a repeat may skip what it knows is stored)."""
    assert inv.kind == "response", f"{what}: the audit batch failed: {_fail_text(b, inv)}"
    r = inv.json()
    got = {k: r.get(k) for k in AUDIT_KEYS}
    want = {"batch": "audit", "log_stream": stream, "audit_events": events, "facts_written": r.get("facts_written"),
            "audit_errors": errors}
    ok_written = written if isinstance(written, set) else {written}
    assert got == want and r.get("facts_written") in ok_written, \
        f"{what}: audit response {r} (contract: {dict(want, facts_written=sorted(ok_written))})"
    return r


def check_error(b, inv, error_type: str, what: str):
    assert inv.kind == "error", f"{what}: expected the invocation to fail with {error_type}; {_fail_text(b, inv)}"
    try:
        err = inv.json()
    except ValueError:
        pytest.fail(f"{what}: the error body is not JSON: {inv.text()[:500]}")
    assert err.get("errorType") == error_type, f"{what}: errorType {err.get('errorType')!r}, expected {error_type!r}: {err}"
    assert (err.get("errorMessage") or "").strip(), f"{what}: error without a message: {err}"
    assert inv.finished_before_deadline, f"{what}: the error came after the invocation's deadline"
    assert b.alive(), f"{what}: the process exited"
    return err


def _needle(ev: dict) -> str:
    """What an item's fact must name to be of any use: the address a status/node patch claims, the
    uid of the pod a create or delete describes."""
    r = ev["objectRef"]
    if r["resource"] == "nodes":
        return ev["requestObject"]["status"]["addresses"][0]["address"]
    if r.get("subresource") == "status":
        return ev["requestObject"]["status"].get("podIP") or ev["requestObject"]["metadata"]["uid"]
    return ev["responseObject"]["metadata"]["uid"]


def check_items(ddb, table: str, events: list, retention_hours: int = ag.RETENTION_HOURS, what: str = "") -> list:
    """The table holds exactly one item per relevant event, with the contract's key, TTL and fact."""
    items = scan_items(ddb, table)
    want = ag.expected_items(events, retention_hours)
    got = {(i.get("pk"), i.get("sk")): i for i in items}
    assert len(items) == len(got), f"{what}: duplicate keys in the scan: {items}"
    assert set(got) == set(want), (f"{what}: table items {sorted(got)} != expected {sorted(want)} "
                                   f"(pk h#<stage hour>, sk auditID; one per relevant event)")
    by_id = {ev["auditID"]: ev for ev in events if isinstance(ev, dict)}
    for key, it in got.items():
        assert set(it) == {"pk", "sk", "f", "expires_at"}, f"{what}: item attributes {sorted(it)}: {it}"
        assert it["expires_at"] == want[key], (f"{what}: {key}: expires_at {it['expires_at']} != stage seconds + "
                                               f"{retention_hours} h = {want[key]}")
        f = it["f"]
        assert isinstance(f, str), f"{what}: {key}: f is not a string: {f!r}"
        try:
            fact = json.loads(f)
        except ValueError:
            pytest.fail(f"{what}: {key}: f is not JSON: {f[:300]!r}")
        assert isinstance(fact, dict) and fact, f"{what}: {key}: f is not a JSON object: {f[:300]!r}"
        assert len(f) == len(json.dumps(fact, separators=(",", ":"), ensure_ascii=False)), \
            f"{what}: {key}: f is not compact JSON: {f[:300]!r}"
        ev = by_id[key[1]]
        assert _needle(ev) in f, f"{what}: {key}: the fact does not name {_needle(ev)!r}: {f}"
        assert len(f) < len(json.dumps(ev, separators=(",", ":"))), f"{what}: {key}: the fact is not smaller than the event"
    return items


def details(b, inv) -> list[dict]:
    return [l for l in b.stdout_json_of(inv) if l.get("natmeter") == "source"]


def check_flow(b, inv, fb: FlowBatch, cw, namespace: str, cl: Optional[Cluster], what: str,
               minutes: Optional[list[int]] = None):
    """The response (bytes, identity), the detail lines and what CloudWatch holds for each of the
    batch's minutes (every batch of one namespace uses minutes of its own)."""
    assert inv.kind == "response", f"{what}: the flow batch failed: {_fail_text(b, inv)}"
    r = inv.json()
    assert r.get("batch") == "data" and r.get("bytes") == fb.total, f"{what}: response {r}, expected bytes {fb.total}"
    assert r.get("identity") == fb.identity(), f"{what}: response identity {r.get('identity')} != {fb.identity()}"

    lines = details(b, inv)
    per = defaultdict(int)
    pods, nodes = defaultdict(set), defaultdict(set)
    for l in lines:
        key = (l.get("Namespace"), l.get("Workload"))
        per[key] += l.get("NatBytes", 0)
        pods[key].add(l.get("Pod"))
        nodes[key].add(l.get("Node"))
    assert dict(per) == fb.by_workload(), f"{what}: detail lines by (Namespace, Workload) {dict(per)} != {fb.by_workload()}"
    if cl is not None:
        pod_wl = (cl.pod.namespace, cl.pod.workload)
        if pod_wl in per:
            assert pods[pod_wl] == {cl.pod.name} and nodes[pod_wl] == {cl.node.name}, \
                f"{what}: the pod's detail lines: Pod {pods[pod_wl]}, Node {nodes[pod_wl]}"
        if NODE_WL in per:
            assert pods[NODE_WL] == {None} and nodes[NODE_WL] == {cl.node.name}, \
                f"{what}: the node's detail lines: Pod {pods[NODE_WL]}, Node {nodes[NODE_WL]}"
    if UNRESOLVED in per:
        assert pods[UNRESOLVED] == {None} and nodes[UNRESOLVED] == {None}, \
            f"{what}: unresolved detail lines name a pod or node: {pods[UNRESOLVED]}, {nodes[UNRESOLVED]}"

    for m in minutes or fb.minutes():
        reader = MetricsReader(cw, namespace, m, m + 60)
        check_minute_metrics(reader, fb, m, f"{what} (minute {m})")
    return r


def _nonzero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


def check_minute_metrics(reader: MetricsReader, fb: FlowBatch, minute: int, what: str):
    wl = _nonzero(reader.by_dimensions("NatBytes", ["Namespace", "Workload"]))
    assert wl == fb.by_workload(minute), f"{what}: NatBytes by [Namespace, Workload] {wl} != {fb.by_workload(minute)}"
    ns = _nonzero(reader.by_dimensions("NatBytes", ["Namespace"]))
    assert ns == fb.by_namespace(minute), f"{what}: NatBytes by [Namespace] {ns} != {fb.by_namespace(minute)}"
    total = sum(fb.by_workload(minute).values())
    assert reader.value("NatBytes") == total, f"{what}: NatBytes [] {reader.value('NatBytes')} != {total}"
    assert reader.value("NatNodeBytes") == fb.node_bytes(minute), \
        f"{what}: NatNodeBytes {reader.value('NatNodeBytes')} != {fb.node_bytes(minute)}"
    assert reader.value("NatUnresolvedBytes") == fb.unresolved_bytes(minute), \
        f"{what}: NatUnresolvedBytes {reader.value('NatUnresolvedBytes')} != {fb.unresolved_bytes(minute)}"
    cost = _nonzero(reader.by_dimensions("NatCost", ["Namespace", "Workload"]))
    want_cost = {k: v / GIB * PRICE for k, v in fb.by_workload(minute).items()}
    assert set(cost) == set(want_cost) and all(math.isclose(cost[k], want_cost[k], rel_tol=1e-9) for k in cost), \
        f"{what}: NatCost by [Namespace, Workload] {cost} != {want_cost}"
    for metric in ("NatNodeBytes", "NatUnresolvedBytes"):
        sets = reader.dimension_sets(metric)
        assert sets <= {()}, f"{what}: {metric} has dimension sets {sets}, the contract says [] only"


_BUCKET = re.compile(r"^h#\d+$")


def buckets_of(req) -> set[str]:
    """The hour buckets (pk values "h#<hour>") a DynamoDB request names."""
    out = set()

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str) and _BUCKET.match(x):
            out.add(x)
    try:
        walk(req.json_body())
    except ValueError:
        pass
    return out


def ddb_ops(reqs) -> list[str]:
    return [r.ddb_operation or r.path for r in reqs]


# ---------------------------------------------------------------- the tests -------------------

def test_cold_and_warm_containers(start_bootstrap, cw, namespace, dynamodb, ddb, inventory_table, fault_proxy,
                                  record_measurement):
    """Container A (cold) stores an audit batch and names its own flow batch at once; a new container
    B (cold, same table) names its flow batch from the table (a Query per hour bucket of the
    retention window); B's second batch (warm, within 60 s) is named without reading again."""
    cl = cluster(minutes_ago=20)
    a = start_bootstrap(inv_env(namespace + "/a", inventory_table, dynamodb), name="a")
    inv = invoke(a, ag.audit_event(cl.events, stream=cl.stream))
    check_audit_response(a, inv, cl.stream, events=3, written=3, what="A's audit batch")
    check_items(ddb, inventory_table, cl.events, what="after A's audit batch")

    f1 = named_batch(cl, minutes_ago=10, id_base=0)
    inv = invoke(a, f1.event)
    check_flow(a, inv, f1, cw, namespace + "/a", cl, "A's flow batch (names it stored itself)")

    proxy = fault_proxy(upstream=dynamodb)  # healthy: only to see what B asks the table
    b = start_bootstrap(inv_env(namespace + "/b", inventory_table, proxy.url), name="b")
    f2 = named_batch(cl, minutes_ago=9, id_base=100)
    mark = proxy.mark()
    t_cold = time.monotonic()
    hour_before = int(time.time()) // 3600
    inv = invoke(b, f2.event)
    cold_reqs = proxy.since(mark)
    check_flow(b, inv, f2, cw, namespace + "/b", cl, "B's first flow batch (cold: names from the table)")
    queries = [r for r in cold_reqs if r.ddb_operation == "Query"]
    queried = set().union(*(buckets_of(r) for r in queries)) if queries else set()
    claim_bucket = f"h#{int(cl.claim_s) // 3600}"
    hour_after = int(time.time()) // 3600
    record_measurement("inventory_cold_load", {"requests": ddb_ops(cold_reqs), "buckets": sorted(queried),
                                               "invocation_s": round(inv.elapsed_s, 3)})
    assert queries, f"B (cold) named the batch without a Query of the table: {ddb_ops(cold_reqs)}"
    assert claim_bucket in queried, f"B's cold load did not query the claim's bucket {claim_bucket}: {sorted(queried)}"
    window = {f"h#{h}" for h in range(hour_before - 23, hour_before + 1)}
    assert window <= queried, f"B's cold load missed buckets of the 24 h window: {sorted(window - queried)}"
    assert queried <= {f"h#{h}" for h in range(hour_before - 25, hour_after + 2)}, \
        f"B's cold load queried buckets outside the retention window: {sorted(queried)}"
    writes = [r for r in cold_reqs if r.ddb_operation in WRITES]
    assert not writes, f"a flow batch wrote to the table: {ddb_ops(writes)}"

    f3 = named_batch(cl, minutes_ago=8, id_base=200)
    mark = proxy.mark()
    inv = invoke(b, f3.event)
    warm_reqs = proxy.since(mark)
    check_flow(b, inv, f3, cw, namespace + "/b", cl, "B's second flow batch (warm)")
    if time.monotonic() - t_cold < REFRESH_S - 10:
        assert not warm_reqs, (f"B (warm, {time.monotonic() - t_cold:.0f} s after its cold load) read the table again: "
                               f"{ddb_ops(warm_reqs)} (contract: recent buckets at most every {REFRESH_S} s)")
    assert a.alive() and b.alive()


def test_warm_container_rereads_recent_buckets_after_60s(start_bootstrap, cw, namespace, dynamodb, ddb,
                                                         inventory_table, fault_proxy, record_measurement):
    """A warm container learns what another container stored: not before its 60 s, after them at the
    next invocation (a re-read of the recent buckets). Takes about 65 s."""
    first = cluster(minutes_ago=20)
    writer = start_bootstrap(inv_env(namespace + "/writer", inventory_table, dynamodb), name="writer")
    check_audit_response(writer, invoke(writer, ag.audit_event(first.events, stream=first.stream)), first.stream,
                         3, 3, what="the first pod's audit batch")

    proxy = fault_proxy(upstream=dynamodb)
    w = start_bootstrap(inv_env(namespace, inventory_table, proxy.url), name="warm")
    inv = invoke(w, named_batch(first, minutes_ago=12, id_base=0).event)
    loaded_at = time.monotonic()
    assert inv.kind == "response" and inv.json().get("identity", {}).get("unresolved_bytes") == 0, _fail_text(w, inv)

    # a second pod (another Deployment, another address) appears in the table through the writer
    api = PodSpec(deployment="api", template_hash="5f6b8c7d9e", suffix="q7w2z", ip="10.0.128.9")
    second = cluster(minutes_ago=16, pod=api, seed="e2e-2")
    second.events = [e for e in second.events if e["objectRef"]["resource"] != "nodes"]
    check_audit_response(writer, invoke(writer, ag.audit_event(second.events, stream=second.stream)), second.stream,
                         2, 2, what="the second pod's audit batch")
    api_wl = ("shop", "Deployment/api")

    start = flowgen.minute_ago(11) + 5
    early = flow_batch(100, [Part(api.ip, start, 4242, UNRESOLVED)])
    mark = proxy.mark()
    inv = invoke(w, early.event)
    reqs = proxy.since(mark)
    if time.monotonic() - loaded_at < REFRESH_S - 10:
        assert not reqs, f"the warm container read the table within {REFRESH_S} s of its load: {ddb_ops(reqs)}"
        check_flow(w, inv, early, cw, namespace, None, "within 60 s of the load (not re-read: unresolved)")

    time.sleep(max(0.0, REFRESH_S + 1.5 - (time.monotonic() - loaded_at)))
    start = flowgen.minute_ago(10) + 5
    late = flow_batch(200, [Part(api.ip, start, 5353, api_wl)])
    mark = proxy.mark()
    inv = invoke(w, late.event)
    reqs = proxy.since(mark)
    queried = set().union(*(buckets_of(r) for r in reqs)) if reqs else set()
    record_measurement("inventory_warm_reread", {"requests": ddb_ops(reqs), "buckets": sorted(queried)})
    check_flow(w, inv, late, cw, namespace, second, f"{REFRESH_S} s after the load (re-read: named)")
    assert f"h#{int(second.claim_s) // 3600}" in queried, f"the re-read did not query the new claim's bucket: {sorted(queried)}"


def test_late_inventory_leaves_the_flow_unresolved_and_counted(start_bootstrap, cw, namespace, dynamodb, ddb,
                                                               inventory_table):
    """The flow batch comes first (the audit batch that names it is late): all its bytes are
    NatUnresolvedBytes and [(unresolved), Unresolved], none dropped. Then the audit batch; then a
    later flow batch: records after the claim are named, a record from before it (resolved at its
    own start) is not."""
    cl = cluster(minutes_ago=15)
    c = start_bootstrap(inv_env(namespace, inventory_table, dynamodb), name="c")
    start1 = flowgen.minute_ago(10) + 5
    f1 = flow_batch(0, [Part(cl.pod.ip, start1, 336781, UNRESOLVED), Part(cl.pod.ip, start1, 120000, UNRESOLVED),
                        Part(cl.node.ip, start1, 98304, UNRESOLVED)])
    assert start1 > cl.claim_s + 1, "the first batch's records come after the claim it has not seen yet"
    inv = invoke(c, f1.event)
    r = check_flow(c, inv, f1, cw, namespace, cl, "the flow batch before its inventory")
    assert r["identity"] == {"resolved_bytes": 0, "node_bytes": 0, "unresolved_bytes": f1.total}

    inv = invoke(c, ag.audit_event(cl.events, stream=cl.stream))
    check_audit_response(c, inv, cl.stream, 3, 3, what="the late audit batch")
    check_items(ddb, inventory_table, cl.events, what="after the late audit batch")

    start2 = flowgen.minute_ago(9) + 5
    # the pod's address half a minute before the pod had it (its bytes above the default 5 % share
    # floor of NATMETER_MIN_SOURCE_SHARE, so it keeps its own series instead of `other`)
    before = int(cl.claim_s) - 30
    f2 = flow_batch(100, [Part(cl.pod.ip, start2, 336781, POD_WL), Part(cl.pod.ip, start2, 120000, POD_WL),
                          Part(cl.node.ip, start2, 98304, NODE_WL), Part(cl.pod.ip, before, 65536, UNRESOLVED)])
    inv = invoke(c, f2.event)
    check_flow(c, inv, f2, cw, namespace, cl, "the flow batch after its inventory")
    # the first batch's minute still holds what it was given: counted once, unresolved
    check_minute_metrics(MetricsReader(cw, namespace, start1 // 60 * 60, start1 // 60 * 60 + 60), f1,
                         start1 // 60 * 60, "the first batch's minute afterwards")
    assert c.alive()


def test_audit_batches_are_idempotent(start_bootstrap, namespace, dynamodb, ddb, inventory_table):
    """The same audit events twice (another batch of them on the same container, the same event on a
    new container) leave the same items; irrelevant events are read but not stored, a message that
    is not an audit event is counted and logged. NATMETER_INVENTORY_RETENTION_HOURS sets the TTL."""
    cl = cluster(minutes_ago=20)
    t = us(cl.claim_s) + 1_000_000
    junk = "kube-apiserver: I1201 00:03:12.351234 this is not an audit event"
    evs = cl.events + [ag.pod_get(t, cl.pod), ag.configmap_update(t + 1_000), junk]
    payload = ag.audit_payload(evs, stream=cl.stream)
    event = encode_payload(payload)
    env = inv_env(namespace, inventory_table, dynamodb, NATMETER_INVENTORY_RETENTION_HOURS="2")

    a = start_bootstrap(env, name="a")
    inv = invoke(a, event)
    check_audit_response(a, inv, cl.stream, events=6, written=3, errors=1, what="the first delivery")
    first = check_items(ddb, inventory_table, evs, retention_hours=2, what="after the first delivery")
    bad_id = payload["logEvents"][-1]["id"]
    logged = [l for l in json_lines(a.stderr_text_of(inv)) if l.get("level") in ("WARN", "ERROR")]
    assert logged, f"the message that is not an audit event was not logged: {a.stderr_text_of(inv)[-1500:]}"
    assert any(bad_id in json.dumps(l) or "audit" in json.dumps(l).lower() for l in logged), \
        f"no warning names the bad log event {bad_id} or the audit batch: {logged}"

    again = ag.reordered_copy(payload, id_base=100)
    inv = invoke(a, encode_payload(again))
    check_audit_response(a, inv, cl.stream, events=6, written={0, 3}, errors=1,
                         what="the same events again in another batch (same container)")
    assert scan_items(ddb, inventory_table) == first, "a second delivery of the same events changed the table"

    b = start_bootstrap(env, name="b")
    inv = invoke(b, event)
    check_audit_response(b, inv, cl.stream, events=6, written={0, 3}, errors=1,
                         what="the same event on a new container (Lambda's retry elsewhere)")
    assert scan_items(ddb, inventory_table) == first, "a retry on another container changed the table"


def test_workloads_beyond_max_sources_are_other(start_bootstrap, cw, namespace, dynamodb, inventory_table):
    """With NATMETER_MAX_SOURCES=1 the largest workload keeps its series and the rest is `other`
    (sums exact); NatNodeBytes still counts the node's bytes."""
    cl = cluster(minutes_ago=20)
    b = start_bootstrap(inv_env(namespace, inventory_table, dynamodb, NATMETER_MAX_SOURCES="1",
                                NATMETER_MIN_SOURCE_SHARE="0"), name="capped")
    check_audit_response(b, invoke(b, ag.audit_event(cl.events, stream=cl.stream)), cl.stream, 3, 3)
    fb = named_batch(cl, minutes_ago=10, id_base=0)
    inv = invoke(b, fb.event)
    assert inv.kind == "response" and inv.json().get("identity") == fb.identity(), _fail_text(b, inv)
    m = fb.minutes()[0]
    r = MetricsReader(cw, namespace, m, m + 60)
    wl = _nonzero(r.by_dimensions("NatBytes", ["Namespace", "Workload"]))
    assert wl == {POD_WL: 456781, ("other", "other"): 98304}, wl
    ns = _nonzero(r.by_dimensions("NatBytes", ["Namespace"]))
    assert ns == {("shop",): 456781, ("other",): 98304}, ns
    assert r.value("NatNodeBytes") == 98304


def test_throttled_table_fails_the_invocations_and_the_retries_lose_nothing(
        start_bootstrap, cw, namespace, dynamodb, ddb, inventory_table, fault_proxy, localstack, record_measurement):
    """DynamoDB throttles every request (after the SDK's own retries): the audit invocation fails with
    natmeter.InventoryNotStored and writes nothing; a cold flow invocation fails with
    natmeter.InventoryUnavailable and publishes nothing. Throttling stops; Lambda's retries of the
    same events succeed: every item is stored and the metrics are published once, named."""
    cl = cluster(minutes_ago=20)
    ddb_proxy = fault_proxy(upstream=dynamodb)
    cw_proxy = fault_proxy(upstream=localstack)  # healthy: only to see what is published
    ddb_proxy.always("ddb_throttle")
    audit = ag.audit_event(cl.events, stream=cl.stream)
    fb = named_batch(cl, minutes_ago=10, id_base=0)
    env = inv_env(namespace, inventory_table, ddb_proxy.url)
    a = start_bootstrap(env, name="audit", endpoint=cw_proxy.url)
    f = start_bootstrap(env, name="flow", endpoint=cw_proxy.url)

    inv = invoke(a, audit, deadline_s=60)
    check_error(a, inv, "natmeter.InventoryNotStored", "the audit batch while the table throttles")
    thr_audit = ddb_proxy.since(0)
    assert thr_audit and all(r.outcome == "ddb_throttle" for r in thr_audit), ddb_ops(thr_audit)
    assert scan_items(ddb, inventory_table) == [], "a throttled write reached the table"

    mark, mark_cw = ddb_proxy.mark(), cw_proxy.mark()
    inv = invoke(f, fb.event, deadline_s=60)
    check_error(f, inv, "natmeter.InventoryUnavailable", "a cold flow batch while the table throttles")
    thr_flow = ddb_proxy.since(mark)
    assert thr_flow, "the cold flow invocation failed without asking the table"
    assert cw_proxy.since(mark_cw) == [], \
        f"the flow invocation published while the inventory was unavailable: {[r.summary() for r in cw_proxy.since(mark_cw)]}"
    nat = [m for m in MetricsReader(cw, namespace, 0, 60).list_metrics() if m["MetricName"].startswith("Nat")]
    assert nat == [], f"NAT metrics in CloudWatch while the inventory was unavailable: {nat[:5]}"
    assert details(f, inv) == [] and not [l for l in f.stdout_json_of(inv) if "_aws" in l], \
        "detail or EMF lines printed by the failed invocation"
    record_measurement("inventory_throttled", {
        "audit_requests": len(thr_audit), "audit_ops": sorted(set(ddb_ops(thr_audit))),
        "flow_requests": len(thr_flow), "flow_ops": sorted(set(ddb_ops(thr_flow))),
        "max_attempt": max(r.attempt for r in thr_audit + thr_flow)})

    ddb_proxy.healthy()
    inv = invoke(a, audit)
    check_audit_response(a, inv, cl.stream, 3, 3, what="the audit batch's retry")
    check_items(ddb, inventory_table, cl.events, what="after the retry")

    mark_cw = cw_proxy.mark()
    inv = invoke(f, fb.event)
    check_flow(f, inv, fb, cw, namespace, cl, "the flow batch's retry")
    puts = [r for r in cw_proxy.since(mark_cw) if r.operation == "PutMetricData"]
    assert puts and all(r.forwarded_ok for r in puts), [r.summary() for r in puts]
    datums = [d for r in puts for d in r.datums()]
    assert len(datums) == len(set(datums)), "a datum was sent twice"
    assert MetricsReader(cw, namespace, fb.minutes()[0], fb.minutes()[0] + 60).value("NatBytes") == fb.total, \
        "NatBytes [] after the retries is not the batch's bytes once"
