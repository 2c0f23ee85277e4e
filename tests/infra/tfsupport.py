"""What the Terraform checks share: where the configurations are, the
scenarios the module is evaluated in, the fake AWS world its data sources read,
and how to run the natmeter binary."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import tfeval

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULE = INFRA / "modules" / "natmeter"

# The seed article's format (issue 4): what infra/examples/complete configures.
SEED_FORMAT = " ".join(
    "${" + f + "}"
    for f in (
        "region vpc-id az-id subnet-id instance-id interface-id flow-direction srcaddr dstaddr "
        "srcport dstport pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service "
        "traffic-path packets bytes action"
    ).split()
)


def tf_dirs() -> list[Path]:
    """Every directory under infra/ holding .tf files (module and examples)."""
    return sorted({p.parent for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts})


def tf_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)


def nat_ids(n: int, first: int = 1) -> list[str]:
    return [f"nat-{i + first:017x}" for i in range(n)]


def eni_of(nat_id: str) -> str:
    """The fake world's ENI of a NAT gateway: derived from its ID, so that the
    gateways of two instances have different ENIs."""
    return f"eni-{int(nat_id[4:], 16) + 0xA0:017x}"


def fake_world(ids: list[str]) -> dict:
    """Data sources as AWS would answer them for these NAT gateways."""

    def nat(i):
        return {
            "id": ids[i],
            "network_interface_id": eni_of(ids[i]),
            "private_ip": f"10.0.{i}.175",
            # The first gateway has a secondary private IP, like a gateway scaled
            # for more than 55,000 connections per destination.
            "secondary_private_ip_addresses": [f"10.0.{i}.176"] if i == 0 else [],
            "subnet_id": f"subnet-{i + 1:017x}",
        }

    return {
        ("aws_partition", "current"): lambda i: {"partition": "aws"},
        ("aws_caller_identity", "current"): lambda i: {"account_id": "123456789012"},
        ("aws_nat_gateway", "this"): nat,
        # discover_nat_gateways: only the VPC is read at plan time.
        ("aws_vpc", "this"): lambda i: {"arn": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0a1b2c3d4e5f67890"},
        ("aws_subnet", "nat"): lambda i: {
            "availability_zone_id": f"use1-az{i + 1}",
            "arn": f"arn:aws:ec2:us-east-1:123456789012:subnet/subnet-{i + 1:017x}",
        },
    }


# Inputs the module is evaluated with. Each is a realistic deployment; together
# they cover both inputs (existing flow log / dedicated NAT flow logs), both
# optional-key paths and the largest accepted number of gateways.
SCENARIOS: dict[str, dict] = {
    "vpc_flow_log_3_nats": {
        "name": "natmeter",
        "lambda_zip": "bootstrap.zip",
        "nat_gateway_ids": nat_ids(3),
        "flow_log_group_name": "/aws/vpc-flow-log/demo",
        "flow_log_format": SEED_FORMAT,
        "daily_cost_alarm_usd": 25,
        "alarm_emails": ["finops@example.com"],
    },
    "dedicated_nat_flow_logs_1_nat": {
        "name": "nm-prod_1",
        "lambda_zip": "bootstrap.zip",
        "nat_gateway_ids": nat_ids(1),
        "create_nat_flow_logs": True,
        "daily_cost_alarm_usd": 5.5,
        "metric_namespace": "Team/NatMeter",
        "price_per_gb": 0.048,
        "sink": "emf",
        "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "alarm_topic_arn": "arn:aws:sns:eu-west-1:123456789012:ops",
        "tags": {"team": "platform"},
    },
    "default_format_20_nats": {
        "name": "natmeter-big",
        "lambda_zip": "bootstrap.zip",
        "nat_gateway_ids": nat_ids(20),
        "flow_log_group_name": "vpc-flow-logs",
        "daily_cost_alarm_usd": 1000,
    },
}

# Two instances of the module in one account and Region: two VPCs with their
# own NAT gateways, one metered from its VPC-wide flow log, the other from
# dedicated NAT flow logs with both sinks, its own keys, alarm prefix and a
# disabled alarm. Each must see only its own traffic (test_tf_instances.py).
INSTANCES: dict[str, dict] = {
    "instance_a_vpc_flow_log": {
        "name": "natmeter-vpc-a",
        "lambda_zip": "bootstrap.zip",
        "nat_gateway_ids": nat_ids(2, first=0x10),
        "flow_log_group_name": "/aws/vpc-flow-log/vpc-0aaaaaaaaaaaaaaaa",
        "flow_log_format": SEED_FORMAT,
        "daily_cost_alarm_usd": 20,
    },
    "instance_b_both_sinks": {
        "name": "natmeter-vpc-b",
        "lambda_zip": "bootstrap.zip",
        "nat_gateway_ids": nat_ids(3, first=0x20),
        "nat_gateway_keys": ["use1-az1", "use1-az2", "use1-az4"],
        "create_nat_flow_logs": True,
        "sink": "both",
        "alarm_name_prefix": "nat/vpc-b/",
        "alarm_enabled": {"hourly_cost_anomaly": False},
        "daily_cost_alarm_usd": 40,
    },
}
SCENARIOS.update(INSTANCES)

# The same deployments with the EKS workload inventory (issue 13):
# eks_cluster_log_group_name set, once with the default retention and no KMS
# key, once with a customer managed key and its own retention, once with the
# most gateways (the function's environment must still fit). Kept out of
# SCENARIOS, whose every test compares the module with `natmeter metrics
# --json`: the inventory's metrics and variables are checked against the
# binary in test_tf_inventory.py, which says when the binary does not declare
# them yet.
EKS_LOG_GROUP = "/aws/eks/shop-prod/cluster"
INVENTORY_SCENARIOS: dict[str, dict] = {
    "inventory_vpc_flow_log_3_nats": dict(SCENARIOS["vpc_flow_log_3_nats"], eks_cluster_log_group_name=EKS_LOG_GROUP),
    "inventory_dedicated_kms_1_nat": dict(
        SCENARIOS["dedicated_nat_flow_logs_1_nat"],
        eks_cluster_log_group_name="/aws/eks/prod_eu-1/cluster",
        inventory_retention_hours=48,
    ),
    "inventory_default_format_20_nats": dict(
        SCENARIOS["default_format_20_nats"], eks_cluster_log_group_name="/aws/eks/" + "c" * 100 + "/cluster"
    ),
}


@functools.lru_cache(maxsize=None)
def module_config() -> tfeval.Config:
    """The module, parsed once (parsing is most of an evaluator's cost; an
    Evaluator never changes its Config)."""
    return tfeval.load_config(MODULE)


def evaluator(variables: dict) -> tfeval.Evaluator:
    return tfeval.Evaluator(
        module_config(),
        variables,
        fake_world(variables["nat_gateway_ids"]),
        path_module=str(MODULE),
    )


def natmeter_bin() -> Path:
    """The natmeter CLI: NATMETER_BIN, else the debug build of this repository."""
    return Path(os.environ.get("NATMETER_BIN") or REPO / "target" / "debug" / "natmeter")


def natmeter_env() -> dict[str, str]:
    """The environment for running the binary: without NATMETER_* or AWS_REGION
    from the caller's shell, which its flags would otherwise pick up."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NATMETER_") and k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
