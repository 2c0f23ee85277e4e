"""The subscription filter passes only records of the NAT gateway ENIs.

CloudWatch Logs' filter pattern syntax for space-delimited events (user guide,
"Filter pattern syntax"): the pattern names the fields in order inside
[ ], a field may carry a condition, string conditions take = or != with an
optional quoted value, and conditions on one field combine with || and &&
(the guide's example: [w1=ERROR || w1=WARN, w2]). Without "..." the pattern
matches only lines with exactly that many fields. PutSubscriptionFilter takes
at most 1024 characters. The matcher below implements just that much of the
syntax, to check that the condition sits on the interface-id position of the
configured format.
"""

from __future__ import annotations

import re

import pytest

from tfsupport import SCENARIOS, SEED_FORMAT, evaluator, nat_ids


def parse_pattern(pattern: str) -> list[tuple[str, set[str] | None]]:
    assert pattern.startswith("[") and pattern.endswith("]"), pattern
    out = []
    for element in pattern[1:-1].split(", "):
        if "=" not in element:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", element), f"field name {element!r}"
            out.append((element, None))
            continue
        names, values = set(), set()
        for alt in element.split(" || "):
            m = re.fullmatch(r'([a-z][a-z0-9_]*) = "([^"*]+)"', alt)
            assert m, f"condition {alt!r}"
            names.add(m.group(1))
            values.add(m.group(2))
        assert len(names) == 1, f"one field per condition: {element!r}"
        out.append((names.pop(), values))
    return out


def matches(pattern: str, line: str) -> bool:
    if pattern == "":
        return True
    fields = parse_pattern(pattern)
    tokens = line.split()
    if len(tokens) != len(fields):
        return False
    return all(values is None or tok in values for (name, values), tok in zip(fields, tokens))


def record(fields: list[str], eni: str, status: str = "OK") -> str:
    values = {"interface-id": eni, "srcaddr": "10.0.37.171", "dstaddr": "10.0.0.175", "bytes": "1500", "log-status": status}
    if status == "NODATA":
        values.update(srcaddr="-", dstaddr="-", bytes="-")
    return " ".join(values.get(f, "x") for f in fields)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_pattern_passes_nat_eni_records_only(name):
    ev = evaluator(SCENARIOS[name])
    fields = ev.local("log_format_fields")
    enis = ev.local("nat_enis")
    full = ev.local("nat_eni_filter_pattern")
    pattern = ev.local("filter_pattern")
    assert ev.instances("aws_cloudwatch_log_subscription_filter", "flow_logs")[0]["filter_pattern"] == pattern
    if len(full) > 1024:
        assert pattern == "", "over the 1024-character limit the module must fall back to every record"
        return
    assert pattern == full
    parsed = parse_pattern(pattern)
    assert [n for n, _ in parsed] == [f.replace("-", "_") for f in fields]
    conditioned = [(n, v) for n, v in parsed if v is not None]
    assert conditioned == [("interface_id", set(enis))]
    for eni in enis:
        assert matches(pattern, record(fields, eni))
        assert matches(pattern, record(fields, eni, "NODATA"))
    assert not matches(pattern, record(fields, "eni-0ffffffffffffffff"))
    assert not matches(pattern, record(fields, enis[0]) + " extra")


def test_pattern_for_the_seed_format_and_three_gateways():
    ev = evaluator(SCENARIOS["vpc_flow_log_3_nats"])
    assert ev.local("filter_pattern").startswith(
        '[region, vpc_id, az_id, subnet_id, instance_id, interface_id = "eni-'
    )
    assert ev.local("filter_pattern").endswith(", traffic_path, packets, bytes, action]")


@pytest.mark.parametrize("fmt,expect_fit", [(SEED_FORMAT, 19), (None, 20)])
def test_how_many_gateways_fit(fmt, expect_fit):
    """The README states these numbers; keep them true."""
    fits = 0
    for n in range(1, 21):
        variables = dict(SCENARIOS["default_format_20_nats"], nat_gateway_ids=nat_ids(n))
        if fmt:
            variables["flow_log_format"] = fmt
        ev = evaluator(variables)
        if ev.local("filter_pattern"):
            fits = n
    assert fits == expect_fit


def test_pattern_over_1024_characters_passes_every_record():
    variables = dict(SCENARIOS["vpc_flow_log_3_nats"], nat_gateway_ids=nat_ids(20))
    ev = evaluator(variables)
    assert len(ev.local("nat_eni_filter_pattern")) > 1024
    assert ev.local("filter_pattern") == ""


def test_format_without_interface_id_passes_every_record():
    variables = dict(SCENARIOS["vpc_flow_log_3_nats"], flow_log_format="${srcaddr} ${dstaddr} ${packets} ${bytes}")
    assert evaluator(variables).local("filter_pattern") == ""
