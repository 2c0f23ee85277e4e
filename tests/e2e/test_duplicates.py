"""Duplicate delivery (issue 6 section 4): Lambda may invoke the function twice with the same event.

The mitigation (crates/lambda/src/recent.rs, crates/lambda/src/lib.rs): each warm container keeps
the keys of the last 1024 batches it published successfully; an exact repeat is answered
{"batch":"duplicate"} and emits nothing. It cannot see a repeat that lands on another container
(a concurrent one, or a new one after a cold start), nor a copy of a batch encoded differently:
those are counted again, which is the documented bounded double count.
"""

from __future__ import annotations


import flowgen
from bootstrap_proc import json_lines
from lambda_events import control_message_event, decode_event, encode_payload

SIM = dict(seed=41, pods=24, nodes=3, nat_gateways=2, minutes=2, external_snat=True, scope="nat-enis")
RECENT_BATCHES = 1024  # crates/lambda/src/lib.rs


def _total(sim, cw, namespace) -> float:
    return sim.reader(cw, namespace).value("NatBytes", unit="Bytes")


def test_repeat_on_a_warm_container_is_skipped_and_a_cold_container_counts_it_again(
        simulate, start_bootstrap, cw, namespace, fault_proxy):
    """Same events twice on one warm bootstrap: the second delivery of each answers
    {"batch":"duplicate"}, sends nothing, prints nothing, and CloudWatch holds the truth once.

    The same events delivered again to a second, fresh bootstrap process (a cold container, or a
    concurrent one) are processed normally and the totals double. This is the documented bounded
    double count: a duplicate that reaches a container other than the one that published the batch
    is counted again (at most once per extra container that receives it; Lambda's duplicate
    deliveries are rare, and each batch covers about a minute of one NAT ENI)."""
    sim = simulate(**SIM)
    truth = sim.truth["totals"]["bytes"]
    proxy = fault_proxy()  # healthy: only to see what is sent
    warm = start_bootstrap(sim.env(namespace), name="warm", endpoint=proxy.url)
    first = [warm.invoke_detail(p.read_bytes(), timeout_s=60) for p in sim.events]
    assert all(i.kind == "response" and i.json()["batch"] == "data" for i in first), \
        [i.text()[:200] for i in first]
    assert _total(sim, cw, namespace) == truth

    mark = proxy.mark()
    again = [warm.invoke_detail(p.read_bytes(), timeout_s=60) for p in sim.events]
    for i in again:
        assert i.kind == "response", f"a duplicate delivery must be acknowledged, got {i.kind}: {i.text()[:300]}"
        assert i.json() == {"batch": "duplicate"}, f"second delivery on the warm container: {i.text()[:300]}"
        assert warm.stdout_json_of(i) == [], "a duplicate printed metric/detail lines"
        warns = [l for l in json_lines(warm.stderr_text_of(i)) if "duplicate delivery" in l.get("message", "")]
        assert len(warns) == 1, "no (or several) duplicate-delivery warning logged"
    assert proxy.since(mark) == [], "a duplicate delivery sent PutMetricData requests"
    assert _total(sim, cw, namespace) == truth, "duplicate delivery on a warm container double counted"

    # CONTROL_MESSAGE is never a "duplicate": it is acknowledged as control each time
    for _ in range(2):
        c = warm.invoke_detail(control_message_event(), timeout_s=30)
        assert c.kind == "response" and c.json().get("batch") == "control", c.text()[:200]

    cold = start_bootstrap(sim.env(namespace), name="cold", endpoint=proxy.url)
    third = [cold.invoke_detail(p.read_bytes(), timeout_s=60) for p in sim.events]
    assert all(i.kind == "response" and i.json()["batch"] == "data" for i in third), \
        "a fresh container must process a batch it has not seen (it cannot know another container did)"
    assert _total(sim, cw, namespace) == 2 * truth, \
        "the documented bounded double count: a repeat on another container is counted again"
    assert warm.alive() and cold.alive()


def test_reencoded_copy_is_not_recognised(simulate, start_bootstrap, cw, namespace):
    """Only an exact repeat is recognised (the key is taken from the base64 data): the same payload
    gzipped at another level is a different batch to the cache and is counted again. Lambda's own
    duplicate deliveries are byte-identical, so this only matters for replays that re-encode."""
    sim = simulate(**SIM)
    b = start_bootstrap(sim.env(namespace))
    path = sim.nat_eni_events()[0]
    inv = b.invoke_detail(path.read_bytes(), timeout_s=60)
    assert inv.kind == "response" and inv.json()["batch"] == "data"
    once = inv.json()["bytes"]
    reenc = encode_payload(decode_event(path.read_bytes()))  # default gzip level, compact JSON
    assert reenc != path.read_bytes()
    inv2 = b.invoke_detail(reenc, timeout_s=60)
    assert inv2.kind == "response" and inv2.json()["batch"] == "data", inv2.text()[:300]
    assert _total(sim, cw, namespace) == 2 * once


def test_cache_remembers_exactly_the_last_1024_published_batches(start_bootstrap, namespace):
    """A repeat after 1023 other batches is still skipped; after 1024 others it is processed again.
    (EMF sink: nothing is sent, so 2,000+ invocations take seconds.)"""
    b = start_bootstrap(flowgen.env(namespace, NATMETER_SINK="emf"))
    a = flowgen.good_event(1, id_base=10 ** 9)

    def invoke(ev):
        inv = b.api.invoke_detail(ev, timeout_s=30, alive=b.alive)
        assert inv.kind == "response", inv.text()[:300]
        return inv.json()

    assert invoke(a)["batch"] == "data"
    for i in range(RECENT_BATCHES - 1):
        assert invoke(flowgen.good_event(1, id_base=i))["batch"] == "data"
    assert invoke(a) == {"batch": "duplicate"}, f"A was published {RECENT_BATCHES - 1} batches ago: still remembered"
    assert invoke(flowgen.good_event(1, id_base=RECENT_BATCHES))["batch"] == "data"
    r = invoke(a)
    assert r["batch"] == "data", f"A is now {RECENT_BATCHES} batches old and must be forgotten: {r}"
    assert b.alive()
