"""The dashboard body, as Terraform would render it, is valid JSON that
CloudWatch accepts and that lays out cleanly.

Limits, from CloudWatch's "Dashboard body structure and syntax" (API reference)
and "CloudWatch service quotas": a body holds 0 to 500 widgets (older revisions
said 100; the lower number is checked); a dashboard name is at most 255 of
A-Z a-z 0-9 - _; the grid is 24 columns wide, a widget 1-24 wide and 1-1000
high; up to 500 metrics per widget and 2,500 per dashboard, counting metrics
only used by math; one Metrics Insights query per GetMetricData request, so
one per widget; query ids start with a lower-case letter. PutDashboard
documents no byte limit for DashboardBody; 1 MB is kept as a sanity ceiling
and the actual size is tiny (see test output).
"""

from __future__ import annotations

import json
import re

import cwsyntax as cw

WIDGET_TYPES = {"metric", "text", "log", "alarm"}


def body(ev) -> tuple[str, dict]:
    inst = ev.instances("aws_cloudwatch_dashboard", "this")[0]
    return inst["dashboard_name"], inst["dashboard_body"]


def test_body_is_json_within_limits(scenario):
    name, ev = scenario
    dashboard_name, text = body(ev)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", dashboard_name), dashboard_name
    assert len(text.encode()) < 1_000_000, f"{name}: dashboard body is {len(text)} bytes"
    doc = json.loads(text)
    assert isinstance(doc["widgets"], list) and 0 < len(doc["widgets"]) <= 100
    assert doc.get("periodOverride") in ("auto", "inherit")
    assert re.fullmatch(r"-P(T\d+[HMS]|\d+[DW])", doc["start"]), doc["start"]


def test_widgets_are_well_formed(scenario):
    name, ev = scenario
    doc = json.loads(body(ev)[1])
    total_metrics = 0
    for i, w in enumerate(doc["widgets"]):
        where = f"{name}: widget {i} ({w.get('properties', {}).get('title', w['type'])!r})"
        assert w["type"] in WIDGET_TYPES, where
        assert isinstance(w["x"], int) and isinstance(w["y"], int), where
        assert 1 <= w["width"] <= 24 and 1 <= w["height"] <= 1000, where
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24 and w["y"] >= 0, f"{where} leaves the 24-column grid"
        props = w["properties"]
        if w["type"] == "text":
            assert props["markdown"].strip(), where
            continue
        assert props["title"], where
        if w["type"] == "alarm":
            assert 1 <= len(props["alarms"]) <= 100, where
            continue
        assert props["region"] == "us-east-1", f"{where}: metric and log widgets need a region"
        if w["type"] == "log":
            assert props["query"].startswith("SOURCE '"), where
            assert props.get("view", "table") in ("table", "timeSeries", "bar", "pie"), where
            continue
        assert props.get("view", "timeSeries") in ("timeSeries", "singleValue", "gauge", "bar", "pie", "table"), where
        if "insightRule" in props:
            rule = props["insightRule"]
            assert 1 <= rule["maxContributorCount"] <= 100 and rule["orderBy"] in ("Sum", "Maximum"), where
            assert "metrics" not in props, f"{where}: a Contributor Insights widget holds the rule only"
            continue
        q = cw.widget_queries(where, props)
        assert 1 <= q.entries <= 500, f"{where}: {q.entries} metrics (at most 500 per widget)"
        total_metrics += q.entries
        assert q.metrics_insights <= 1, f"{where}: one Metrics Insights query per widget (one per GetMetricData)"
        assert len(q.ids) == len(set(q.ids)), f"{where}: duplicate ids {q.ids}"
        for id_ in q.ids:
            assert re.fullmatch(r"[a-z][a-zA-Z0-9_]*", id_), f"{where}: id {id_!r} must start with a lower-case letter"
        for e in q.expressions:
            if cw.is_metrics_insights(e.text) or e.text.startswith("SEARCH("):
                continue
            ids, functions = cw.math_tokens(e.text)
            assert ids <= set(q.ids), f"{where}: expression {e.id} refers to undefined ids {sorted(ids - set(q.ids))}"
            assert e.id not in ids, f"{where}: expression {e.id} refers to itself"
            unknown = functions - cw.METRIC_MATH_FUNCTIONS
            assert not unknown, f"{where}: unknown metric math functions {sorted(unknown)}"
        visible = [
            entry for entry in props["metrics"] if not (isinstance(entry[-1], dict) and entry[-1].get("visible") is False)
        ]
        assert visible, f"{where}: nothing visible"
    assert total_metrics <= 2500, f"{name}: {total_metrics} metrics (at most 2,500 per dashboard)"


def test_widgets_do_not_overlap(scenario):
    name, ev = scenario
    cells: dict[tuple[int, int], int] = {}
    for i, w in enumerate(json.loads(body(ev)[1])["widgets"]):
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, f"{name}: widgets {cells[(x, y)]} and {i} overlap at ({x}, {y})"
                cells[(x, y)] = i


def test_alarm_widget_shows_every_alarm(scenario):
    name, ev = scenario
    (alarm_widget,) = [w for w in json.loads(body(ev)[1])["widgets"] if w["type"] == "alarm"]
    shown = alarm_widget["properties"]["alarms"]
    expected = []
    for t, n in sorted(ev.config.resources):
        if t == "aws_cloudwatch_metric_alarm":
            count = ev.count_of(ev.config.resources[(t, n)])
            expected += [f"{t}.{n}.arn"] if count is None else [f"{t}.{n}[{i}].arn" for i in range(count)]
    placeholders = sorted(s.removeprefix("<known after apply: ").removesuffix(">") for s in shown)
    assert placeholders == sorted(expected)


def test_insight_rule_widgets_name_the_module_rules(scenario):
    name, ev = scenario
    rules = {
        ev.instances("aws_cloudwatch_contributor_insight_rule", n)[0]["rule_name"]
        for t, n in ev.config.resources
        if t == "aws_cloudwatch_contributor_insight_rule"
    }
    shown = {
        w["properties"]["insightRule"]["ruleName"]
        for w in json.loads(body(ev)[1])["widgets"]
        if "insightRule" in w.get("properties", {})
    }
    assert shown == rules


def test_coverage_widget_has_one_ratio_per_gateway(scenario):
    name, ev = scenario
    (w,) = [w for w in json.loads(body(ev)[1])["widgets"] if w["properties"].get("title", "").startswith("Coverage")]
    labels = [e[-1]["label"] for e in w["properties"]["metrics"] if "expression" in e[-1]]
    assert labels == ev.variables["nat_gateway_ids"]
