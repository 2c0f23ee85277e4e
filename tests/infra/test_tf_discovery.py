"""NAT gateways the function describes itself (issue 15 item 1, docs/topology.md §3): with
discover_nat_gateways = true and vpc_id the module reads nothing about the gateways at plan time
(a regional gateway has no subnet and changing ENIs), tells the function the gateway and VPC ids
(NATMETER_NAT_GATEWAY_IDS, NATMETER_VPC_IDS) instead of NATMETER_NAT_GATEWAYS, lets it call
ec2:DescribeNatGateways and ec2:DescribeSubnets (on "*": neither takes resource-level
permissions), subscribes it to every record (""), and shows cross-AZ (the function describes the
subnets). Without the variable nothing of this exists. The function's own checks accept the
environment (`natmeter emit`, whose configuration is the function's)."""

from __future__ import annotations

import json
import subprocess

import pytest

import tfeval
from tfsupport import SCENARIOS, evaluator, module_config, natmeter_bin, natmeter_env

VPC = "vpc-0a1b2c3d4e5f67890"
DESCRIBE = ["ec2:DescribeNatGateways", "ec2:DescribeSubnets"]

DISCOVERY_SCENARIOS = {
    "discover_vpc_flow_log_3_nats": dict(SCENARIOS["vpc_flow_log_3_nats"], discover_nat_gateways=True, vpc_id=VPC),
    "discover_default_format_20_nats_with_subnets": dict(
        SCENARIOS["default_format_20_nats"], discover_nat_gateways=True, vpc_id=VPC,
        subnets=[{"cidr": "10.0.0.0/16", "az_id": "use1-az1"}],
    ),
}


@pytest.fixture(params=sorted(DISCOVERY_SCENARIOS), scope="module")
def discovering(request):
    return request.param, evaluator(DISCOVERY_SCENARIOS[request.param])


def statements(ev) -> list[dict]:
    return ev.data_instances("aws_iam_policy_document", "function")[0]["statement"]


def test_without_the_variable_the_gateways_are_frozen_at_plan_time(scenario):
    name, ev = scenario
    env = ev.local("function_environment")
    assert "NATMETER_NAT_GATEWAYS" in env and "NATMETER_VPC_IDS" not in env and "NATMETER_NAT_GATEWAY_IDS" not in env
    assert not [s for s in statements(ev) if any(a.startswith("ec2:") for a in s["actions"])], name
    assert ev.data_instances("aws_vpc", "this") == []


def test_the_function_is_told_the_ids_not_the_enis(discovering):
    name, ev = discovering
    env = ev.local("function_environment")
    assert "NATMETER_NAT_GATEWAYS" not in env, name
    assert env["NATMETER_NAT_GATEWAY_IDS"] == ",".join(ev.variables["nat_gateway_ids"])
    assert env["NATMETER_VPC_IDS"] == VPC
    assert ev.data_instances("aws_nat_gateway", "this") == [], "nothing about the gateways is read at plan time"
    assert ev.data_instances("aws_subnet", "nat") == []
    assert ev.local("region") == "us-east-1", "the Region comes from the VPC's ARN"
    # Subnets: described by the function unless given (then they override).
    if ev.variables["subnets"]:
        assert json.loads(env["NATMETER_SUBNETS"]) == ev.variables["subnets"]
    else:
        assert "NATMETER_SUBNETS" not in env
    assert ev.local("cross_az_enabled") is True
    assert len(json.dumps(env)) <= 4096


def test_the_role_may_describe_and_nothing_else_of_ec2(discovering):
    _, ev = discovering
    ec2 = [s for s in statements(ev) if any(a.startswith("ec2:") for a in s["actions"])]
    (s,) = ec2
    assert s["sid"] == "DescribeNatTopology"
    assert s["actions"] == DESCRIBE
    assert s["resources"] == ["*"]
    assert "condition" not in s


def test_the_subscription_passes_every_record(discovering):
    _, ev = discovering
    (f,) = ev.instances("aws_cloudwatch_log_subscription_filter", "flow_logs")
    assert f["filter_pattern"] == "", "a regional gateway's ENIs are not known at plan time"


def test_the_cross_az_widgets_are_there(discovering):
    _, ev = discovering
    body = ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"]
    assert "NatCrossAzCost" in body and "NatCrossAzBytes" in body


def _precondition_failures(variables: dict) -> list[str]:
    ev = evaluator(variables)
    fn = module_config().resources[("aws_lambda_function", "this")]
    out = []
    for lc in fn.blocks_of("lifecycle"):
        for pc in lc.blocks_of("precondition"):
            if not tfeval.to_bool(ev.expr(pc.attributes["condition"], {})):
                out.append(tfeval.literal(pc.attributes["error_message"]))
    return out


def test_discovery_needs_the_vpc_and_no_per_eni_flow_logs():
    ok = DISCOVERY_SCENARIOS["discover_vpc_flow_log_3_nats"]
    assert _precondition_failures(ok) == []
    with_flow_logs = dict(SCENARIOS["dedicated_nat_flow_logs_1_nat"], discover_nat_gateways=True, vpc_id=VPC)
    (msg,) = _precondition_failures(with_flow_logs)
    assert "create_nat_flow_logs" in msg




@pytest.mark.parametrize("scenario_name", sorted(DISCOVERY_SCENARIOS))
def test_the_function_accepts_the_environment(scenario_name, metric_model):
    """The real bootstrap reads the module's environment: a configuration it refuses exits 2
    ("invalid configuration"); one it accepts goes on to describe the gateways, which fails here
    (no EC2 endpoint is reachable: AWS_ENDPOINT_URL_EC2 is a closed port) with exit 3,
    "discovery failed" (contracts §5.5)."""
    ev = evaluator(DISCOVERY_SCENARIOS[scenario_name])
    env = ev.local("function_environment")
    assert set(env) <= set(metric_model["config_variables"]), sorted(set(env) - set(metric_model["config_variables"]))
    bootstrap = natmeter_bin().parent / "bootstrap"
    run_env = dict(natmeter_env(), **env, AWS_REGION="us-east-1", AWS_ENDPOINT_URL_EC2="http://127.0.0.1:9",
                   AWS_ACCESS_KEY_ID="AKIDNATMETERTEST", AWS_SECRET_ACCESS_KEY="not-a-secret",
                   AWS_EC2_METADATA_DISABLED="true")
    proc = subprocess.run([str(bootstrap)], capture_output=True, text=True, timeout=120, env=run_env)
    assert "invalid configuration" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 3 and "discovery failed" in proc.stderr, proc.stderr[-2000:]
    assert "DescribeNatGateways" in proc.stderr


# ---------------------------------------------------------------------------
# AWS's ranges and remote prefixes (docs/attribution.md §5.1, §5.3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("url,env_value", [(None, None), ("", ""), ("http://10.0.0.5/r.json", "http://10.0.0.5/r.json")])
def test_ip_ranges_url_is_passed_only_when_set(url, env_value):
    ev = evaluator(dict(SCENARIOS["vpc_flow_log_3_nats"], ip_ranges_url=url))
    env = ev.local("function_environment")
    assert env.get("NATMETER_IP_RANGES_URL") == env_value, "null leaves the function's default"


@pytest.mark.parametrize("on", [False, True])
def test_remote_prefixes(on):
    ev = evaluator(dict(SCENARIOS["vpc_flow_log_3_nats"], remote_prefixes=on))
    env = ev.local("function_environment")
    assert env.get("NATMETER_REMOTE_PREFIXES") == ("on" if on else None)
