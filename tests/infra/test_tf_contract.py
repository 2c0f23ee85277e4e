"""The module against the Rust code: every namespace, metric, dimension set,
dimension value, detail-line field and environment variable that the dashboard,
the alarms, the Contributor Insights rules and the function's configuration use
must be one that `natmeter metrics --json` declares. Nothing here is a list
kept by hand: the model comes from the binary (see conftest.metric_model)."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import pytest

import cwsyntax as cw
import tfeval
from tfsupport import SCENARIOS, evaluator, natmeter_bin, natmeter_env


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def dashboard(ev: tfeval.Evaluator) -> dict:
    return json.loads(ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"])


def alarms(ev: tfeval.Evaluator) -> list[tuple[str, dict]]:
    out = []
    for name in sorted(n for t, n in ev.config.resources if t == "aws_cloudwatch_metric_alarm"):
        for i, inst in enumerate(ev.instances("aws_cloudwatch_metric_alarm", name)):
            out.append((f"aws_cloudwatch_metric_alarm.{name}[{i}]", inst))
    return out


def insight_rules(ev: tfeval.Evaluator) -> list[tuple[str, dict, dict]]:
    out = []
    for name in sorted(n for t, n in ev.config.resources if t == "aws_cloudwatch_contributor_insight_rule"):
        # Every instance: a rule with count (the workload rule, only with the
        # EKS inventory) may have none.
        for inst in ev.instances("aws_cloudwatch_contributor_insight_rule", name):
            out.append((name, inst, json.loads(inst["rule_definition"])))
    return out


def metric_uses(ev: tfeval.Evaluator) -> list[cw.MetricUse]:
    uses = []
    for i, w in enumerate(dashboard(ev)["widgets"]):
        if w["type"] == "metric":
            where = f"dashboard widget {i} ({w['properties'].get('title', '')!r})"
            uses += cw.widget_queries(where, w["properties"]).metrics
    for where, alarm in alarms(ev):
        uses += cw.alarm_queries(where, alarm).metrics
    return uses


def model_metrics(model: dict) -> dict[str, list[frozenset[str]]]:
    return {m["name"]: [frozenset(s) for s in m["dimension_sets"]] for m in model["metrics"]}


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def test_default_namespace_is_the_models_under_the_instance_name(metric_model):
    """Each instance gets its own namespace by default: the function's default
    namespace, then /<name>."""
    for name in ("vpc_flow_log_3_nats", "default_format_20_nats", "instance_a_vpc_flow_log"):
        ev = evaluator(SCENARIOS[name])
        assert ev.variables["metric_namespace"] is None
        assert ev.local("metric_namespace") == f"{metric_model['namespace']}/{ev.variables['name']}"
    ev = evaluator(SCENARIOS["dedicated_nat_flow_logs_1_nat"])
    assert ev.local("metric_namespace") == ev.variables["metric_namespace"], "an explicit namespace is used as given"


def test_every_metric_read_is_one_the_function_emits(scenario, metric_model):
    name, ev = scenario
    ours = ev.local("metric_namespace")
    emitted = model_metrics(metric_model)
    values = {k: set(v) for k, v in metric_model["dimension_values"].items()}
    problems = []
    seen_ours = 0
    for use in metric_uses(ev):
        if use.namespace == ours:
            seen_ours += 1
            if use.name not in emitted:
                problems.append(f"{use.where}: {use.name} is not a metric of the model ({sorted(emitted)})")
                continue
            if use.dimension_set not in emitted[use.name]:
                problems.append(
                    f"{use.where}: {use.name} is never emitted with dimensions {sorted(use.dimension_set)}; "
                    f"the model has {[sorted(s) for s in emitted[use.name]]}"
                )
            for g in use.group_by:
                if g not in use.dimensions:
                    problems.append(f"{use.where}: GROUP BY {g} is not in SCHEMA {sorted(use.dimensions)}")
            for dim, value in use.dimensions.items():
                if value is not None and dim in values and value not in values[dim]:
                    problems.append(f"{use.where}: {dim}={value!r} is not a value the model lists ({sorted(values[dim])})")
        elif use.namespace in cw.AWS_METRICS:
            table = cw.AWS_METRICS[use.namespace]
            if use.name not in table or set(use.dimension_set) not in table[use.name]:
                problems.append(f"{use.where}: {use.namespace} {use.name} {sorted(use.dimension_set)} is not an AWS metric this module expects")
        else:
            problems.append(f"{use.where}: namespace {use.namespace!r} is neither {ours!r} nor an AWS namespace")
    assert not problems, "\n".join(problems)
    assert seen_ours > 0


# ---------------------------------------------------------------------------
# Contributor Insights and Logs Insights over the source detail lines
# ---------------------------------------------------------------------------


def test_insight_rules_read_the_source_detail_lines(scenario, metric_model):
    _, ev = scenario
    detail = metric_model["source_detail_line"]
    (disc_key, disc_value), = detail["discriminator"].items()
    fields = set(detail["fields"])
    numeric = {m["name"] for m in metric_model["metrics"]} & fields
    log_group = ev.local("function_log_group_name")
    rules = insight_rules(ev)
    assert rules, "the module must create a Contributor Insights rule over the source detail lines"
    for name, inst, rule in rules:
        assert rule["Schema"] == {"Name": "CloudWatchLogRule", "Version": 1}, name
        assert rule["LogFormat"] == "JSON", name
        assert rule["LogGroupNames"] == [log_group], f"{name} must read the function's own log group only"
        contrib = rule["Contribution"]
        assert {"Match": f"$.{disc_key}", "In": [disc_value]} in contrib["Filters"], (
            f"{name} must keep only source detail lines ($.{disc_key} = {disc_value!r})"
        )
        assert len(contrib["Filters"]) <= 4 and 1 <= len(contrib["Keys"]) <= 4, name
        for key in contrib["Keys"]:
            assert key.startswith("$.") and key[2:] in fields, f"{name}: key {key} is not a detail-line field ({sorted(fields)})"
        assert rule["AggregateOn"] == "Sum", name
        value = contrib["ValueOf"]
        assert value.startswith("$.") and value[2:] in numeric, f"{name}: ValueOf {value} must be a numeric detail-line field"
        assert inst["rule_state"] == "ENABLED", name
        assert 1 <= len(inst["rule_name"]) <= 128, name
    keyed = {tuple(r["Contribution"]["Keys"]): r for _, _, r in rules}
    top = keyed.get(("$.SourceIp",))
    assert top is not None and top["Contribution"]["ValueOf"] == "$.NatBytes", (
        "one rule must rank sources: Keys [$.SourceIp], ValueOf $.NatBytes"
    )


def test_logs_insights_widgets_use_detail_line_fields(scenario, metric_model):
    _, ev = scenario
    detail = metric_model["source_detail_line"]
    (disc_key, disc_value), = detail["discriminator"].items()
    fields = set(detail["fields"])
    log_widgets = [w for w in dashboard(ev)["widgets"] if w["type"] == "log"]
    assert log_widgets
    for w in log_widgets:
        query = w["properties"]["query"]
        assert query.startswith(f"SOURCE '{ev.local('function_log_group_name')}'"), query
        assert f'filter {disc_key} = "{disc_value}"' in query, f"log widget must keep only source detail lines: {query}"
        used = cw.logs_insights_fields(query)
        assert used <= fields, f"log widget uses fields the detail lines do not have: {sorted(used - fields)}"


# ---------------------------------------------------------------------------
# Function configuration
# ---------------------------------------------------------------------------


def test_environment_variables_are_ones_the_function_reads(scenario, metric_model):
    name, ev = scenario
    env = ev.local("function_environment")
    declared = set(metric_model["config_variables"])
    assert set(env) <= declared, f"variables the function does not read: {sorted(set(env) - declared)}"
    assert "NATMETER_NAT_GATEWAYS" in env and "NATMETER_LOG_FORMAT" in env
    assert env["NATMETER_NAMESPACE"] == ev.local("metric_namespace")
    if ev.variables["sink"] == "both":
        # CloudWatch turns EMF lines into metrics too: the EMF copy needs a
        # namespace of its own, or every datum would count twice.
        assert env["NATMETER_EMF_NAMESPACE"] == env["NATMETER_NAMESPACE"] + "/emf"
    else:
        assert "NATMETER_EMF_NAMESPACE" not in env
    assert all(isinstance(v, str) for v in env.values()), "Lambda environment values are strings"
    gateways = json.loads(env["NATMETER_NAT_GATEWAYS"])
    assert [g["id"] for g in gateways] == ev.variables["nat_gateway_ids"]
    for g in gateways:
        assert set(g) == {"id", "eni", "private_ips", "az_id", "connectivity_type"}
        assert g["connectivity_type"] in ("public", "private")
        assert g["eni"].startswith("eni-") and g["private_ips"] and g["az_id"]
    assert gateways[0]["private_ips"] == ["10.0.0.175", "10.0.0.176"], "secondary private IPs are NAT IPs too"
    if ev.variables["price_per_gb"] is None:
        assert "NATMETER_PRICE_PER_GB" not in env, "unset means: the built-in price table"
    else:
        assert float(env["NATMETER_PRICE_PER_GB"]) == ev.variables["price_per_gb"]
    assert int(env["NATMETER_MAX_SOURCES"]) == ev.variables["max_sources"]


def test_environment_fits_lambdas_4kb(scenario):
    _, ev = scenario
    env = ev.local("function_environment")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
    assert size <= 4096, f"Lambda allows 4 KB of environment variables; this scenario needs {size} bytes"


def test_put_metric_data_is_limited_to_the_namespace(scenario):
    _, ev = scenario
    doc = ev.data_instances("aws_iam_policy_document", "function")[0]
    statements = doc["statement"]
    put = [s for s in statements if "cloudwatch:PutMetricData" in s["actions"]]
    if ev.variables["sink"] == "emf":
        assert not put, "with sink = emf the function publishes through log lines and needs no PutMetricData"
        return
    assert len(put) == 1
    (cond,) = put[0]["condition"]
    assert cond == {"test": "StringEquals", "variable": "cloudwatch:namespace", "values": [ev.local("metric_namespace")]}, (
        "PutMetricData into this instance's namespace only (the EMF copy needs no IAM)"
    )
    for s in statements:
        assert not any(a.endswith("*") for a in s["actions"]), f"wildcard action in {s['sid']}"
        if s["resources"] == ["*"]:
            assert s["actions"] == ["cloudwatch:PutMetricData"], f"{s['sid']}: only PutMetricData may use resource *"


def _sample_record(fields: list[str], eni: str, nat_ip: str) -> str:
    """A private-side outbound record (docs/attribution.md §2.2 (A)) in this format."""
    values = {
        "version": "5", "account-id": "123456789012", "interface-id": eni,
        "srcaddr": "10.0.37.171", "dstaddr": nat_ip, "srcport": "43120", "dstport": "443",
        "protocol": "6", "packets": "90", "bytes": "123456", "start": "1764547260", "end": "1764547319",
        "action": "ACCEPT", "log-status": "OK", "pkt-srcaddr": "10.0.37.171", "pkt-dstaddr": "203.0.113.5",
        "flow-direction": "ingress", "region": "us-east-1", "az-id": "use1-az1", "traffic-path": "-",
    }
    return " ".join(values.get(f, "-") for f in fields)


def _subscription_event(log_group: str, eni: str, message: str) -> dict:
    """A CloudWatch Logs subscription event as Lambda receives it (docs/contracts.md §5.1)."""
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": f"{eni}-all",
        "subscriptionFilters": ["natmeter-nat-enis"],
        "logEvents": [
            {"id": "3" + "7" * 55, "timestamp": 1764547260000, "message": message},
        ],
    }
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}


@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_function_parses_the_configured_format_and_gateways(scenario_name, metric_model, tmp_path):
    """The configuration the module hands the function (format string, NAT
    gateway JSON, private CIDRs) is accepted by the real parser and attributes
    a record A of the first gateway, delivered as a subscription event: run
    through `natmeter report`, which reads the same settings as flags."""
    ev = evaluator(SCENARIOS[scenario_name])
    env = ev.local("function_environment")
    gateways = json.loads(env["NATMETER_NAT_GATEWAYS"])
    fields = ev.local("log_format_fields")
    eni = gateways[0]["eni"]
    event = _subscription_event(ev.local("source_log_group_name") or "flow-logs", eni,
                                _sample_record(fields, eni, gateways[0]["private_ips"][0]))
    event_file = tmp_path / "nat-record-a.json"
    event_file.write_text(json.dumps(event))
    cmd = [
        str(natmeter_bin()), "report", "--output", "json",
        "--log-format", env["NATMETER_LOG_FORMAT"],
        "--nat-gateways", env["NATMETER_NAT_GATEWAYS"],
        "--private-cidrs", env["NATMETER_PRIVATE_CIDRS"],
        "--price-per-gb", env.get("NATMETER_PRICE_PER_GB", "0.045"),
        str(event_file),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=natmeter_env())
    assert proc.returncode == 0, f"{' '.join(cmd)}\nexit {proc.returncode}\n{proc.stderr[:2000]}"
    report = json.loads(proc.stdout)
    assert report["schema"] == "natmeter.report/v1"
    assert report["records"]["counted"] == 1, report["records"]
    assert report["totals"]["outbound_bytes"] == 123456, report["totals"]
    assert report["sources"][0]["source"] == "10.0.37.171", report["sources"]
    assert report["nat_gateways"][0]["nat_gateway"] == gateways[0]["id"], report["nat_gateways"]


def _no_network_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_function_accepts_the_whole_environment(scenario_name, metric_model, tmp_path):
    """Every variable the module sets, with the value it sets, passes the
    function's configuration checks, and the source detail lines it writes
    carry what the Contributor Insights rules read. `natmeter emit` runs the
    function's pipeline with the same NATMETER_* variables; a configuration
    error exits 2. It runs in a network namespace without network, so a
    cloudwatch sink fails to send (exit 1) and nothing leaves the machine;
    where no such namespace can be made, only the emf run below happens."""
    ev = evaluator(SCENARIOS[scenario_name])
    env = dict(ev.local("function_environment"))
    gateways = json.loads(env["NATMETER_NAT_GATEWAYS"])
    eni = gateways[0]["eni"]
    event = _subscription_event("flow-logs", eni, _sample_record(ev.local("log_format_fields"), eni, gateways[0]["private_ips"][0]))
    event_file = tmp_path / "nat-record-a.json"
    event_file.write_text(json.dumps(event))
    prefix = _no_network_prefix()

    def emit(variables: dict) -> subprocess.CompletedProcess:
        run_env = dict(
            natmeter_env(), **variables,
            AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="AKIDNATMETERTEST", AWS_SECRET_ACCESS_KEY="not-a-secret",
            AWS_EC2_METADATA_DISABLED="true",
        )
        cmd = prefix + [str(natmeter_bin()), "emit", "--endpoint-url", "http://127.0.0.1:9", "--timeout", "3", str(event_file)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=run_env)

    if prefix and env["NATMETER_SINK"] != "emf":
        proc = emit(env)
        assert proc.returncode != 2, f"the function rejects the module's configuration:\n{proc.stderr[-2000:]}"
        assert proc.returncode == 1, (
            f"expected the configuration to pass and sending to fail without a network:\n{proc.stderr[-2000:]}"
        )
    # The same configuration with the emf sink: nothing to send, everything on stdout.
    proc = emit(dict(env, NATMETER_SINK="emf"))
    assert proc.returncode == 0, f"the function rejects the module's configuration:\n{proc.stderr[-2000:]}"
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    detail = metric_model["source_detail_line"]
    (key, value), = detail["discriminator"].items()
    sources = [l for l in lines if l.get(key) == value]
    assert sources, f"no source detail line on stdout:\n{proc.stdout[:2000]}"
    # Names (Namespace, Workload, Pod, Node) come only with an inventory, and Pod/Node only where
    # known: every other field is on every line.
    required = set(detail["fields"]) - set(detail.get("optional_fields", []))
    for line in sources:
        assert required <= set(line), f"detail line lacks fields: {line}"
        assert isinstance(line["NatBytes"], (int, float)) and line["SourceIp"] == "10.0.37.171", line
    namespaces = {d["Namespace"] for l in lines if "_aws" in l for d in l["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {ev.local("metric_namespace")}, namespaces
