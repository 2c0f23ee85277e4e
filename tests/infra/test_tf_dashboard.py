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

What the widgets mean (issue 11): periodOverride "inherit" makes CloudWatch
obey each graph's own period ("auto" replaces it with one that adapts to the
time range); a metric widget's "timezone" is "+HHMM", "+0000" being UTC; a
metric widget may carry its own "start" (a relative -P... range) independent
of the dashboard's; GetMetricData rounds a start time between 15 and 63 days
ago down to a 5-minute clock interval (less than 15 days ago: to the minute)
and returns at most 100,800 datapoints per call by default; Metrics Insights
queries the most recent two weeks only.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import random
import re

import pytest

import cwsyntax as cw
from tfsupport import SCENARIOS, evaluator

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
    assert doc.get("periodOverride") == "inherit", "every graph keeps its own period (\"auto\" would replace it)"
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
        if t != "aws_cloudwatch_metric_alarm":
            continue
        scopes = ev.instance_scopes(ev.config.resources[(t, n)])
        if scopes is None:
            expected.append(f"{t}.{n}.arn")
        elif "for_each" in ev.config.resources[(t, n)].attributes:
            expected += [f"{t}.{n}[{k!r}].arn" for k, _ in scopes]
        else:
            expected += [f"{t}.{n}[{k}].arn" for k, _ in scopes]
    placeholders = sorted(s.removeprefix("<known after apply: ").removesuffix(">") for s in shown)
    assert placeholders == sorted(expected)
    assert len(shown) == len(set(shown)) and 1 <= len(shown) <= 100


def test_disabled_alarms_are_not_created_and_the_widget_goes_with_the_last():
    keys = evaluator(SCENARIOS["vpc_flow_log_3_nats"]).local("alarm_keys")
    some_off = dict(SCENARIOS["vpc_flow_log_3_nats"], alarm_enabled={"coverage": False, "daily_cost": False})
    ev = evaluator(some_off)
    names = [a["alarm_name"] for t, n in ev.config.resources if t == "aws_cloudwatch_metric_alarm" for a in ev.instances(t, n)]
    assert not [n for n in names if "coverage" in n or n.endswith("nat-cost-24h")], names
    # failed_objects exists on the S3 path only (test_tf_s3.py).
    assert len(names) == (len(keys) - 4) + 3, "8 single alarms left, and 3 gateways with one silent-failure alarm each, no coverage alarm"
    all_off = dict(SCENARIOS["vpc_flow_log_3_nats"], alarm_enabled={k: False for k in keys})
    ev = evaluator(all_off)
    assert not [a for t, n in ev.config.resources if t == "aws_cloudwatch_metric_alarm" for a in ev.instances(t, n)]
    doc = json.loads(body(ev)[1])
    assert not [w for w in doc["widgets"] if w["type"] == "alarm"], "an alarm widget needs at least one alarm"


def test_insight_rule_widgets_name_the_module_rules(scenario):
    name, ev = scenario
    rules = {
        inst["rule_name"]
        for t, n in ev.config.resources
        if t == "aws_cloudwatch_contributor_insight_rule"
        for inst in ev.instances(t, n)  # none for a rule whose count is 0
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


# ---------------------------------------------------------------------------
# Periods, ranges and time zone
# ---------------------------------------------------------------------------

MAX_DATAPOINTS = 100_800  # GetMetricData, per call (its MaxDatapoints default)


def iso_seconds(start: str) -> int:
    m = re.fullmatch(r"-P(?:(\d+)D|T(\d+)H|T(\d+)M|(\d+)W)", start)
    assert m, start
    d, h, mi, w = (int(x) if x else 0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + w * 7 * 86400


def metric_widgets(ev):
    return [w for w in json.loads(body(ev)[1])["widgets"] if w["type"] == "metric"]


def test_every_metric_widget_keeps_its_own_period_in_utc(scenario):
    name, ev = scenario
    for w in metric_widgets(ev):
        p = w["properties"]
        where = f"{name}: {p['title']!r}"
        assert p.get("timezone") == "+0000", f"{where}: times are stated in UTC, so the widget must show UTC"
        if p.get("setPeriodToTimeRange"):
            continue
        assert isinstance(p.get("period"), int) and p["period"] % 60 == 0, f"{where}: an explicit period (multiple of 60)"
        for entry in p.get("metrics", []):
            opts = entry[-1] if isinstance(entry[-1], dict) else {}
            if "period" in opts:
                assert opts["period"] == p["period"], f"{where}: an entry's period differs from the widget's"
        title = p["title"].lower()
        if "per hour" in title:
            assert p["period"] == 3600, f"{where} says per hour"
        if "per 5 minutes" in title:
            assert p["period"] == 300, where
        if "per 15 minutes" in title:
            assert p["period"] == 900, where


def test_metrics_insights_widgets_say_they_cover_two_weeks_at_most(scenario):
    name, ev = scenario
    for w in metric_widgets(ev):
        p = w["properties"]
        q = cw.widget_queries(p["title"], p)
        if q.metrics_insights:
            assert "2 weeks" in p["title"], f"{name}: {p['title']!r} uses Metrics Insights, which covers the last two weeks only"
    assert iso_seconds(json.loads(body(ev)[1])["start"]) <= 14 * 86400, "the default range stays within Metrics Insights' two weeks"


def test_today_and_this_month_have_their_own_aligned_ranges(scenario):
    name, ev = scenario
    widgets = {w["properties"]["title"]: w["properties"] for w in metric_widgets(ev)}
    today = next(p for t, p in widgets.items() if t.startswith("NAT cost today"))
    month = next(p for t, p in widgets.items() if t.startswith("NAT cost this month"))
    for p, at_least in ((today, 86400), (month, 31 * 86400)):
        span = iso_seconds(p["start"])
        assert span >= at_least, f"{p['title']!r}: the range must reach back to midnight / the 1st"
        # Rounded down to a 5-minute clock interval only between 15 and 63 days ago.
        assert 15 * 86400 < span < 63 * 86400, f"{p['title']!r}: start {p['start']} is not rounded to 5 minutes"
        assert p["period"] == 300 and 86400 % p["period"] == 0
        assert "UTC" in p["title"]


def test_widgets_stay_within_getmetricdata_datapoints(scenario):
    name, ev = scenario
    default = iso_seconds(json.loads(body(ev)[1])["start"])
    for w in metric_widgets(ev):
        p = w["properties"]
        if "insightRule" in p or p.get("setPeriodToTimeRange"):
            continue
        q = cw.widget_queries(p["title"], p)
        if q.metrics_insights or any(e.text.startswith("SEARCH(") for e in q.expressions):
            continue  # series counts known only at query time
        points = iso_seconds(p.get("start", "")) if "start" in p else default
        total = q.entries * (points // p["period"])
        assert total <= MAX_DATAPOINTS, f"{name}: {p['title']!r} asks for {total} datapoints"


def test_header_states_utc_and_the_s3_dynamodb_share_is_labelled_honestly(scenario):
    name, ev = scenario
    doc = json.loads(body(ev)[1])
    header = doc["widgets"][0]["properties"]["markdown"]
    assert "UTC" in header and "any region" in header and ev.local("region") in header
    for w in metric_widgets(ev):
        p = w["properties"]
        labels = [e[-1].get("label", "") for e in p.get("metrics", []) if isinstance(e[-1], dict)]
        for text in [p["title"], *labels]:
            if "S3" in text and "avoidable" in text.lower():
                assert "any region" in text or "only in" in text, f"{name}: {text!r} must say the S3/DynamoDB figure counts every region"


# A small metric math evaluator for the to-date widgets: FILL, EPOCH, DATE,
# MAX, TIME_SERIES, FLOOR, IF, RUNNING_SUM and arithmetic, over one grid of
# buckets, with the semantics of the CloudWatch metric math reference.


class _Series(dict):
    pass


def _binop(a, b, f):
    if isinstance(a, _Series) and isinstance(b, _Series):
        return _Series({t: f(a[t], b[t]) for t in a if t in b})
    if isinstance(a, _Series):
        return _Series({t: f(v, b) for t, v in a.items()})
    if isinstance(b, _Series):
        return _Series({t: f(a, v) for t, v in b.items()})
    return f(a, b)


def _eval_math(text: str, env: dict, grid: list[int]):
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.BinOp):
            ops = {ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y, ast.Mult: lambda x, y: x * y, ast.Div: lambda x, y: x / y}
            return _binop(ev(node.left), ev(node.right), ops[type(node.op)])
        if isinstance(node, ast.Compare):
            (op,), (right,) = node.ops, node.comparators
            cmp = {ast.GtE: lambda x, y: x >= y, ast.Gt: lambda x, y: x > y, ast.Lt: lambda x, y: x < y, ast.LtE: lambda x, y: x <= y}
            return _binop(ev(node.left), ev(right), lambda x, y: 1 if cmp[type(op)](x, y) else 0)
        if isinstance(node, ast.Call):
            fn, args = node.func.id, [ev(a) for a in node.args]
            if fn == "FILL":
                s, c = args
                return _Series({t: s.get(t, c) for t in grid})
            if fn == "EPOCH":
                return _Series({t: t for t in args[0]})
            if fn == "DATE":
                return _Series({t: dt.datetime.fromtimestamp(t, dt.timezone.utc).day for t in args[0]})
            if fn == "MAX":
                return max(args[0].values())
            if fn == "TIME_SERIES":
                return _Series({t: args[0] for t in grid})
            if fn == "FLOOR":
                return _binop(args[0], 0, lambda x, _: float(int(x // 1)))
            if fn == "IF":
                c, a, b = args
                pick = lambda x, t: x[t] if isinstance(x, _Series) else x  # noqa: E731
                return _Series({t: (pick(a, t) if v else pick(b, t)) for t, v in c.items() if (not isinstance(a, _Series) or t in a) and (not isinstance(b, _Series) or t in b)})
            if fn == "RUNNING_SUM":
                out, acc = _Series(), 0
                for t in sorted(args[0]):
                    acc += args[0][t]
                    out[t] = acc
                return out
        raise AssertionError(f"metric math the test evaluator does not know: {ast.dump(node)}")

    return ev(ast.parse(text, mode="eval"))


def _run_widget(p: dict, now: int, cost: dict[int, float]) -> float:
    """The value a single-value widget shows: the latest value of its visible
    expression, with the widget's own range and CloudWatch's start rounding."""
    start = now - iso_seconds(p["start"])
    assert 15 * 86400 < now - start < 63 * 86400
    start -= start % 300  # rounded down to a 5-minute clock interval
    grid = list(range(start, now, p["period"]))
    in_grid = set(grid)
    env: dict = {}
    visible = None
    for entry in p["metrics"]:
        opts = entry[-1]
        if "expression" in opts:
            env[opts["id"]] = _eval_math(opts["expression"], env, grid)
        else:
            assert entry[1] == "NatCost" and opts.get("stat", p.get("stat")) == "Sum"
            env[opts["id"]] = _Series({t: v for t, v in cost.items() if t in in_grid})
        if opts.get("visible", True):
            visible = env[opts["id"]]
    return visible[max(visible)]


@pytest.mark.parametrize(
    "now",
    # Mid-month; just after midnight on the 1st; the last minutes of a month;
    # the first second of a day (the bucket that starts at midnight is the
    # latest one as soon as "now" is past it: GetMetricData's end is exclusive).
    ["2026-12-17T10:23:45", "2026-12-01T00:02:10", "2026-12-31T23:58:59", "2027-03-01T00:00:30", "2026-12-17T00:00:01"],
)
def test_today_and_this_month_add_up_to_the_utc_day_and_month(now):
    """The widgets' expressions, evaluated over a synthetic cost series with
    gaps (and nothing in the last hours), equal the cost since UTC midnight and
    since the 1st. The expressions do not depend on the deployment: one
    scenario is enough."""
    ev = evaluator(SCENARIOS["vpc_flow_log_3_nats"])
    widgets = {w["properties"]["title"]: w["properties"] for w in metric_widgets(ev)}
    today = next(p for t, p in widgets.items() if t.startswith("NAT cost today"))
    month = next(p for t, p in widgets.items() if t.startswith("NAT cost this month"))
    t_now = int(dt.datetime.fromisoformat(now).replace(tzinfo=dt.timezone.utc).timestamp())
    rng = random.Random(t_now)
    first = t_now - 40 * 86400
    first -= first % 300
    cost = {t: round(rng.uniform(0, 2), 3) for t in range(first, t_now - 3 * 3600, 300) if rng.random() < 0.8}
    midnight = t_now - t_now % 86400
    day = dt.datetime.fromtimestamp(t_now, dt.timezone.utc)
    month_start = int(dt.datetime(day.year, day.month, 1, tzinfo=dt.timezone.utc).timestamp())
    want_today = sum(v for t, v in cost.items() if t >= midnight)
    want_month = sum(v for t, v in cost.items() if t >= month_start)
    assert _run_widget(today, t_now, cost) == pytest.approx(want_today)
    assert _run_widget(month, t_now, cost) == pytest.approx(want_month)
    # The same with traffic in the last minutes.
    cost[t_now - t_now % 300] = 1.5
    assert _run_widget(today, t_now, cost) == pytest.approx(want_today + 1.5)
    assert _run_widget(month, t_now, cost) == pytest.approx(want_month + 1.5)
