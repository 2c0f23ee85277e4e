"""Each validation block of the module rejects the mistakes it exists for and
accepts the defaults and every scenario's values. Conditions are evaluated the
way Terraform evaluates them (no short-circuit of || and &&, so a condition
that would error on null must guard itself with try() or can())."""

from __future__ import annotations

import pytest

import tfeval
from tfsupport import SCENARIOS, nat_ids

# Values a user could plausibly pass by mistake, per variable. Every variable
# with a validation block must appear here (see the last test).
BAD: dict[str, list] = {
    "name": ["", "has space", "x" * 41, "ünïcode", "slash/name"],
    "lambda_zip": ["bootstrap", "/nonexistent/bootstrap.zip"],
    "architecture": ["amd64", "ARM64", "aarch64"],
    "memory_size": [64, 10241, 256.5],
    "timeout": [0, 3, 901, 1.5],
    "reserved_concurrent_executions": [-2, 1.5],
    "nat_gateway_ids": [[], ["igw-0123456789abcdef0"], ["nat-0123456789abcdef0"] * 2, nat_ids(21), ["NAT-0123456789ABCDEF0"]],
    "nat_gateway_keys": [[], ["a", "a"], ["has space"], ["x" * 65], ["a/b"]],
    "vpc_id": ["", "vpc-XYZ", "subnet-0a1b2c3d", "vpc-0a1b2c3d4e5f678901"],
    "ip_ranges_url": ["ip-ranges.json", "ftp://example.com/r.json", "https://", "https://a b/c"],
    "flow_log_group_name": ["", "bad name!", "x" * 513],
    "flow_log_format": [
        "${srcaddr}  ${dstaddr} ${bytes}",
        "srcaddr dstaddr bytes",
        "${interface-id} ${srcaddr} ${dstaddr}",
        "${srcaddr} ${dstaddr} ${bytes} ",
        "${srcaddr} ${dstaddr} ${Bytes}",
    ],
    "flow_log_destination": ["S3", "cloud-watch-logs", "kinesis-data-firehose", ""],
    "flow_log_bucket_name": [
        "", "ab", "My-Bucket", "bucket_name", "-bucket", "bucket-", "a..b", "192.168.0.1", "x" * 64, "arn:aws:s3:::bucket",
    ],
    "flow_log_file_format": ["text", "Parquet", "csv"],
    "flow_log_retention_days": [0, -1, 3651, 1.5],
    "results_prefix": [
        "", "/", "natmeter/results", "/natmeter/results/", "natmeter//results/", "AWSLogs/natmeter/", "AWSLogs/",
        "nat meter/", "résultats/", "a/" * 257,
    ],
    "results_retention_days": [0, 3651, 2.5],
    "sqs_batch_size": [0, 10001, 2.5],
    "sqs_batching_window_seconds": [-1, 301, 0.5],
    "eks_cluster_log_group_name": [
        "/aws/eks/x/other", "/aws/eks/x", "aws/eks/x/cluster", "/aws/eks//cluster", "/aws/eks/-x/cluster",
        "/aws/eks/a b/cluster", "/aws/eks/x/cluster/", "/aws/eks/" + "x" * 101 + "/cluster", "/aws/lambda/x", "",
    ],
    "inventory_retention_hours": [0, -1, 8761, 1.5],
    "metric_namespace": ["AWS/NATGateway", "", 'has "quote"', ":x", "a" * 252, "white space"],
    "price_per_gb": [0, -0.045, 1.5],
    "private_cidrs": [[], ["10.0.0.0/33"], ["not-a-cidr"], ["10.0.0.1"]],
    "subnets": [
        [{"cidr": "10.0.0.0/33", "az_id": "use1-az1"}], [{"cidr": "10.0.0.1", "az_id": "use1-az1"}],
        [{"cidr": "not-a-cidr", "az_id": "use1-az1"}], [{"cidr": "10.0.0.0/20", "az_id": "us-east-1a"}],
        [{"cidr": "10.0.0.0/20", "az_id": "USE1-AZ1"}], [{"cidr": "10.0.0.0/20", "az_id": "use1-az"}],
        [{"cidr": "10.0.0.0/20", "az_id": "use1-az1"}, {"cidr": "10.0.0.0/20", "az_id": "use1-az2"}],
    ],
    "sink": ["stdout", "", "CloudWatch"],
    "max_sources": [-1, 501, 2.5],
    "min_source_share": [-0.1, 1.5],
    "daily_cost_alarm_usd": [0, -1],
    "anomaly_band_width": [0.5, 11],
    "silent_failure_min_bytes": [-1],
    "maximum_event_age_seconds": [59, 21601, 600.5, 0],
    "min_coverage": [0, -0.1, 1.01],
    "coverage_min_bytes": [-1],
    "function_error_rate_percent": [-1, 100, 150],
    "event_age_alarm_fraction": [0, 1, 1.5, -0.5],
    "alarm_name_prefix": ["", "x" * 151, "tab\there"],
    "alarm_enabled": [{"function_errors": False}, {"coverage": True, "nope": False}],
    "alarm_emails": [["not-an-email"], ["a@b"], ["two@@example.com"]],
    "alarm_topic_arn": ["arn:aws:sqs:us-east-1:123456789012:q", "ops", "arn:aws:sns:us-east-1:12345:ops"],
    "log_retention_days": [0, 2, 10000],
    "kms_key_arn": ["alias/aws/sqs", "arn:aws:kms:us-east-1:123456789012:alias/x", "1234abcd-12ab-34cd-56ef-1234567890ab"],
    "tags": [{"aws:createdBy": "me"}, {"": "v"}, {"k": "v" * 257}, {"k" * 129: "v"}],
}

# Good values beyond the defaults and the scenarios.
GOOD: dict[str, list] = {
    "name": ["a", "natmeter-prod_eu1", "x" * 40],
    "architecture": ["arm64", "x86_64"],
    "memory_size": [128, 10240],
    "timeout": [10, 900],
    "reserved_concurrent_executions": [-1, 0, 5],
    "nat_gateway_ids": [["nat-0a1b2c3d"], nat_ids(20)],
    "nat_gateway_keys": [None, ["a", "b", "c"], ["use1-az1", "us-east-1b", "gw_3"]],
    "flow_log_group_name": [None, "/aws/vpc-flow-log/vpc-0123456789abcdef0", "flow#logs.1"],
    "flow_log_format": ["${srcaddr} ${dstaddr} ${bytes}", "${bytes} ${packets} ${srcaddr} ${dstaddr} ${pkt-srcaddr}"],
    "flow_log_destination": ["cloudwatch", "s3"],
    "flow_log_bucket_name": [None, "abc", "natmeter-flow-logs-123456789012", "my.flow.logs", "a" * 63],
    "flow_log_file_format": ["parquet", "plain-text"],
    "flow_log_retention_days": [1, 90, 3650],
    "results_prefix": ["natmeter/results/", "r/", "flow-logs_natmeter.v1/out(1)/", "awslogs/x/"],
    "results_retention_days": [1, 400, 3650],
    "sqs_batch_size": [1, 10, 10000],
    "sqs_batching_window_seconds": [0, 30, 300],
    "eks_cluster_log_group_name": [None, "/aws/eks/shop-prod/cluster", "/aws/eks/a/cluster", "/aws/eks/My_Cluster-1/cluster", "/aws/eks/" + "x" * 100 + "/cluster"],
    "inventory_retention_hours": [1, 24, 168, 8760],
    "metric_namespace": [None, "NatMeter", "Team/NatMeter", "a" * 251],
    "price_per_gb": [None, 0.045, 0.059],
    "private_cidrs": [["10.0.0.0/8"], ["fd00::/8", "100.64.0.0/10"]],
    "subnets": [[], [{"cidr": "10.0.32.0/19", "az_id": "use1-az1"}, {"cidr": "2600:1f18:abcd:1200::/56", "az_id": "apne1-az4"}], [{"cidr": "10.0.64.0/20", "az_id": "usw2-lax1-az1"}]],
    "vpc_id": [None, "vpc-0a1b2c3d", "vpc-0a1b2c3d4e5f67890"],
    "ip_ranges_url": [None, "", "https://ip-ranges.amazonaws.com/ip-ranges.json", "http://10.0.0.5:8080/ip-ranges.json"],
    "sink": ["cloudwatch", "emf", "both"],
    "max_sources": [0, 20, 500],
    "min_source_share": [0, 0.05, 1],
    "daily_cost_alarm_usd": [0.01, 25],
    "anomaly_band_width": [1, 2.5, 10],
    "silent_failure_min_bytes": [0, 1048576],
    "maximum_event_age_seconds": [60, 3600, 21600],
    "min_coverage": [0.5, 0.8, 1],
    "coverage_min_bytes": [0, 104857600],
    "function_error_rate_percent": [0, 5, 99.9],
    "event_age_alarm_fraction": [0.1, 0.5, 0.99],
    "alarm_name_prefix": [None, "natmeter-prod-", "NAT/prod "],
    "alarm_enabled": [{}, {"hourly_cost_anomaly": False}, {"coverage": False, "silent_failure": True}],
    "alarm_emails": [[], ["finops@example.com", "a.b+nat@sub.example.org"]],
    "alarm_topic_arn": [None, "arn:aws:sns:us-east-1:123456789012:ops", "arn:aws-us-gov:sns:us-gov-west-1:123456789012:a.fifo"],
    "log_retention_days": [1, 30, 3653],
    "kms_key_arn": [None, "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
    "tags": [{}, {"team": "platform", "CostCenter": ""}],
}


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory) -> str:
    p = tmp_path_factory.mktemp("pkg") / "bootstrap.zip"
    p.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip archive
    return str(p)


def base_variables(zip_path: str) -> dict:
    return dict(SCENARIOS["vpc_flow_log_3_nats"], lambda_zip=zip_path)


def failing_validations(config: tfeval.Config, name: str, value, zip_path: str) -> list[str]:
    """Error messages of the validations of `name` that reject value. A condition
    that errors (instead of returning false) is reported as a problem."""
    variables = base_variables(zip_path)
    variables[name] = value
    ev = tfeval.Evaluator(config, variables)
    out = []
    for v in config.variables[name].blocks_of("validation"):
        try:
            ok = tfeval.to_bool(ev.expr(v.attributes["condition"], {}))
        except tfeval.EvalError as e:
            raise AssertionError(f"validation of {name} errors on {value!r} instead of rejecting it: {e}") from e
        if not ok:
            out.append(tfeval.literal(v.attributes["error_message"]))
    return out


@pytest.mark.parametrize("name,value", [(n, v) for n, vs in BAD.items() for v in vs], ids=lambda x: repr(x)[:40])
def test_bad_values_are_rejected(module_config, zip_path, name, value):
    assert failing_validations(module_config, name, value, zip_path), f"{name} = {value!r} passed validation"


def good_cases():
    cases = [(n, v) for n, vs in GOOD.items() for v in vs]
    for scenario in SCENARIOS.values():
        cases += [(n, v) for n, v in scenario.items() if n != "lambda_zip"]
    return cases


@pytest.mark.parametrize("name,value", good_cases(), ids=lambda x: repr(x)[:40])
def test_good_values_are_accepted(module_config, zip_path, name, value):
    assert failing_validations(module_config, name, value, zip_path) == []


def test_defaults_and_the_built_package_path_are_accepted(module_config, zip_path):
    ev = tfeval.Evaluator(module_config, base_variables(zip_path))
    for name in module_config.variables:
        assert failing_validations(module_config, name, ev.variables[name], zip_path) == [], name


def test_every_validated_variable_has_bad_examples(module_config):
    validated = {n for n, b in module_config.variables.items() if b.blocks_of("validation")}
    assert validated == set(BAD), f"add bad examples for {sorted(validated - set(BAD))}; stale: {sorted(set(BAD) - validated)}"
