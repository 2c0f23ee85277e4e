"""The subscription filter passes only records of the NAT gateway ENIs, with a
pattern that makes CloudWatch Logs extract no fields.

CloudWatch Logs filter pattern syntax (user guide, "Filter pattern syntax for
metric filters, subscription filters, filter log events, and Live Tail",
matching terms in unstructured log events): terms are case sensitive; exact
phrases and terms with characters other than letters and digits go in double
quotes; a question mark before each term matches events that contain any of
them (?ERROR ?ARGUMENTS), and combined with other terms the question marks are
ignored. A term matches anywhere in the message. A space-delimited pattern
([f1, f2 = x, ...]) instead names the fields of a line, and CloudWatch then adds
them to every delivered event as extractedFields. PutSubscriptionFilter takes
at most 1024 characters of pattern.

The matcher below implements the term-OR form only, and refuses anything else.
"""

from __future__ import annotations

import re

import pytest

from tfsupport import MODULE, SCENARIOS, SEED_FORMAT, eni_of, evaluator, nat_ids

# Every ENI costs ?"eni-" + 17 hex digits + " = 24 characters, plus one space
# between terms: 41 ENIs make 1,024 characters. The README states this number.
MAX_ENIS = 41
TERM = re.compile(r'\?"([^"\\]+)"')


def parse_term_or(pattern: str) -> list[str]:
    """The quoted terms of a pattern of the form ?"a" ?"b" ..., and nothing else."""
    terms = pattern.split(" ")
    out = []
    for t in terms:
        m = TERM.fullmatch(t)
        assert m, f"not a ?\"term\": {t!r} in {pattern!r}"
        out.append(m.group(1))
    assert " ".join(f'?"{x}"' for x in out) == pattern, "single spaces between terms"
    return out


def matches(pattern: str, message: str) -> bool:
    if pattern == "":
        return True
    return any(term in message for term in parse_term_or(pattern))


def record(fields: list[str], eni: str, status: str = "OK") -> str:
    values = {"interface-id": eni, "srcaddr": "10.0.37.171", "dstaddr": "10.0.0.175", "bytes": "1500", "log-status": status}
    if status == "NODATA":
        values.update(srcaddr="-", dstaddr="-", bytes="-")
    return " ".join(values.get(f, "x") for f in fields)


def pattern_for(n: int, **overrides) -> str:
    """The module's pattern for n gateways (the variable validations, which
    stop at 20, are not applied: this is about the expression)."""
    variables = dict(SCENARIOS["default_format_20_nats"], nat_gateway_ids=nat_ids(n), **overrides)
    return evaluator(variables).local("filter_pattern")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_pattern_passes_nat_eni_records_only(name):
    ev = evaluator(SCENARIOS[name])
    fields = ev.local("log_format_fields")
    enis = ev.local("nat_enis")
    pattern = ev.local("filter_pattern")
    assert ev.instances("aws_cloudwatch_log_subscription_filter", "flow_logs")[0]["filter_pattern"] == pattern
    assert "[" not in pattern and "{" not in pattern, f"a space-delimited or JSON pattern makes CloudWatch extract fields: {pattern!r}"
    if ev.variables["create_nat_flow_logs"]:
        assert pattern == "", "the dedicated NAT flow log group holds NAT ENIs only: every record is wanted"
        return
    assert sorted(parse_term_or(pattern)) == sorted(enis)
    assert len(pattern) <= 1024
    for eni in enis:
        assert matches(pattern, record(fields, eni))
        assert matches(pattern, record(fields, eni, "NODATA"))
    assert not matches(pattern, record(fields, "eni-0ffffffffffffffff"))
    assert not matches(pattern, record(fields, eni_of("nat-000000000000000ff")))


@pytest.mark.parametrize("n", [1, 20, MAX_ENIS])
def test_pattern_length_for_1_20_and_the_maximum_number_of_gateways(n):
    """1 gateway, the 20 the module accepts, and the most that fit (41)."""
    for fmt in (None, SEED_FORMAT):
        pattern = pattern_for(n, **({"flow_log_format": fmt} if fmt else {}))
        assert pattern, f"{n} ENIs must fit in 1024 characters"
        assert len(pattern) == 24 * n + (n - 1), "each ENI is ?\"eni-<17 hex>\" plus a space"
        assert len(pattern) <= 1024
        assert "[" not in pattern and "]" not in pattern and "=" not in pattern and "||" not in pattern
        assert parse_term_or(pattern) == [eni_of(i) for i in nat_ids(n)]


def test_the_maximum_is_41_and_42_falls_back_to_every_record():
    fits = [n for n in range(1, 50) if pattern_for(n)]
    assert fits == list(range(1, MAX_ENIS + 1)), f"gateways whose ENIs fit: {fits}"
    assert len(pattern_for(MAX_ENIS)) == 1024
    assert pattern_for(MAX_ENIS + 1) == ""


def test_readme_states_the_maximum_and_cites_the_syntax():
    text = (MODULE / "README.md").read_text()
    assert f"{MAX_ENIS} ENIs" in text
    assert "?ERROR ?ARGUMENTS" in text or "?\"eni-" in text
    assert "FilterAndPatternSyntax" in text, "cite the CloudWatch Logs filter pattern syntax page"


def test_format_without_interface_id_passes_every_record():
    variables = dict(SCENARIOS["vpc_flow_log_3_nats"], flow_log_format="${srcaddr} ${dstaddr} ${packets} ${bytes}")
    assert evaluator(variables).local("filter_pattern") == ""


def test_dedicated_flow_logs_pass_every_record_even_with_few_gateways():
    variables = dict(SCENARIOS["vpc_flow_log_3_nats"], flow_log_group_name=None, create_nat_flow_logs=True)
    ev = evaluator(variables)
    assert ev.local("nat_eni_filter_pattern"), "the ENI pattern exists..."
    assert ev.local("filter_pattern") == "", "...but the dedicated group needs none"
