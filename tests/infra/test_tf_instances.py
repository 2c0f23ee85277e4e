"""Two instances of the module in one account and Region (two VPCs, two flow
log groups) do not mix: each publishes into its own namespace, and its
dashboard, alarms, Contributor Insights rules and IAM policy see only its own
namespace, function, queue, subscription and NAT gateways. No two resources of
the pair share a name.

The pair is tfsupport.INSTANCES: instance A meters a VPC-wide flow log with the
defaults; instance B has dedicated NAT flow logs, both sinks, its own keys and
alarm prefix."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import cwsyntax as cw
from test_tf_contract import _sample_record, _subscription_event, alarms, dashboard, metric_uses
from tfsupport import INSTANCES, evaluator, natmeter_bin, natmeter_env

A, B = sorted(INSTANCES)


@pytest.fixture(scope="module")
def pair():
    return {name: evaluator(INSTANCES[name]) for name in (A, B)}


def attr(ev, type_: str, name: str, key: str) -> list:
    """One argument of every instance of a resource (without evaluating the
    rest of the block: the function's package hash needs a real file)."""
    inst = ev.resource(type_, name)
    items = inst.values() if isinstance(inst, dict) else inst if isinstance(inst, list) else [inst]
    return [i.attr(key) for i in items]


def own(ev) -> dict:
    """What belongs to one instance."""
    return {
        "namespace": ev.local("metric_namespace"),
        "function": attr(ev, "aws_lambda_function", "this", "function_name")[0],
        "queue": attr(ev, "aws_sqs_queue", "failed_events", "name")[0],
        "filter": ev.local("subscription_name"),
        "log_group": ev.local("source_log_group_name"),
        "gateways": set(ev.variables["nat_gateway_ids"]),
    }


def test_each_instance_has_its_own_namespace(pair):
    a, b = own(pair[A]), own(pair[B])
    assert a["namespace"] == "NatMeter/natmeter-vpc-a" and b["namespace"] == "NatMeter/natmeter-vpc-b"
    emf = pair[B].local("emf_namespace")
    assert emf == b["namespace"] + "/emf"
    assert len({a["namespace"], b["namespace"], emf}) == 3
    assert pair[A].local("emf_namespace") is None


@pytest.mark.parametrize("me", [A, B])
def test_dashboard_and_alarms_read_only_their_own_instance(pair, me):
    ev = pair[me]
    mine = own(ev)
    other = own(pair[B if me == A else A])
    problems = []
    uses = metric_uses(ev)
    assert uses
    for use in uses:
        if use.namespace in cw.AWS_METRICS:
            dims = use.dimensions
            checks = {
                "FunctionName": {mine["function"]},
                "QueueName": {mine["queue"]},
                "FilterName": {mine["filter"]},
                "LogGroupName": {mine["log_group"]},
                "NatGatewayId": mine["gateways"],
            }
            for dim, allowed in checks.items():
                if dim not in dims:
                    continue
                if dims[dim] is None:
                    # Open (SCHEMA without WHERE, SEARCH without the term):
                    # fine for DestinationType and the log group, whose filter
                    # name is this instance's own; never for the rest.
                    if dim != "LogGroupName":
                        problems.append(f"{use.where}: {use.namespace} {use.name} does not pin {dim} to this instance")
                elif dims[dim] not in allowed:
                    problems.append(f"{use.where}: {use.namespace} {use.name} {dim}={dims[dim]!r} is not this instance's")
        elif use.namespace != mine["namespace"]:
            problems.append(f"{use.where}: reads namespace {use.namespace!r}, not this instance's {mine['namespace']!r}")
    assert not problems, "\n".join(problems)
    text = json.dumps(dashboard(ev)) + json.dumps([a for _, a in alarms(ev)], default=str)
    for foreign in (other["namespace"], other["function"], other["queue"], *other["gateways"]):
        assert foreign not in text, f"{me} mentions {foreign!r} of the other instance"
    if ev.local("emf_namespace"):
        assert ev.local("emf_namespace") not in text, "the EMF copy is never added to the metrics read"


def test_contributor_insights_and_logs_insights_read_their_own_function_log(pair):
    for me in (A, B):
        ev = pair[me]
        group = ev.local("function_log_group_name")
        for name in ("top_sources", "top_source_destinations"):
            rule = json.loads(ev.instances("aws_cloudwatch_contributor_insight_rule", name)[0]["rule_definition"])
            assert rule["LogGroupNames"] == [group]
        (log,) = [w for w in dashboard(ev)["widgets"] if w["type"] == "log"]
        assert log["properties"]["query"].startswith(f"SOURCE '{group}'")


def _names(ev) -> set[str]:
    def one(t, n, key):
        return {str(x) for x in attr(ev, t, n, key)}

    names = set()
    names |= {f"function:{x}" for x in one("aws_lambda_function", "this", "function_name")}
    names |= {f"role:{x}" for x in one("aws_iam_role", "function", "name") | one("aws_iam_role", "flow_logs", "name")}
    names |= {f"queue:{x}" for x in one("aws_sqs_queue", "failed_events", "name")}
    names |= {f"topic:{x}" for x in one("aws_sns_topic", "alarms", "name")}
    names |= {f"dashboard:{x}" for x in one("aws_cloudwatch_dashboard", "this", "dashboard_name")}
    names |= {f"log-group:{x}" for x in one("aws_cloudwatch_log_group", "function", "name") | one("aws_cloudwatch_log_group", "nat_flow_logs", "name")}
    for n in ("top_sources", "top_source_destinations"):
        names |= {f"rule:{x}" for x in one("aws_cloudwatch_contributor_insight_rule", n, "rule_name")}
    for t, n in ev.config.resources:
        if t == "aws_cloudwatch_metric_alarm":
            names |= {f"alarm:{x}" for x in attr(ev, t, n, "alarm_name")}
    (group,) = attr(ev, "aws_cloudwatch_log_subscription_filter", "flow_logs", "log_group_name")
    (sub,) = attr(ev, "aws_cloudwatch_log_subscription_filter", "flow_logs", "name")
    names.add(f"subscription:{group}:{sub}")
    return names


def test_no_two_resources_of_the_pair_share_a_name(pair):
    a, b = _names(pair[A]), _names(pair[B])
    assert len(a) > 20 and len(b) > 20
    assert not a & b, f"names used by both instances: {sorted(a & b)}"
    assert all(n.startswith("alarm:nat/vpc-b/") for n in b if n.startswith("alarm:")), "instance B's alarm prefix"
    assert not [n for n in b if "hourly-anomaly" in n], "instance B disabled its hourly anomaly alarm"
    keys = set(pair[B].instances_by_key("aws_cloudwatch_metric_alarm", "coverage"))
    assert keys == set(INSTANCES[B]["nat_gateway_keys"]), "per-gateway alarms keyed by nat_gateway_keys"
    assert set(pair[B].instances_by_key("aws_flow_log", "nat")) == keys


def test_each_instance_may_put_metric_data_into_its_own_namespace_only(pair):
    for me in (A, B):
        ev = pair[me]
        doc = ev.data_instances("aws_iam_policy_document", "function")[0]
        (put,) = [s for s in doc["statement"] if "cloudwatch:PutMetricData" in s["actions"]]
        assert put["condition"][0]["values"] == [ev.local("metric_namespace")]


def _no_network_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def test_both_sinks_need_the_emf_namespace_the_module_sets(pair, metric_model, tmp_path):
    """The function refuses sink=both without a second namespace for the EMF
    copy (exit 2): the module's NATMETER_EMF_NAMESPACE is what makes instance
    B's configuration valid. Without a network namespace, only the refusal is
    checked (a valid cloudwatch sink would try to send)."""
    ev = pair[B]
    env = dict(ev.local("function_environment"))
    gateways = json.loads(env["NATMETER_NAT_GATEWAYS"])
    eni = gateways[0]["eni"]
    event = _subscription_event("flow-logs", eni, _sample_record(ev.local("log_format_fields"), eni, gateways[0]["private_ips"][0]))
    event_file = tmp_path / "event.json"
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

    without = {k: v for k, v in env.items() if k != "NATMETER_EMF_NAMESPACE"}
    proc = emit(without)
    assert proc.returncode == 2 and "NATMETER_EMF_NAMESPACE" in proc.stderr, proc.stderr[-2000:]
    proc = emit(dict(env, NATMETER_EMF_NAMESPACE=env["NATMETER_NAMESPACE"]))
    assert proc.returncode == 2, "one namespace for both sinks must be refused"
    if prefix:
        proc = emit(env)
        assert proc.returncode == 1, f"the module's configuration must pass the checks:\n{proc.stderr[-2000:]}"


def test_per_gateway_resources_need_keys_known_at_plan_time():
    """NAT gateways created in the same apply have IDs known only after apply:
    with nat_gateway_keys the per-gateway resources can still be planned
    (for_each keys known), without them Terraform refuses, as this evaluator
    does."""
    import tfeval
    from tfsupport import SCENARIOS, module_config

    ids = [tfeval.Unknown(f"module.vpc.natgw_ids[{i}]") for i in range(3)]
    world = {
        ("aws_partition", "current"): lambda i: {"partition": "aws"},
        ("aws_caller_identity", "current"): lambda i: {"account_id": "123456789012"},
        ("aws_nat_gateway", "this"): lambda i: tfeval.Unknown(f"data.aws_nat_gateway.this[{i}]"),
        ("aws_subnet", "nat"): lambda i: tfeval.Unknown(f"data.aws_subnet.nat[{i}]"),
    }
    base = dict(SCENARIOS["vpc_flow_log_3_nats"], nat_gateway_ids=ids, create_nat_flow_logs=True, flow_log_group_name=None)
    keyed = tfeval.Evaluator(module_config(), dict(base, nat_gateway_keys=["a", "b", "c"]), world)
    for name in ("silent_failure", "coverage"):
        assert list(keyed.instances_by_key("aws_cloudwatch_metric_alarm", name)) == ["a", "b", "c"]
    assert list(keyed.instances_by_key("aws_flow_log", "nat")) == ["a", "b", "c"]
    unkeyed = tfeval.Evaluator(module_config(), base, world)
    with pytest.raises(tfeval.EvalError, match="known only after apply"):
        unkeyed.instances_by_key("aws_flow_log", "nat")


def test_alarm_names_and_descriptions_fit_cloudwatch_with_the_longest_inputs():
    """PutMetricAlarm: AlarmName 1-255 characters, AlarmDescription at most
    1024. The longest name, prefix and log group name the variables accept."""
    from tfsupport import SCENARIOS

    for variables in (
        dict(SCENARIOS["vpc_flow_log_3_nats"], name="n" * 40, alarm_name_prefix="p" * 150, flow_log_group_name="g" * 512),
        dict(SCENARIOS["default_format_20_nats"], name="n" * 40, nat_gateway_keys=["k" * 62 + f"{i:02d}" for i in range(20)]),
    ):
        ev = evaluator(variables)
        for t, n in ev.config.resources:
            if t != "aws_cloudwatch_metric_alarm":
                continue
            for name, desc in zip(attr(ev, t, n, "alarm_name"), attr(ev, t, n, "alarm_description")):
                assert 1 <= len(name) <= 255, name
                assert len(desc) <= 1024, f"{n}: description of {len(desc)} characters"
