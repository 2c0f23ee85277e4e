"""The S3 delivery path (issue 14 item 6): with flow_log_destination = "s3" the
module delivers the flow logs to a bucket (its own, or flow_log_bucket_name),
S3 notifies an SQS queue of every new object under AWSLogs/, an event source
mapping hands the messages to the function (ReportBatchItemFailures), whose
role may read the flow-log objects under AWSLogs/ only, read and write its
results under results_prefix only, consume that queue and use a table of
metered objects. There is no log group, no subscription filter and nothing
that reads one. With the default "cloudwatch" none of it exists, and the S3
variables change nothing.

The three environment variables are fixed by the contract below, which the
Rust side implements; `natmeter metrics --json` must declare them.
"""

from __future__ import annotations

import copy
import json
import re

import hcl2
import pytest

import cwsyntax as cw
import test_tf_contract as contract
import test_tf_dashboard as dash
import tfeval
from tfsupport import EKS_LOG_GROUP, INVENTORY_SCENARIOS, MODULE, REPO, SCENARIOS, evaluator, module_config

CONTRACT_CONFIG_VARIABLES = {"NATMETER_RESULTS_BUCKET", "NATMETER_RESULTS_PREFIX", "NATMETER_OBJECTS_TABLE"}

ACCOUNT = "123456789012"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EXISTING_BUCKET = "corp-vpc-flow-logs.us-east-1"


def _s3(base: str, **overrides) -> dict:
    variables = dict(SCENARIOS[base], flow_log_destination="s3", **overrides)
    variables.pop("flow_log_group_name", None)
    return variables


S3_SCENARIOS: dict[str, dict] = {
    # The module's bucket and its dedicated NAT flow logs (Parquet, the
    # defaults), keyed by AZ.
    "s3_dedicated_3_nats_keyed": _s3(
        "vpc_flow_log_3_nats", create_nat_flow_logs=True, nat_gateway_keys=["use1-az1", "use1-az2", "use1-az4"],
    ),
    # An existing bucket the user's own VPC flow log writes to, a customer
    # managed key, the EKS inventory (whose table doubles as the objects
    # table), larger batches with a window, text files with Hive prefixes (not
    # used: no dedicated flow logs), a results prefix of its own.
    "s3_existing_bucket_kms_inventory": _s3(
        "vpc_flow_log_3_nats", flow_log_bucket_name=EXISTING_BUCKET, kms_key_arn=KMS,
        eks_cluster_log_group_name=EKS_LOG_GROUP, sqs_batch_size=50, sqs_batching_window_seconds=5,
        results_prefix="metering/natmeter/", timeout=300, flow_log_file_format="plain-text",
        flow_log_hive_compatible_partitions=True,
    ),
    # The module's bucket, the user delivers there (no dedicated flow logs):
    # allowed, the README says how.
    "s3_own_bucket_user_delivers_20_nats": _s3("default_format_20_nats"),
    # Dedicated flow logs in plain text with Hive-compatible prefixes, a key,
    # emf only.
    "s3_dedicated_text_hive_kms_1_nat": _s3(
        "dedicated_nat_flow_logs_1_nat", flow_log_file_format="plain-text", flow_log_hive_compatible_partitions=True,
        flow_log_retention_days=14, results_retention_days=730,
    ),
}

S3_RESOURCES = [
    ("aws_s3_bucket", "flow_logs"),
    ("aws_s3_bucket_public_access_block", "flow_logs"),
    ("aws_s3_bucket_ownership_controls", "flow_logs"),
    ("aws_s3_bucket_server_side_encryption_configuration", "flow_logs"),
    ("aws_s3_bucket_lifecycle_configuration", "flow_logs"),
    ("aws_s3_bucket_policy", "flow_logs"),
    ("aws_s3_bucket_notification", "flow_logs"),
    ("aws_flow_log", "nat_s3"),
    ("aws_sqs_queue", "flow_log_objects"),
    ("aws_sqs_queue", "flow_log_objects_dlq"),
    ("aws_sqs_queue_policy", "flow_log_objects"),
    ("aws_lambda_event_source_mapping", "flow_log_objects"),
    ("aws_dynamodb_table", "objects"),
    ("aws_cloudwatch_metric_alarm", "failed_objects"),
]
BUCKET_CONFIG = [r for r in S3_RESOURCES if r[0].startswith("aws_s3_bucket") and r[0] != "aws_s3_bucket_notification"]
S3_OUTPUTS = [
    "flow_log_bucket_name", "flow_log_bucket_arn", "flow_log_queue_arn", "flow_log_dead_letter_queue_url",
    "results_prefix", "objects_table_name",
]


def cloudwatch_twin(name: str) -> tfeval.Evaluator:
    """The same deployment on the CloudWatch Logs path."""
    variables = dict(S3_SCENARIOS[name], flow_log_destination="cloudwatch")
    variables.pop("flow_log_bucket_name", None)
    if not variables.get("create_nat_flow_logs"):
        variables["flow_log_group_name"] = "/aws/vpc-flow-log/twin"
    return evaluator(variables)


@pytest.fixture(params=sorted(S3_SCENARIOS), scope="module")
def s3(request) -> tuple[str, tfeval.Evaluator]:
    return request.param, evaluator(S3_SCENARIOS[request.param])


def only(ev, type_: str, name: str) -> dict:
    (inst,) = ev.instances(type_, name)
    return inst


def statements(ev) -> list[dict]:
    return ev.data_instances("aws_iam_policy_document", "function")[0]["statement"]


U = tfeval.Unknown


def bucket_arn(ev):
    """The bucket's ARN as the module writes it: an existing bucket's from its
    name, the module's own known after apply."""
    name = ev.variables["flow_log_bucket_name"]
    return f"arn:aws:s3:::{name}" if name else U("aws_s3_bucket.flow_logs[0].arn")


def arn_text(ev) -> str:
    """The same inside a string (a template turns an unknown into its placeholder)."""
    return str(bucket_arn(ev))


class PlainEnvironment:
    """An evaluator whose function environment holds strings only, as Terraform
    would pass them: a value known after apply (the module's bucket name) as
    its placeholder text."""

    def __init__(self, ev):
        self._ev = ev
        self.variables = ev.variables

    def local(self, name):
        value = self._ev.local(name)
        return tfeval._plain(value) if name == "function_environment" else value

    def __getattr__(self, name):
        return getattr(self._ev, name)


def output(ev, name: str):
    return ev.expr(ev.config.outputs[name].attributes["value"], {})


def conditions(statement: dict) -> dict[tuple[str, str], list]:
    return {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}


def principals(statement: dict) -> list[tuple[str, list]]:
    return [(p["type"], p["identifiers"]) for p in statement.get("principals", [])]


def depends_on(type_: str, name: str) -> set[tuple[str, ...]]:
    block = module_config().resources[(type_, name)]
    return {r[:2] for r in tfeval.references(block.attributes["depends_on"])}


# ---------------------------------------------------------------------------
# The default path: nothing of S3
# ---------------------------------------------------------------------------


def test_the_cloudwatch_path_creates_nothing_of_s3(scenario):
    name, ev = scenario
    assert ev.variables["flow_log_destination"] == "cloudwatch"
    for type_, res in S3_RESOURCES:
        assert ev.instances(type_, res) == [], f"{name}: {type_}.{res} exists on the CloudWatch Logs path"
    assert ev.data_instances("aws_iam_policy_document", "flow_log_bucket") == []
    assert ev.data_instances("aws_iam_policy_document", "flow_log_queue") == []
    env = ev.local("function_environment")
    assert not CONTRACT_CONFIG_VARIABLES & set(env), f"{name}: {sorted(env)}"
    for s in statements(ev):
        assert not [a for a in s["actions"] if a.startswith("s3:") or a in ("sqs:ReceiveMessage", "sqs:DeleteMessage")], s
    for out in S3_OUTPUTS:
        assert output(ev, out) is None, f"{name}: output {out} is set on the CloudWatch Logs path"
    assert output(ev, "alarm_arns")["failed_objects"] is None
    body = ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"]
    assert "flow-log-objects" not in body and "Subscription delivery" in body
    (sub,) = ev.instances("aws_cloudwatch_log_subscription_filter", "flow_logs")
    assert sub["log_group_name"] == ev.local("source_log_group_name") != ""
    assert len(ev.instances("aws_lambda_permission", "logs")) == 1


@pytest.mark.parametrize("base", sorted(SCENARIOS))
def test_the_s3_variables_change_nothing_on_the_cloudwatch_path(base):
    """Every resource, data source and local of a CloudWatch Logs deployment is
    the same whatever the S3-only variables say: they are read on the S3 path
    only."""
    plain = evaluator(SCENARIOS[base])
    tuned = evaluator(dict(
        SCENARIOS[base], flow_log_destination="cloudwatch", flow_log_file_format="plain-text",
        flow_log_hive_compatible_partitions=True, flow_log_retention_days=7, results_prefix="x/",
        results_retention_days=9, sqs_batch_size=500, sqs_batching_window_seconds=60,
    ))

    def everything(ev) -> dict:
        out = {}
        for (t, n) in sorted(ev.config.resources):
            if t == "aws_lambda_function":
                continue  # its package hash needs a real file; its environment is compared below
            out[f"{t}.{n}"] = tfeval._plain(ev.instances(t, n))
        for (t, n) in sorted(ev.config.data_sources):
            if t == "aws_iam_policy_document":
                out[f"data.{t}.{n}"] = tfeval._plain(ev.data_instances(t, n))
        out["environment"] = ev.local("function_environment")
        return out

    assert everything(tuned) == everything(plain)


def test_the_subscription_filter_and_its_permission_keep_their_state_addresses():
    """Both became count = 0/1 for the S3 path: `moved` blocks keep the
    existing ones in the state instead of replacing them."""
    moves = set()
    for path in module_config().files:
        for block in hcl2.load(path.open()).get("moved", []):
            moves.add((block["from"].strip("${}"), block["to"].strip("${}")))
    for res in ("aws_cloudwatch_log_subscription_filter.flow_logs", "aws_lambda_permission.logs"):
        assert (res, f"{res}[0]") in moves, f"no moved block from {res} to {res}[0]"


# ---------------------------------------------------------------------------
# The bucket
# ---------------------------------------------------------------------------


def test_the_module_bucket_and_its_configuration(s3):
    name, ev = s3
    if ev.variables["flow_log_bucket_name"] is not None:
        for type_, res in BUCKET_CONFIG:
            assert ev.instances(type_, res) == [], f"{name}: the module must not configure an existing bucket ({type_})"
        assert ev.data_instances("aws_iam_policy_document", "flow_log_bucket") == []
        return
    bucket = only(ev, "aws_s3_bucket", "flow_logs")
    prefix = bucket["bucket_prefix"]
    assert len(prefix) <= 37, "bucket_prefix: at most 37 characters (the provider adds a 26-character suffix)"
    assert re.fullmatch(r"[a-z][a-z0-9-]*-", prefix), prefix
    assert prefix.startswith("natmeter-") and "bucket" not in bucket, "a generated, unique name: bucket names are global"
    assert bucket.get("force_destroy") is not True, "flow logs and results are data: a destroy must not empty the bucket"
    ref = U("aws_s3_bucket.flow_logs[0].id")

    pab = only(ev, "aws_s3_bucket_public_access_block", "flow_logs")
    assert pab == {"bucket": ref, "block_public_acls": True, "block_public_policy": True, "ignore_public_acls": True,
                   "restrict_public_buckets": True}
    own = only(ev, "aws_s3_bucket_ownership_controls", "flow_logs")
    assert own == {"bucket": ref, "rule": [{"object_ownership": "BucketOwnerEnforced"}]}

    (rule,) = only(ev, "aws_s3_bucket_server_side_encryption_configuration", "flow_logs")["rule"]
    (default,) = rule["apply_server_side_encryption_by_default"]
    if ev.variables["kms_key_arn"] is None:
        assert default == {"sse_algorithm": "AES256", "kms_master_key_id": None} and rule["bucket_key_enabled"] is False
    else:
        assert default == {"sse_algorithm": "aws:kms", "kms_master_key_id": ev.variables["kms_key_arn"]}
        assert rule["bucket_key_enabled"] is True

    lifecycle = only(ev, "aws_s3_bucket_lifecycle_configuration", "flow_logs")
    rules = {r["id"]: r for r in lifecycle["rule"]}
    assert set(rules) == {"flow-logs", "results"}
    for rid, prefix_, days in (("flow-logs", "AWSLogs/", ev.variables["flow_log_retention_days"]),
                               ("results", ev.variables["results_prefix"], ev.variables["results_retention_days"])):
        r = rules[rid]
        assert r["status"] == "Enabled"
        assert r["filter"] == [{"prefix": prefix_}], f"{rid} expires only its own prefix"
        assert r["expiration"] == [{"days": days}]
        assert r["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 1}]
    assert ev.variables["results_retention_days"] > ev.variables["flow_log_retention_days"], "results are kept longer by default"


def test_the_bucket_policy_is_the_documented_delivery_policy_and_tls_only(s3):
    name, ev = s3
    if ev.variables["flow_log_bucket_name"] is not None:
        return
    arn = arn_text(ev)
    (doc,) = ev.data_instances("aws_iam_policy_document", "flow_log_bucket")
    by_sid = {s["sid"]: s for s in doc["statement"]}
    assert set(by_sid) == {"AWSLogDeliveryWrite", "AWSLogDeliveryAclCheck", "DenyInsecureTransport"}
    source = {
        ("StringEquals", "aws:SourceAccount"): [ACCOUNT],
        ("ArnLike", "aws:SourceArn"): [f"arn:aws:logs:us-east-1:{ACCOUNT}:*"],
    }

    write = by_sid["AWSLogDeliveryWrite"]
    assert write.get("effect", "Allow") == "Allow"
    assert principals(write) == [("Service", ["delivery.logs.amazonaws.com"])]
    assert write["actions"] == ["s3:PutObject"]
    assert write["resources"] == [f"{arn}/AWSLogs/{ACCOUNT}/*", f"{arn}/AWSLogs/aws-account-id={ACCOUNT}/*"], (
        "writes only where this account's flow logs write, in either prefix style"
    )
    assert conditions(write) == {("StringEquals", "s3:x-amz-acl"): ["bucket-owner-full-control"], **source}

    acl = by_sid["AWSLogDeliveryAclCheck"]
    assert principals(acl) == [("Service", ["delivery.logs.amazonaws.com"])]
    assert acl["actions"] == ["s3:GetBucketAcl", "s3:ListBucket"] and acl["resources"] == [bucket_arn(ev)]
    assert conditions(acl) == source

    deny = by_sid["DenyInsecureTransport"]
    assert deny["effect"] == "Deny" and deny["actions"] == ["s3:*"] and principals(deny) == [("*", ["*"])]
    assert deny["resources"] == [bucket_arn(ev), f"{arn}/*"]
    assert conditions(deny) == {("Bool", "aws:SecureTransport"): ["false"]}

    policy = only(ev, "aws_s3_bucket_policy", "flow_logs")
    assert policy["policy"] == U("aws_iam_policy_document.flow_log_bucket[0].json")
    assert ("aws_s3_bucket_public_access_block", "flow_logs") in depends_on("aws_s3_bucket_policy", "flow_logs")


# ---------------------------------------------------------------------------
# The dedicated NAT flow logs into the bucket
# ---------------------------------------------------------------------------


def test_the_dedicated_flow_logs_go_to_the_bucket(s3):
    name, ev = s3
    logs = ev.instances_by_key("aws_flow_log", "nat_s3")
    assert ev.instances("aws_flow_log", "nat") == [], "no CloudWatch Logs flow log on the S3 path"
    assert ev.instances("aws_cloudwatch_log_group", "nat_flow_logs") == []
    assert ev.instances("aws_iam_role", "flow_logs") == [] and ev.instances("aws_iam_role_policy", "flow_logs") == []
    if not ev.variables["create_nat_flow_logs"]:
        assert logs == {}
        return
    assert list(logs) == sorted(ev.local("nat_keys")), "keyed like aws_flow_log.nat: nat_gateway_keys or the IDs"
    # The same flow logs on the CloudWatch Logs path, for comparison.
    cw_logs = cloudwatch_twin(name).instances_by_key("aws_flow_log", "nat")
    assert list(cw_logs) == list(logs)
    for key, fl in logs.items():
        i = ev.local("nat_index")[key]
        assert fl["eni_id"] == f"eni-{int(ev.variables['nat_gateway_ids'][i][4:], 16) + 0xA0:017x}"
        assert fl["traffic_type"] == "ALL"
        assert fl["log_destination_type"] == "s3"
        assert fl["log_destination"] == bucket_arn(ev), "the bucket's root: keys start with AWSLogs/"
        assert "iam_role_arn" not in fl, "S3 delivery uses the bucket policy, not a role"
        assert fl["max_aggregation_interval"] == 60
        assert fl["log_format"] == cw_logs[key]["log_format"] == ev.local("nat_flow_log_format"), "the same format as the CloudWatch path"
        assert fl["destination_options"] == [{
            "file_format": ev.variables["flow_log_file_format"],
            "hive_compatible_partitions": ev.variables["flow_log_hive_compatible_partitions"],
            "per_hour_partition": True,
        }]
        assert fl["tags"] == cw_logs[key]["tags"]
    assert ev.variables["flow_log_file_format"] == ("parquet" if name == "s3_dedicated_3_nats_keyed" else "plain-text")
    assert ("aws_s3_bucket_policy", "flow_logs") in depends_on("aws_flow_log", "nat_s3"), (
        "the delivery policy must be in place before a flow log is created"
    )


def test_the_format_defaults_to_parquet_without_hive_prefixes():
    cfg = module_config()
    assert tfeval.literal(cfg.variables["flow_log_file_format"].attributes["default"]) == "parquet"
    assert tfeval.literal(cfg.variables["flow_log_hive_compatible_partitions"].attributes["default"]) is False
    assert tfeval.literal(cfg.variables["flow_log_destination"].attributes["default"]) == "cloudwatch"
    assert tfeval.literal(cfg.variables["results_prefix"].attributes["default"]) == "natmeter/results/"
    assert tfeval.literal(cfg.variables["sqs_batch_size"].attributes["default"]) == 10


# ---------------------------------------------------------------------------
# S3 -> SQS -> the function
# ---------------------------------------------------------------------------


def test_the_queue_and_its_dead_letter_queue(s3):
    name, ev = s3
    queue = only(ev, "aws_sqs_queue", "flow_log_objects")
    dlq = only(ev, "aws_sqs_queue", "flow_log_objects_dlq")
    timeout, window = ev.variables["timeout"], ev.variables["sqs_batching_window_seconds"]
    assert queue["visibility_timeout_seconds"] == 6 * timeout + window, "Lambda's guide: at least 6 x the timeout, plus the window"
    assert 6 * timeout <= queue["visibility_timeout_seconds"] <= 43200
    redrive = json.loads(queue["redrive_policy"])
    assert redrive == {"deadLetterTargetArn": str(tfeval.Unknown("aws_sqs_queue.flow_log_objects_dlq[0].arn")), "maxReceiveCount": 5}
    assert dlq["message_retention_seconds"] == 1209600 > queue["message_retention_seconds"], (
        "a moved message keeps its enqueue time: the dead-letter queue must keep longer"
    )
    for q in (queue, dlq):
        if ev.variables["kms_key_arn"] is None:
            assert q["sqs_managed_sse_enabled"] is True and q["kms_master_key_id"] is None
        else:
            assert q["kms_master_key_id"] == ev.variables["kms_key_arn"] and q["sqs_managed_sse_enabled"] is None
        assert q["tags"] == ev.variables["tags"]
        assert len(q["name"]) <= 80
    assert queue["name"] == f"{ev.variables['name']}-flow-log-objects"
    assert dlq["name"] == f"{ev.variables['name']}-flow-log-objects-dlq"


def test_only_s3_for_this_bucket_and_account_may_send_to_the_queue(s3):
    name, ev = s3
    (doc,) = ev.data_instances("aws_iam_policy_document", "flow_log_queue")
    (statement,) = doc["statement"]
    assert statement.get("effect", "Allow") == "Allow"
    assert principals(statement) == [("Service", ["s3.amazonaws.com"])]
    assert statement["actions"] == ["sqs:SendMessage"]
    assert statement["resources"] == [tfeval.Unknown("aws_sqs_queue.flow_log_objects[0].arn")]
    assert conditions(statement) == {
        ("ArnEquals", "aws:SourceArn"): [bucket_arn(ev)],
        ("StringEquals", "aws:SourceAccount"): [ACCOUNT],
    }
    policy = only(ev, "aws_sqs_queue_policy", "flow_log_objects")
    assert policy == {
        "queue_url": tfeval.Unknown("aws_sqs_queue.flow_log_objects[0].url"),
        "policy": U("aws_iam_policy_document.flow_log_queue[0].json"),
    }


def test_the_bucket_notifies_the_queue_of_flow_log_objects_only(s3):
    name, ev = s3
    note = only(ev, "aws_s3_bucket_notification", "flow_logs")
    existing = ev.variables["flow_log_bucket_name"]
    assert note["bucket"] == (existing or tfeval.Unknown("aws_s3_bucket.flow_logs[0].id"))
    (queue,) = note["queue"]
    assert queue["queue_arn"] == tfeval.Unknown("aws_sqs_queue.flow_log_objects[0].arn")
    assert queue["events"] == ["s3:ObjectCreated:*"]
    assert queue["filter_prefix"] == "AWSLogs/"
    assert "filter_suffix" not in queue, "one suffix per rule cannot cover both .log.gz and .log.parquet"
    assert "lambda_function" not in note and "topic" not in note
    assert not ev.variables["results_prefix"].startswith(queue["filter_prefix"]), "results must never invoke the function"
    assert ("aws_sqs_queue_policy", "flow_log_objects") in depends_on("aws_s3_bucket_notification", "flow_logs"), (
        "S3 tests the destination when the configuration is saved: the queue policy first"
    )


def test_an_existing_bucket_can_keep_its_own_notification_configuration():
    ev = evaluator(dict(S3_SCENARIOS["s3_existing_bucket_kms_inventory"], create_flow_log_bucket_notification=False))
    assert ev.instances("aws_s3_bucket_notification", "flow_logs") == []
    assert output(ev, "flow_log_queue_arn") == tfeval.Unknown("aws_sqs_queue.flow_log_objects[0].arn"), (
        "the queue to add to the bucket's own configuration"
    )
    assert len(ev.instances("aws_lambda_event_source_mapping", "flow_log_objects")) == 1


def test_the_event_source_mapping_reports_batch_item_failures(s3):
    name, ev = s3
    esm = only(ev, "aws_lambda_event_source_mapping", "flow_log_objects")
    assert esm["event_source_arn"] == tfeval.Unknown("aws_sqs_queue.flow_log_objects[0].arn")
    assert esm["function_name"] == tfeval.Unknown("aws_lambda_function.this.arn")
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]
    assert esm["batch_size"] == ev.variables["sqs_batch_size"]
    assert esm["maximum_batching_window_in_seconds"] == ev.variables["sqs_batching_window_seconds"]
    assert esm["enabled"] is True
    assert "starting_position" not in esm, "SQS takes no starting position"
    assert ("aws_iam_role_policy", "function") in depends_on("aws_lambda_event_source_mapping", "flow_log_objects"), (
        "CreateEventSourceMapping checks that the role may receive from the queue"
    )
    assert ev.instances("aws_lambda_permission", "logs") == [], "the mapping uses the role: no resource policy"


# ---------------------------------------------------------------------------
# The function: IAM, environment, objects table
# ---------------------------------------------------------------------------


def test_the_role_reads_flow_logs_only_under_awslogs_and_writes_only_results(s3):
    name, ev = s3
    arn = arn_text(ev)
    by_sid = {s["sid"]: s for s in statements(ev)}
    s3_statements = [s for s in statements(ev) if any(a.startswith("s3:") for a in s["actions"])]
    assert {s["sid"] for s in s3_statements} == {"FlowLogObjects", "OwnResults"}

    read = by_sid["FlowLogObjects"]
    assert read["actions"] == ["s3:GetObject"]
    assert read["resources"] == [f"{arn}/AWSLogs/*"], "GetObject on the flow-log prefix only"
    assert f"{arn}/*" not in read["resources"]
    results = by_sid["OwnResults"]
    assert results["actions"] == ["s3:GetObject", "s3:PutObject"]
    assert results["resources"] == [f"{arn}/{ev.variables['results_prefix']}*"]
    for s in s3_statements:
        assert "condition" not in s
        for r in s["resources"]:
            assert r.startswith(arn + "/") and not r.endswith(arn + "/*") and r != arn, f"{s['sid']}: {r} is wider than a prefix"

    queue = by_sid["OwnFlowLogObjectQueue"]
    assert queue["actions"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    assert queue["resources"] == [tfeval.Unknown("aws_sqs_queue.flow_log_objects[0].arn")]

    table = by_sid["OwnObjectsTable"]
    assert table["actions"] == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    expected_table = "inventory" if ev.variables["eks_cluster_log_group_name"] else "objects"
    assert table["resources"] == [tfeval.Unknown(f"aws_dynamodb_table.{expected_table}[0].arn")]

    if ev.variables["kms_key_arn"]:
        assert by_sid["CustomerManagedKey"]["actions"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert by_sid["CustomerManagedKey"]["resources"] == [ev.variables["kms_key_arn"]]
    else:
        assert "CustomerManagedKey" not in by_sid
    for s in statements(ev):
        assert not any(a.endswith("*") for a in s["actions"]), s
        if s["resources"] == ["*"]:
            assert s["actions"] == ["cloudwatch:PutMetricData"] or s["sid"] == "DescribeNatTopology"


def test_the_function_is_told_the_bucket_the_prefix_and_the_table(s3):
    name, ev = s3
    env = ev.local("function_environment")
    existing = ev.variables["flow_log_bucket_name"]
    assert env["NATMETER_RESULTS_BUCKET"] == (existing or tfeval.Unknown("aws_s3_bucket.flow_logs[0].bucket"))
    assert env["NATMETER_RESULTS_PREFIX"] == ev.variables["results_prefix"]
    table = "inventory" if ev.variables["eks_cluster_log_group_name"] else "objects"
    assert env["NATMETER_OBJECTS_TABLE"] == only(ev, "aws_dynamodb_table", table)["name"]
    assert env["NATMETER_LOG_FORMAT"] == ev.local("log_format"), "a fallback only: S3 text files carry a header"
    contract.test_environment_fits_lambdas_4kb((name, PlainEnvironment(ev)))
    contract.test_put_metric_data_is_limited_to_the_namespace((name, ev))


def test_the_objects_table_has_the_inventory_schema_or_is_the_inventory_table(s3):
    name, ev = s3
    objects = ev.instances("aws_dynamodb_table", "objects")
    if ev.variables["eks_cluster_log_group_name"]:
        assert objects == [], "the inventory table is used when there is one"
        return
    (table,) = objects
    inventory = evaluator(dict(S3_SCENARIOS[name], eks_cluster_log_group_name=EKS_LOG_GROUP))
    (reference,) = inventory.instances("aws_dynamodb_table", "inventory")
    assert table["name"] == f"{ev.variables['name']}-objects"
    assert {k: v for k, v in table.items() if k != "name"} == {k: v for k, v in reference.items() if k != "name"}, (
        "pk/sk strings, TTL expires_at, on demand, PITR, the same encryption"
    )
    assert (table["hash_key"], table["range_key"]) == ("pk", "sk")
    assert table["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
    assert table["billing_mode"] == "PAY_PER_REQUEST" and table["point_in_time_recovery"] == [{"enabled": True}]


# ---------------------------------------------------------------------------
# No log group on the S3 path; dashboard and alarms
# ---------------------------------------------------------------------------


def test_no_log_group_no_subscription_and_nothing_reads_one(s3):
    name, ev = s3
    assert ev.instances("aws_cloudwatch_log_subscription_filter", "flow_logs") == []
    assert ev.instances("aws_lambda_permission", "logs") == []
    assert ev.instances("aws_cloudwatch_log_group", "nat_flow_logs") == []
    assert output(ev, "source_log_group_name") is None and output(ev, "subscription_filter_pattern") is None
    for key in ("delivery_errors", "delivery_throttling"):
        assert ev.instances("aws_cloudwatch_metric_alarm", key) == [], f"{key} watches a subscription"
    text = ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"]
    assert ev.local("subscription_name") not in text, "the dashboard reads no flow-log subscription on the S3 path"
    for use in contract.metric_uses(ev):
        if use.namespace == "AWS/Logs":
            # Only the EKS audit log's group and filter (the inventory's widget).
            assert ev.variables["eks_cluster_log_group_name"], use.where
            assert use.dimensions.get("LogGroupName") in (None, ev.variables["eks_cluster_log_group_name"]), use.where
            assert use.dimensions.get("FilterName") in (None, ev.local("eks_audit_subscription_name")), use.where
    for _, alarm in contract.alarms(ev):
        for use in cw.alarm_queries("alarm", alarm).metrics:
            assert use.namespace != "AWS/Logs", alarm["alarm_name"]
        assert "subscription filter" not in alarm["alarm_description"], alarm["alarm_name"]
        assert len(alarm["alarm_description"]) <= 1024


def test_the_dashboard_shows_the_object_queues_instead_of_the_subscription(s3):
    name, ev = s3
    widgets = json.loads(ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"])["widgets"]
    (w,) = [w for w in widgets if w["properties"].get("title", "").startswith("Flow-log objects from S3")]
    uses = cw.widget_queries("objects", w["properties"]).metrics
    queue, dlq = f"{ev.variables['name']}-flow-log-objects", f"{ev.variables['name']}-flow-log-objects-dlq"
    assert {(u.name, u.dimensions["QueueName"]) for u in uses} == {
        ("NumberOfMessagesSent", queue), ("ApproximateNumberOfMessagesVisible", queue),
        ("ApproximateNumberOfMessagesNotVisible", queue), ("ApproximateNumberOfMessagesVisible", dlq),
        ("ApproximateAgeOfOldestMessage", queue),
    }
    # Where the subscription widget is on the CloudWatch path, same size.
    cw_widgets = json.loads(cloudwatch_twin(name).instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"])["widgets"]
    (sub,) = [x for x in cw_widgets if x["properties"].get("title", "").startswith("Subscription delivery")]
    assert {k: w[k] for k in ("x", "y", "width", "height")} == {k: sub[k] for k in ("x", "y", "width", "height")}
    assert len(widgets) == len(cw_widgets)
    headers = [x["properties"]["markdown"] for x in widgets if x["type"] == "text" and "Processor health" in x["properties"]["markdown"]]
    assert headers and queue in headers[0]


DASHBOARD_CHECKS = [
    "test_body_is_json_within_limits",
    "test_widgets_are_well_formed",
    "test_widgets_do_not_overlap",
    "test_alarm_widget_shows_every_alarm",
    "test_insight_rule_widgets_name_the_module_rules",
    "test_coverage_widget_has_one_ratio_per_gateway",
    "test_every_metric_widget_keeps_its_own_period_in_utc",
    "test_metrics_insights_widgets_say_they_cover_two_weeks_at_most",
    "test_today_and_this_month_have_their_own_aligned_ranges",
    "test_widgets_stay_within_getmetricdata_datapoints",
    "test_header_states_utc_and_the_s3_dynamodb_share_is_labelled_honestly",
]


@pytest.mark.parametrize("check", DASHBOARD_CHECKS)
def test_the_dashboard_checks_hold_on_the_s3_path(s3, check):
    getattr(dash, check)(s3)


def test_the_same_natmeter_metrics_on_both_paths(s3):
    """Dashboard and alarms read the same metrics of this instance's namespace
    on either path; only AWS's own delivery metrics differ."""
    name, ev = s3
    cw_ev = cloudwatch_twin(name)

    def ours(e):
        ns = e.local("metric_namespace")
        return sorted({(u.name, u.dimension_set) for u in contract.metric_uses(e) if u.namespace == ns}, key=str)

    assert ours(ev) == ours(cw_ev) and ours(ev)


def test_every_metric_read_on_the_s3_path_is_one_the_function_emits(s3, metric_model):
    model = metric_model
    if S3_SCENARIOS[s3[0]].get("eks_cluster_log_group_name"):
        import test_tf_inventory as inv
        model = inv.model_with_the_contract(metric_model)
    contract.test_every_metric_read_is_one_the_function_emits(s3, model)


def test_the_failed_objects_alarm(s3):
    name, ev = s3
    alarm = only(ev, "aws_cloudwatch_metric_alarm", "failed_objects")
    prefix = ev.local("alarm_prefix")
    assert alarm["alarm_name"] == f"{prefix}failed-flow-log-objects"
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum")
    assert alarm["dimensions"] == {"QueueName": f"{ev.variables['name']}-flow-log-objects-dlq"}
    assert (alarm["comparison_operator"], alarm["threshold"], alarm["treat_missing_data"]) == ("GreaterThanThreshold", 0, "notBreaching")
    assert alarm["alarm_actions"] == alarm["ok_actions"] == [ev.local("alarm_topic_arn")]
    assert output(ev, "alarm_arns")["failed_objects"] == tfeval.Unknown("aws_cloudwatch_metric_alarm.failed_objects[0].arn")
    off = evaluator(dict(S3_SCENARIOS[name], alarm_enabled={"failed_objects": False}))
    assert off.instances("aws_cloudwatch_metric_alarm", "failed_objects") == []


# ---------------------------------------------------------------------------
# Inconsistent settings
# ---------------------------------------------------------------------------


def _precondition_failures(variables: dict, resource=("aws_lambda_function", "this")) -> list[str]:
    ev = evaluator(variables)
    block = module_config().resources[resource]
    out = []
    for lc in block.blocks_of("lifecycle"):
        for pc in lc.blocks_of("precondition"):
            if not tfeval.to_bool(ev.expr(pc.attributes["condition"], {})):
                out.append(tfeval.literal(pc.attributes["error_message"]))
    return out


@pytest.mark.parametrize("name", sorted(S3_SCENARIOS))
def test_every_s3_scenario_passes_the_preconditions(name):
    assert _precondition_failures(S3_SCENARIOS[name]) == []
    assert _precondition_failures(S3_SCENARIOS[name], ("aws_lambda_event_source_mapping", "flow_log_objects")) == []


def test_a_log_group_on_the_s3_path_is_refused():
    (msg,) = _precondition_failures(dict(S3_SCENARIOS["s3_own_bucket_user_delivers_20_nats"], flow_log_group_name="vpc-flow-logs"))
    assert "flow_log_group_name" in msg and "flow_log_destination" in msg


def test_a_bucket_on_the_cloudwatch_path_is_refused():
    (msg,) = _precondition_failures(dict(SCENARIOS["vpc_flow_log_3_nats"], flow_log_bucket_name=EXISTING_BUCKET))
    assert "flow_log_bucket_name" in msg and 'flow_log_destination = "s3"' in msg


def test_the_module_bucket_always_notifies_its_queue():
    (msg,) = _precondition_failures(dict(S3_SCENARIOS["s3_dedicated_3_nats_keyed"], create_flow_log_bucket_notification=False))
    assert "create_flow_log_bucket_notification" in msg and "flow_log_bucket_name" in msg


def test_the_s3_path_without_dedicated_flow_logs_or_a_bucket_is_fine():
    """The module creates the bucket and its delivery policy; the user points
    a flow log of their own at it (output flow_log_bucket_arn)."""
    variables = S3_SCENARIOS["s3_own_bucket_user_delivers_20_nats"]
    assert not variables.get("create_nat_flow_logs") and "flow_log_bucket_name" not in variables
    assert _precondition_failures(variables) == []
    ev = evaluator(variables)
    assert output(ev, "flow_log_bucket_arn") == tfeval.Unknown("aws_s3_bucket.flow_logs[0].arn")
    assert ev.instances("aws_flow_log", "nat_s3") == []


@pytest.mark.parametrize("batch,window,ok", [(10, 0, True), (11, 0, False), (11, 1, True), (10000, 300, True)])
def test_batches_above_10_need_a_batching_window(batch, window, ok):
    variables = dict(S3_SCENARIOS["s3_dedicated_3_nats_keyed"], sqs_batch_size=batch, sqs_batching_window_seconds=window)
    failures = _precondition_failures(variables, ("aws_lambda_event_source_mapping", "flow_log_objects"))
    assert (failures == []) == ok, failures
    if not ok:
        assert "sqs_batching_window_seconds" in failures[0]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_cloudwatch_scenarios_pass_the_new_preconditions(name):
    assert _precondition_failures(SCENARIOS[name]) == []


# ---------------------------------------------------------------------------
# Outputs, the contract with the function, documentation
# ---------------------------------------------------------------------------


def test_outputs(s3):
    name, ev = s3
    existing = ev.variables["flow_log_bucket_name"]
    assert output(ev, "flow_log_bucket_name") == (existing or tfeval.Unknown("aws_s3_bucket.flow_logs[0].bucket"))
    assert output(ev, "flow_log_bucket_arn") == (bucket_arn(ev) if existing else tfeval.Unknown("aws_s3_bucket.flow_logs[0].arn"))
    assert output(ev, "flow_log_queue_arn") == tfeval.Unknown("aws_sqs_queue.flow_log_objects[0].arn")
    assert output(ev, "flow_log_dead_letter_queue_url") == tfeval.Unknown("aws_sqs_queue.flow_log_objects_dlq[0].url")
    assert output(ev, "results_prefix") == ev.variables["results_prefix"]
    assert output(ev, "objects_table_name") == ev.local("function_environment")["NATMETER_OBJECTS_TABLE"]
    ids = output(ev, "nat_flow_log_ids")
    assert set(ids) == (set(ev.local("nat_keys")) if ev.variables["create_nat_flow_logs"] else set())


def test_the_binary_reads_the_s3_settings(metric_model):
    missing = CONTRACT_CONFIG_VARIABLES - set(metric_model["config_variables"])
    assert not missing, f"config_variables lacks {sorted(missing)}"


def _model_with_the_contract(model: dict) -> dict:
    out = copy.deepcopy(model)
    out["config_variables"] += sorted(CONTRACT_CONFIG_VARIABLES - set(out["config_variables"]))
    return out


def test_the_environment_is_what_the_function_reads_once_it_declares_the_contract(s3, metric_model):
    """test_tf_contract's environment check on the S3 deployments, against the
    binary's model completed with the three variables (and the inventory's
    where it is on): the module passes as soon as the Rust side declares
    them; without them it would not."""
    import test_tf_inventory as inv

    model = _model_with_the_contract(inv.model_with_the_contract(metric_model))
    plain = (s3[0], PlainEnvironment(s3[1]))
    contract.test_environment_variables_are_ones_the_function_reads(plain, model)
    without = copy.deepcopy(model)
    without["config_variables"].remove("NATMETER_OBJECTS_TABLE")
    with pytest.raises(AssertionError, match="NATMETER_OBJECTS_TABLE"):
        contract.test_environment_variables_are_ones_the_function_reads(plain, without)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    rest = text[start + len(heading):]
    level = heading.split(" ")[0]
    m = re.search(rf"^{level} ", rest, re.M)
    return text[start: start + len(heading) + (m.start() if m else len(rest))]


def test_the_module_readme_documents_the_s3_path():
    section = _section((MODULE / "README.md").read_text(), "## Delivering flow logs to S3")
    for needle in (
        "flow_log_destination", "flow_log_bucket_name", "create_flow_log_bucket_notification", "flow_log_file_format",
        "flow_log_hive_compatible_partitions", "flow_log_retention_days", "results_prefix", "results_retention_days",
        "sqs_batch_size", "sqs_batching_window_seconds", "AWSLogs/", "s3:ObjectCreated:*", "ReportBatchItemFailures",
        "delivery.logs.amazonaws.com", "bucket-owner-full-control", "aws:SourceArn", "aws:SourceAccount",
        "aws:SecureTransport", "NATMETER_RESULTS_BUCKET", "NATMETER_RESULTS_PREFIX", "NATMETER_OBJECTS_TABLE",
        "s3:GetObject", "s3:PutObject", "sqs:ReceiveMessage", "dynamodb:GetItem", "CKV_AWS_21", "failed_objects",
        "hour=YYYY-MM-DDTHH/nat_gateway=<id>/<hash>.json", "six times", "kms_key_arn", "s3.amazonaws.com",
    ):
        assert needle in section, f"the README's S3 section must mention {needle!r}"


def test_operations_documents_the_s3_path():
    text = (REPO / "docs" / "operations.md").read_text()
    section = text[text.index("## 5. The S3 delivery path"):]
    for needle in ("<results_prefix>", "hour=YYYY-MM-DDTHH/nat_gateway=<id>/<hash>.json", "AWSLogs/*", "ReportBatchItemFailures",
                   "dead-letter", "NATMETER_OBJECTS_TABLE"):
        assert needle in section, f"docs/operations.md's S3 section must mention {needle!r}"


@pytest.mark.parametrize("destination", ["cloudwatch", "s3"])
def test_the_nat_flow_logs_example_passes_the_destination_and_its_key_allows_it(destination):
    from tfsupport import INFRA

    cfg = tfeval.load_config(INFRA / "examples" / "nat-flow-logs")
    world = {
        ("aws_caller_identity", "current"): lambda i: {"account_id": ACCOUNT},
        ("aws_partition", "current"): lambda i: {"partition": "aws"},
    }
    ev = tfeval.Evaluator(cfg, {"nat_gateway_ids": ["nat-0a1b2c3d4e5f67890"], "flow_log_destination": destination}, world)
    call = cfg.module_calls["natmeter"]
    assert ev.expr(call.attributes["flow_log_destination"], {}) == destination
    (key,) = ev.data_instances("aws_iam_policy_document", "key")
    by_sid = {s["sid"]: s for s in key["statement"]}
    s3_sids = {"FlowLogDeliveryEncrypts", "S3NotifiesEncryptedQueue"}
    if destination == "cloudwatch":
        assert not s3_sids & set(by_sid), "the CloudWatch Logs example's key policy is unchanged"
        return
    assert principals(by_sid["FlowLogDeliveryEncrypts"]) == [("Service", ["delivery.logs.amazonaws.com"])]
    assert principals(by_sid["S3NotifiesEncryptedQueue"]) == [("Service", ["s3.amazonaws.com"])]
    assert set(by_sid["S3NotifiesEncryptedQueue"]["actions"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    for sid in s3_sids:
        assert conditions(by_sid[sid]) == {("StringEquals", "aws:SourceAccount"): [ACCOUNT]}
