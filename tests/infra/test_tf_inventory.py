"""The optional EKS workload inventory (issue 13, item 6): with
eks_cluster_log_group_name the module subscribes the function to the pod and
node events of the cluster's audit log (a second subscription filter, with a
JSON pattern), gives it a DynamoDB table and IAM on that table only, a
Contributor Insights rule over workloads and dashboard widgets by namespace
and workload; without it, none of that exists.

The subscription filter's pattern is evaluated by cwsyntax.json_pattern_matches
(the JSON filter pattern syntax of the CloudWatch Logs user guide, "Filter
pattern syntax for metric filters, subscription filters, filter log events, and
Live Tail") on audit events shaped as EKS writes them: one audit.k8s.io/v1
Event per log event, stage ResponseComplete, empty fields omitted.

The metrics, variables and detail-line fields the inventory adds are fixed by
the contract below, which the Rust side implements in `natmeter metrics
--json`. The tests that compare the module with the binary say "xfail" while
the binary declares none of them, and become ordinary checks as soon as it
declares any.
"""

from __future__ import annotations

import copy
import json
import re

import pytest

import cwsyntax as cw
import test_tf_contract as contract
import test_tf_dashboard as dash
import tfeval
from tfsupport import EKS_LOG_GROUP, INFRA, INVENTORY_SCENARIOS, MODULE, SCENARIOS, evaluator, module_config

# ---------------------------------------------------------------------------
# The contract with the Rust side (issue 13)
# ---------------------------------------------------------------------------

CONTRACT_CONFIG_VARIABLES = {"NATMETER_INVENTORY_TABLE", "NATMETER_INVENTORY_RETENTION_HOURS"}
CONTRACT_METRICS: dict[str, list[frozenset[str]]] = {
    "NatBytes": [frozenset({"Namespace"}), frozenset({"Namespace", "Workload"})],
    "NatCost": [frozenset({"Namespace"}), frozenset({"Namespace", "Workload"})],
    "NatNodeBytes": [frozenset()],
    "NatUnresolvedBytes": [frozenset()],
}
CONTRACT_DETAIL_FIELDS = {"Namespace", "Workload", "Pod", "Node"}

TABLE_ACTIONS = ["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan"]

INVENTORY_RESOURCES = [
    ("aws_dynamodb_table", "inventory"),
    ("aws_lambda_permission", "eks_audit"),
    ("aws_cloudwatch_log_subscription_filter", "eks_audit"),
    ("aws_cloudwatch_contributor_insight_rule", "top_workloads"),
    ("terraform_data", "workload_rule_definition"),
]


@pytest.fixture(params=sorted(INVENTORY_SCENARIOS), scope="module")
def inventory(request) -> tuple[str, tfeval.Evaluator]:
    return request.param, evaluator(INVENTORY_SCENARIOS[request.param])


def model_declares_inventory(model: dict) -> bool:
    """Whether `natmeter metrics --json` declares any part of the inventory
    contract: a variable, a metric or dimension set, a detail-line field."""
    metrics = contract.model_metrics(model)
    return bool(
        CONTRACT_CONFIG_VARIABLES & set(model["config_variables"])
        or any(n in metrics and set(sets) & set(metrics[n]) for n, sets in CONTRACT_METRICS.items())
        or CONTRACT_DETAIL_FIELDS & set(model["source_detail_line"]["fields"])
    )


def require_inventory_in_model(model: dict) -> None:
    if not model_declares_inventory(model):
        pytest.xfail(
            "`natmeter metrics --json` declares nothing of the EKS inventory yet (NATMETER_INVENTORY_TABLE, "
            "NatNodeBytes, NatBytes by Namespace, the Namespace/Workload detail fields): the Rust side of issue 13 "
            "has not landed in this binary"
        )


def dashboard_widgets(ev) -> list[dict]:
    return json.loads(ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"])["widgets"]


def inventory_widgets(ev) -> list[dict]:
    return [w for w in dashboard_widgets(ev) if w["y"] >= 27 and w["y"] < 27 + ev.local("inv_dy")]


# ---------------------------------------------------------------------------
# Without the variable: nothing
# ---------------------------------------------------------------------------


def test_without_the_variable_nothing_of_the_inventory_exists(scenario):
    name, ev = scenario
    assert ev.variables["eks_cluster_log_group_name"] is None
    for type_, res in INVENTORY_RESOURCES:
        assert ev.instances(type_, res) == [], f"{name}: {type_}.{res} exists without eks_cluster_log_group_name"
    env = ev.local("function_environment")
    assert not [k for k in env if k.startswith("NATMETER_INVENTORY")], f"{name}: {sorted(env)}"
    doc = ev.data_instances("aws_iam_policy_document", "function")[0]
    assert not [s for s in doc["statement"] if any(a.startswith("dynamodb:") for a in s["actions"])]
    body = ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"]
    for word in ("Namespace", "Workload", "NatNodeBytes", "NatUnresolvedBytes", "top-workloads", "/aws/eks/"):
        assert word not in body, f"{name}: the dashboard mentions {word} without the inventory"
    assert ev.local("inv_dy") == 0
    filters = [f for t, n in ev.config.resources if t == "aws_cloudwatch_log_subscription_filter" for f in ev.instances(t, n)]
    assert len(filters) == 1, "one subscription filter: the flow log group's"


# ---------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------


def _rejections(name: str, value) -> list[str]:
    variables = dict(SCENARIOS["vpc_flow_log_3_nats"], **{name: value})
    ev = tfeval.Evaluator(module_config(), variables)
    return [
        tfeval.literal(v.attributes["error_message"])
        for v in module_config().variables[name].blocks_of("validation")
        if not tfeval.to_bool(ev.expr(v.attributes["condition"], {}))
    ]


@pytest.mark.parametrize("value", ["/aws/eks/x/other", "/aws/eks/x/cluster/extra", "aws/eks/x/cluster", "/aws/lambda/x"])
def test_a_log_group_other_than_an_eks_control_plane_group_is_rejected_by_name(value):
    (message,) = _rejections("eks_cluster_log_group_name", value)
    assert "eks_cluster_log_group_name" in message and "/aws/eks/<cluster name>/cluster" in message


@pytest.mark.parametrize("value", [None, EKS_LOG_GROUP, "/aws/eks/" + "x" * 100 + "/cluster"])
def test_null_and_control_plane_log_groups_are_accepted(value):
    assert _rejections("eks_cluster_log_group_name", value) == []


@pytest.mark.parametrize("value,ok", [(1, True), (24, True), (8760, True), (0, False), (8761, False), (2.5, False)])
def test_retention_is_whole_hours_from_1_to_8760(value, ok):
    assert (_rejections("inventory_retention_hours", value) == []) == ok


def test_retention_defaults_to_24_hours():
    assert tfeval.literal(module_config().variables["inventory_retention_hours"].attributes["default"]) == 24
    assert tfeval.literal(module_config().variables["eks_cluster_log_group_name"].attributes["default"]) is None


# ---------------------------------------------------------------------------
# The table, the environment, IAM
# ---------------------------------------------------------------------------


def test_the_table(inventory):
    name, ev = inventory
    (table,) = ev.instances("aws_dynamodb_table", "inventory")
    assert table["name"] == f"{ev.variables['name']}-inventory"
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert (table["hash_key"], table["range_key"]) == ("pk", "sk")
    assert table["attribute"] == [{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}], "only key attributes are declared"
    assert table["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
    assert table["point_in_time_recovery"] == [{"enabled": True}]
    (sse,) = table["server_side_encryption"]
    kms = ev.variables["kms_key_arn"]
    if kms is None:
        assert sse == {"enabled": False, "kms_key_arn": None}, "no key given: the AWS owned key, like the other resources"
    else:
        assert sse == {"enabled": True, "kms_key_arn": kms}
    assert table["deletion_protection_enabled"] is False
    assert table["tags"] == ev.variables["tags"]
    assert "global_secondary_index" not in table and "stream_enabled" not in table


def test_the_function_is_told_the_table_and_the_retention(inventory):
    name, ev = inventory
    env = ev.local("function_environment")
    (table,) = ev.instances("aws_dynamodb_table", "inventory")
    assert env["NATMETER_INVENTORY_TABLE"] == table["name"]
    assert env["NATMETER_INVENTORY_RETENTION_HOURS"] == str(ev.variables["inventory_retention_hours"])
    assert re.fullmatch(r"[1-9][0-9]*", env["NATMETER_INVENTORY_RETENTION_HOURS"])
    assert env["NATMETER_INVENTORY_RETENTION_HOURS"] == ("48" if name == "inventory_dedicated_kms_1_nat" else "24")


def test_the_role_may_use_the_inventory_table_and_nothing_else_of_dynamodb(inventory):
    name, ev = inventory
    doc = ev.data_instances("aws_iam_policy_document", "function")[0]
    dynamo = [s for s in doc["statement"] if any(a.startswith("dynamodb:") for a in s["actions"])]
    (statement,) = dynamo
    assert statement["sid"] == "OwnInventoryTable"
    assert statement["actions"] == TABLE_ACTIONS
    (resource,) = statement["resources"]
    assert resource == tfeval.Unknown("aws_dynamodb_table.inventory[0].arn"), (
        f"the statement must name exactly the inventory table's ARN, got {resource!r}"
    )
    assert "condition" not in statement
    for s in doc["statement"]:
        assert not any(a.endswith("*") for a in s["actions"]), s
        if s["resources"] == ["*"]:
            assert s["actions"] == ["cloudwatch:PutMetricData"]
    if ev.variables["kms_key_arn"]:
        (cmk,) = [s for s in doc["statement"] if s["sid"] == "CustomerManagedKey"]
        assert cmk["resources"] == [ev.variables["kms_key_arn"]], "the table's key is the module's key"


def test_other_put_metric_and_size_checks_hold_with_the_inventory(inventory):
    contract.test_put_metric_data_is_limited_to_the_namespace(inventory)
    contract.test_environment_fits_lambdas_4kb(inventory)


# ---------------------------------------------------------------------------
# The subscription: permission, filter, pattern
# ---------------------------------------------------------------------------


def test_cloudwatch_logs_may_invoke_the_function_for_that_log_group_only(inventory):
    name, ev = inventory
    (perm,) = ev.instances("aws_lambda_permission", "eks_audit")
    (flow_perm,) = ev.instances("aws_lambda_permission", "logs")
    group = ev.variables["eks_cluster_log_group_name"]
    assert perm["principal"] == "logs.amazonaws.com" and perm["action"] == "lambda:InvokeFunction"
    assert perm["source_arn"] == f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"
    assert perm["source_account"] == "123456789012"
    assert perm["function_name"] == flow_perm["function_name"]
    assert perm["statement_id"] != flow_perm["statement_id"], "two statements in one function policy need two ids"


def test_the_second_subscription_filter(inventory):
    name, ev = inventory
    (sub,) = ev.instances("aws_cloudwatch_log_subscription_filter", "eks_audit")
    (flow,) = ev.instances("aws_cloudwatch_log_subscription_filter", "flow_logs")
    assert sub["log_group_name"] == ev.variables["eks_cluster_log_group_name"]
    assert sub["destination_arn"] == flow["destination_arn"] == tfeval.Unknown("aws_lambda_function.this.arn")
    assert sub["name"] == f"{ev.variables['name']}-eks-audit" and sub["name"] != flow["name"]
    assert sub["filter_pattern"] == ev.local("eks_audit_filter_pattern")
    assert "distribution" not in sub and "role_arn" not in sub, "Lambda destinations take neither"
    block = ev.config.resources[("aws_cloudwatch_log_subscription_filter", "eks_audit")]
    assert ("aws_lambda_permission", "eks_audit") in {r[:2] for r in tfeval.references(block.attributes["depends_on"])}, (
        "the permission must exist before CloudWatch Logs tries the destination"
    )


def test_the_pattern_is_json_within_the_limit_and_extracts_nothing():
    pattern = evaluator(INVENTORY_SCENARIOS["inventory_vpc_flow_log_3_nats"]).local("eks_audit_filter_pattern")
    assert pattern.startswith("{ ") and pattern.endswith(" }")
    assert len(pattern) <= 1024, "PutSubscriptionFilter: filterPattern is at most 1024 characters"
    assert "[" not in pattern, "a space-delimited pattern would add extractedFields to every delivered event"
    assert "!=" not in pattern and "*" not in pattern, "no condition whose meaning on a missing property is undocumented"
    assert cw.json_pattern_selectors(pattern) == {"$.objectRef.resource", "$.objectRef.subresource", "$.verb"}


# EKS-shaped audit events (audit.k8s.io/v1 Event, as the control plane writes
# them to kube-apiserver-audit-* streams: compact JSON, empty fields omitted).

NODE = "ip-10-0-1-23.ec2.internal"
KUBELET = {"username": f"system:node:{NODE}", "groups": ["system:nodes", "system:authenticated"]}
RS_CONTROLLER = {
    "username": "system:serviceaccount:kube-system:replicaset-controller",
    "uid": "4b1f1b5e-6c5e-4b7a-9d43-3c9b1e0f8a11",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
}
SCHEDULER = {"username": "system:kube-scheduler", "groups": ["system:authenticated"]}
ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
POD = "web-7d4b9c8f6d-x2x9k"
UID = "0f7e3c5a-2b1d-4c8e-9a6f-1d2e3f4a5b6c"


def audit_event(
    verb: str,
    uri: str,
    object_ref: dict,
    user: dict,
    *,
    code: int = 200,
    level: str = "Request",
    stage: str = "ResponseComplete",
    user_agent: str = "kubelet/v1.31.2-eks-7f9249a (linux/amd64) kubernetes/7f9249a",
    request_object: dict | None = None,
    response_object: dict | None = None,
) -> str:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": "9a0c2d4e-1f3b-4a5c-8d7e-6f9a0b1c2d3e",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": ["10.0.1.23"],
        "userAgent": user_agent,
        "objectRef": {k: v for k, v in object_ref.items() if v not in (None, "")},
        "responseStatus": {"metadata": {}, "code": code},
    }
    if request_object is not None:
        event["requestObject"] = request_object
    if response_object is not None:
        event["responseObject"] = response_object
    event["requestReceivedTimestamp"] = "2025-12-01T00:03:12.345678Z"
    event["stageTimestamp"] = "2025-12-01T00:03:12.351234Z"
    return json.dumps(event, separators=(",", ":"))


def pod_ref(name: str | None = POD, subresource: str | None = None, namespace: str = "shop") -> dict:
    return {"resource": "pods", "namespace": namespace, "name": name, "apiVersion": "v1", "subresource": subresource}


def node_ref(subresource: str | None = "status") -> dict:
    return {"resource": "nodes", "name": NODE, "apiVersion": "v1", "subresource": subresource}


POD_OBJECT = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {
        "name": POD,
        "generateName": "web-7d4b9c8f6d-",
        "namespace": "shop",
        "uid": UID,
        "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"},
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d", "uid": "1c2d", "controller": True,
             "blockOwnerDeletion": True}
        ],
    },
    "spec": {"containers": [{"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27"}]},
    "status": {"phase": "Pending", "qosClass": "BestEffort"},
}

MATCHING = {
    # A ReplicaSet's create: generateName, so objectRef carries no name.
    "pod create by replicaset-controller (no objectRef.name)": audit_event(
        "create", "/api/v1/namespaces/shop/pods", pod_ref(name=None), RS_CONTROLLER, code=201, level="RequestResponse",
        user_agent="kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/7f9249a/system:serviceaccount:kube-system:replicaset-controller",
        request_object={k: v for k, v in POD_OBJECT.items() if k != "status"}, response_object=POD_OBJECT,
    ),
    "pod create by a user (named)": audit_event(
        "create", "/api/v1/namespaces/shop/pods?fieldManager=kubectl-run", pod_ref(name="debug"), ADMIN, code=201,
        level="RequestResponse", user_agent="kubectl/v1.31.0 (linux/amd64) kubernetes/9a1b2c3",
        response_object=dict(POD_OBJECT, metadata={"name": "debug", "namespace": "shop", "uid": UID}),
    ),
    "pod delete, graceful (replicaset-controller)": audit_event(
        "delete", f"/api/v1/namespaces/shop/pods/{POD}", pod_ref(), RS_CONTROLLER, level="RequestResponse",
        request_object={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        response_object=dict(POD_OBJECT, metadata=dict(POD_OBJECT["metadata"], deletionGracePeriodSeconds=30)),
    ),
    "pod delete, final (kubelet, grace period 0)": audit_event(
        "delete", f"/api/v1/namespaces/shop/pods/{POD}", pod_ref(), KUBELET, level="RequestResponse",
        request_object={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": UID}},
        response_object=POD_OBJECT,
    ),
    # The event of the issue, as EKS writes it.
    "pods/status patch by the kubelet": audit_event(
        "patch", f"/api/v1/namespaces/shop/pods/{POD}/status?timeout=10s", pod_ref(subresource="status"), KUBELET,
        request_object={"metadata": {"uid": UID}, "status": {"hostIP": "10.0.1.23", "podIP": "10.0.37.171",
                                                            "podIPs": [{"ip": "10.0.37.171"}], "phase": "Running"}},
    ),
    "pods/status update": audit_event(
        "update", f"/api/v1/namespaces/shop/pods/{POD}/status", pod_ref(subresource="status"), ADMIN,
    ),
    "nodes/status patch by the kubelet": audit_event(
        "patch", f"/api/v1/nodes/{NODE}/status?timeout=10s", node_ref(), KUBELET,
        request_object={"status": {"addresses": [{"type": "InternalIP", "address": "10.0.1.23"},
                                                 {"type": "Hostname", "address": NODE}]}},
    ),
    "nodes/status update": audit_event("update", f"/api/v1/nodes/{NODE}/status", node_ref(), KUBELET),
}

NOT_MATCHING = {
    "pods get": audit_event("get", f"/api/v1/namespaces/shop/pods/{POD}", pod_ref(), KUBELET),
    "pods list": audit_event("list", "/api/v1/namespaces/shop/pods?limit=500", pod_ref(name=None), ADMIN),
    "pods watch": audit_event(
        "watch", "/api/v1/pods?allowWatchBookmarks=true&watch=true", {"resource": "pods", "apiVersion": "v1"}, SCHEDULER,
    ),
    "pods watch, ResponseStarted": audit_event(
        "watch", "/api/v1/pods?watch=true", {"resource": "pods", "apiVersion": "v1"}, SCHEDULER, stage="ResponseStarted",
    ),
    "pods/log get": audit_event("get", f"/api/v1/namespaces/shop/pods/{POD}/log?container=web", pod_ref(subresource="log"), ADMIN),
    "pods/exec create": audit_event(
        "create", f"/api/v1/namespaces/shop/pods/{POD}/exec?command=sh&stdin=true&tty=true", pod_ref(subresource="exec"),
        ADMIN, code=101,
    ),
    "pods/attach create": audit_event("create", f"/api/v1/namespaces/shop/pods/{POD}/attach", pod_ref(subresource="attach"), ADMIN),
    "pods/portforward create": audit_event(
        "create", f"/api/v1/namespaces/shop/pods/{POD}/portforward", pod_ref(subresource="portforward"), ADMIN,
    ),
    "pods/binding create (scheduler)": audit_event(
        "create", f"/api/v1/namespaces/shop/pods/{POD}/binding", pod_ref(subresource="binding"), SCHEDULER, code=201,
        request_object={"kind": "Binding", "apiVersion": "v1", "target": {"kind": "Node", "name": NODE}},
    ),
    "pods/eviction create": audit_event(
        "create", f"/api/v1/namespaces/shop/pods/{POD}/eviction", pod_ref(subresource="eviction"), ADMIN, code=201,
    ),
    "pods patch (labels, no subresource)": audit_event("patch", f"/api/v1/namespaces/shop/pods/{POD}", pod_ref(), ADMIN),
    "pods/status get": audit_event("get", f"/api/v1/namespaces/shop/pods/{POD}/status", pod_ref(subresource="status"), ADMIN),
    "nodes get": audit_event("get", f"/api/v1/nodes/{NODE}", node_ref(subresource=None), KUBELET),
    "nodes patch (labels)": audit_event("patch", f"/api/v1/nodes/{NODE}", node_ref(subresource=None), ADMIN),
    "nodes create": audit_event("create", "/api/v1/nodes", node_ref(subresource=None), KUBELET, code=201),
    "configmaps update": audit_event(
        "update", "/api/v1/namespaces/kube-system/configmaps/aws-auth",
        {"resource": "configmaps", "namespace": "kube-system", "name": "aws-auth", "apiVersion": "v1"}, ADMIN,
    ),
    "leases update (node heartbeat)": audit_event(
        "update", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}?timeout=10s",
        {"resource": "leases", "namespace": "kube-node-lease", "name": NODE, "apiGroup": "coordination.k8s.io",
         "apiVersion": "v1"}, KUBELET,
    ),
    "events create": audit_event(
        "create", "/api/v1/namespaces/shop/events",
        {"resource": "events", "namespace": "shop", "name": f"{POD}.17d1b2c3", "apiVersion": "v1"}, KUBELET, code=201,
    ),
    "endpointslices update": audit_event(
        "update", "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-abcde",
        {"resource": "endpointslices", "namespace": "shop", "name": "web-abcde", "apiGroup": "discovery.k8s.io",
         "apiVersion": "v1"}, RS_CONTROLLER,
    ),
    # The other control plane log types share the log group; they are text.
    "kube-apiserver line (api log type)": 'I1201 00:03:12.345678      11 controller.go:615] quota admission added evaluator for: pods',
    "authenticator line": 'time="2025-12-01T00:03:12Z" level=info msg="access granted" arn="arn:aws:iam::123456789012:role/admin"',
    "scheduler line mentioning pods/status": 'I1201 00:03:12.3 1 schedule_one.go:286] "Successfully bound pod to node" pod="shop/web" verb="create"',
}


@pytest.fixture(scope="module")
def pattern() -> str:
    return evaluator(INVENTORY_SCENARIOS["inventory_vpc_flow_log_3_nats"]).local("eks_audit_filter_pattern")


@pytest.mark.parametrize("case", sorted(MATCHING))
def test_the_pattern_passes_the_events_the_inventory_needs(pattern, case):
    assert cw.json_pattern_matches(pattern, MATCHING[case]), f"{case} must reach the function"


@pytest.mark.parametrize("case", sorted(NOT_MATCHING))
def test_the_pattern_drops_every_other_event(pattern, case):
    assert not cw.json_pattern_matches(pattern, NOT_MATCHING[case]), f"{case} must not reach the function"


def test_a_pod_create_with_an_empty_name_property_still_matches(pattern):
    """EKS omits empty fields; should objectRef.name ever be written as "",
    nothing in the pattern depends on it."""
    event = json.loads(MATCHING["pod create by replicaset-controller (no objectRef.name)"])
    assert "name" not in event["objectRef"]
    event["objectRef"]["name"] = ""
    assert cw.json_pattern_matches(pattern, json.dumps(event))


def test_without_the_subresource_clause_pods_exec_would_pass(pattern):
    """The NOT EXISTS clause is what keeps pods/exec (and the other pod
    subresources) out: the same pattern without it lets them through."""
    weaker = pattern.replace(" && $.objectRef.subresource NOT EXISTS", "")
    assert weaker != pattern
    assert cw.json_pattern_matches(weaker, NOT_MATCHING["pods/exec create"])
    assert not cw.json_pattern_matches(pattern, NOT_MATCHING["pods/exec create"])


def test_a_subresource_set_to_null_is_not_absent(pattern):
    """NOT EXISTS is true only for an absent property (IS NULL is the test for
    null): a hypothetical "subresource": null would not match the plain
    create/delete clause. Kubernetes omits the field instead."""
    event = json.loads(MATCHING["pod delete, final (kubelet, grace period 0)"])
    event["objectRef"]["subresource"] = None
    assert not cw.json_pattern_matches(pattern, json.dumps(event))


# The evaluator itself, on the user guide's own examples ("Filter pattern
# syntax", JSON log events: the examples with their documented results).

GUIDE_EVENT = {
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "ThisFlag": True,
}
GUIDE_COMPOUND = {
    "user": {"id": 1, "email": "John.Stiles@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
}


@pytest.mark.parametrize(
    "event,pattern,expected",
    [
        (GUIDE_EVENT, '{ $.eventType = "UpdateTrail" }', True),
        (GUIDE_EVENT, '{ $.arrayKey[0] = "value" }', True),
        (GUIDE_EVENT, "{ $.objectList[1].id = 2 }", True),
        (GUIDE_EVENT, "{ $.SomeObject IS NULL }", True),
        (GUIDE_EVENT, "{ $.SomeOtherObject NOT EXISTS }", True),
        (GUIDE_EVENT, "{ $.SomeObject NOT EXISTS }", False),
        (GUIDE_EVENT, "{ $.ThisFlag IS TRUE }", True),
        (GUIDE_EVENT, "{ $.ThisFlag IS FALSE }", False),
        (GUIDE_EVENT, '{ $.eventType = "updatetrail" }', False),
        (GUIDE_COMPOUND, '{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
        (GUIDE_COMPOUND, '{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
        (GUIDE_COMPOUND, '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }', True),
        (GUIDE_COMPOUND, '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }', False),
        ({"users": [1, 2, 3]}, "{ $.users = 1 }", False),
        ({"users": [1, 2, 3]}, "{ $.users != 1 }", False),
    ],
)
def test_the_json_pattern_evaluator_reproduces_the_user_guide(event, pattern, expected):
    assert cw.json_pattern_matches(pattern, json.dumps(event)) is expected


def test_the_json_pattern_evaluator_refuses_what_the_guide_leaves_open():
    with pytest.raises(cw.FilterPatternError):
        cw.json_pattern_matches("{ $.missing != 1 }", json.dumps(GUIDE_EVENT))
    with pytest.raises(cw.FilterPatternError):
        cw.parse_json_pattern("{ $.sourceIPAddress != 123.123.* }")
    with pytest.raises(cw.FilterPatternError):
        cw.parse_json_pattern('{ $.a = "x" ')
    with pytest.raises(cw.FilterPatternError):
        cw.parse_json_pattern("{ $.a = " + '"x" || $.a = "x"' * 60 + " }")
    assert not cw.json_pattern_matches('{ $.a = "x" }', "not json at all")
    assert not cw.json_pattern_matches('{ $.a = "x" }', '["x"]')


# ---------------------------------------------------------------------------
# Contributor Insights and the dashboard
# ---------------------------------------------------------------------------


def test_the_workload_rule(inventory):
    name, ev = inventory
    (rule,) = ev.instances("aws_cloudwatch_contributor_insight_rule", "top_workloads")
    (sources,) = ev.instances("aws_cloudwatch_contributor_insight_rule", "top_sources")
    assert rule["rule_name"] == f"{ev.variables['name']}-top-workloads" and rule["rule_state"] == "ENABLED"
    definition = json.loads(rule["rule_definition"])
    source_definition = json.loads(sources["rule_definition"])
    assert definition["Contribution"]["Keys"] == ["$.Namespace", "$.Workload"]
    assert definition["Contribution"]["ValueOf"] == "$.NatBytes"
    assert definition["Contribution"]["Filters"] == source_definition["Contribution"]["Filters"]
    for key in ("Schema", "LogGroupNames", "LogFormat", "AggregateOn"):
        assert definition[key] == source_definition[key], key
    assert {k[2:] for k in definition["Contribution"]["Keys"]} <= CONTRACT_DETAIL_FIELDS
    (holder,) = ev.instances("terraform_data", "workload_rule_definition")
    assert holder["input"] == rule["rule_definition"]
    block = ev.config.resources[("aws_cloudwatch_contributor_insight_rule", "top_workloads")]
    (lifecycle,) = block.blocks_of("lifecycle")
    refs = tfeval.references(lifecycle.attributes["replace_triggered_by"])
    assert ("terraform_data", "workload_rule_definition") in {r[:2] for r in refs}, "replaced when its definition changes"
    assert ("count", "index") in refs, "each rule instance by the holder of the same index"
    existing = ev.config.resources[("aws_cloudwatch_contributor_insight_rule", "top_sources")]
    (lc,) = existing.blocks_of("lifecycle")
    assert ("terraform_data", "workload_rule_definition") not in {r[:2] for r in tfeval.references(lc.attributes["replace_triggered_by"])}, (
        "turning the inventory on must not replace the source rules"
    )


def _widget(ev, start: str) -> dict:
    (w,) = [w for w in dashboard_widgets(ev) if w["properties"].get("title", "").startswith(start)]
    return w["properties"]


@pytest.mark.parametrize("start,dims", [("Top 10 namespaces", {"Namespace"}), ("Top 10 workloads", {"Namespace", "Workload"})])
def test_top_namespaces_and_workloads_are_sorted_searches(inventory, start, dims):
    name, ev = inventory
    props = _widget(ev, start)
    q = cw.widget_queries(start, props)
    (use,) = q.metrics
    assert use.namespace == ev.local("metric_namespace") and use.name == "NatCost"
    assert use.dimensions == {d: None for d in dims}, "the whole dimension set, no value pinned"
    assert frozenset(dims) in CONTRACT_METRICS["NatCost"]
    search, shown = q.expressions
    assert search.text.startswith("SEARCH(") and f'{{"{ev.local("metric_namespace")}",' in search.text, (
        "the namespace double-quoted in the schema"
    )
    assert re.fullmatch(rf"SORT\({search.id}, SUM, DESC, 10\)", shown.text), shown.text
    entries = {e[-1]["id"]: e[-1] for e in props["metrics"]}
    assert entries[search.id].get("visible") is False and entries[shown.id].get("visible", True)
    assert props["period"] == 3600 and ", 'Sum', 3600)" in search.text


def test_nodes_and_unresolved_beside_all_bytes(inventory):
    name, ev = inventory
    props = _widget(ev, "NAT bytes per hour: all, attributed to nodes")
    uses = {(u.name, u.dimension_set) for u in cw.widget_queries("nodes", props).metrics}
    assert uses == {("NatBytes", frozenset()), ("NatNodeBytes", frozenset()), ("NatUnresolvedBytes", frozenset())}
    assert props["stat"] == "Sum" and props["period"] == 3600


def test_audit_log_ingestion_and_forwarding_are_shown(inventory):
    name, ev = inventory
    props = _widget(ev, "Control plane log group")
    uses = cw.widget_queries("ingestion", props).metrics
    ingest = [u for u in uses if u.name == "IncomingBytes"]
    forward = [u for u in uses if u.name == "ForwardedBytes"]
    assert ingest and ingest[0].dimensions == {"LogGroupName": ev.variables["eks_cluster_log_group_name"]}
    assert forward and forward[0].dimensions["FilterName"] == ev.local("eks_audit_subscription_name")


def test_every_inventory_metric_on_the_dashboard_is_in_the_contract(inventory):
    """What the inventory widgets read from this instance's namespace is what
    issue 13 fixes for the Rust side (or what the function emitted before)."""
    name, ev = inventory
    ours = ev.local("metric_namespace")
    base = {"NatBytes": [frozenset()], "NatCost": [frozenset()]}
    seen = 0
    for w in inventory_widgets(ev):
        if w["type"] != "metric" or "metrics" not in w["properties"]:
            continue
        for use in cw.widget_queries(w["properties"]["title"], w["properties"]).metrics:
            if use.namespace != ours:
                continue
            seen += 1
            allowed = CONTRACT_METRICS.get(use.name, []) + base.get(use.name, [])
            assert use.dimension_set in allowed, f"{use.where}: {use.name} {sorted(use.dimension_set)} is not in the contract"
    assert seen >= 5


@pytest.mark.parametrize(
    "check",
    [
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
    ],
)
def test_the_dashboard_checks_hold_with_the_inventory(inventory, check):
    getattr(dash, check)(inventory)


def test_the_inventory_block_sits_below_the_sources_and_moves_the_rest_down(inventory):
    name, ev = inventory
    plain = evaluator({k: v for k, v in INVENTORY_SCENARIOS[name].items() if k != "eks_cluster_log_group_name"})
    before = {(w["type"], w["properties"].get("title", w["properties"].get("markdown", "")[:40])): w for w in dashboard_widgets(plain)}
    after = {(w["type"], w["properties"].get("title", w["properties"].get("markdown", "")[:40])): w for w in dashboard_widgets(ev)}
    dy = ev.local("inv_dy")
    assert dy == 21 == sum(w["height"] for w in inventory_widgets(ev) if w["x"] == 0)
    for key, w in before.items():
        moved = after[key]
        assert moved["y"] == (w["y"] + dy if w["y"] >= 27 else w["y"]), key
    assert len(after) == len(before) + len(inventory_widgets(ev))


# ---------------------------------------------------------------------------
# Against the binary (xfail until the Rust side declares the inventory)
# ---------------------------------------------------------------------------


def test_the_binary_declares_the_inventory_contract(metric_model):
    require_inventory_in_model(metric_model)
    problems = []
    missing_vars = CONTRACT_CONFIG_VARIABLES - set(metric_model["config_variables"])
    if missing_vars:
        problems.append(f"config_variables lacks {sorted(missing_vars)}")
    metrics = contract.model_metrics(metric_model)
    for name, sets in CONTRACT_METRICS.items():
        for s in sets:
            if s not in metrics.get(name, []):
                problems.append(f"{name} is not declared with dimensions {sorted(s)}")
    missing_fields = CONTRACT_DETAIL_FIELDS - set(metric_model["source_detail_line"]["fields"])
    if missing_fields:
        problems.append(f"source_detail_line.fields lacks {sorted(missing_fields)}")
    assert not problems, "\n".join(problems)


CONTRACT_CHECKS = [
    "test_every_metric_read_is_one_the_function_emits",
    "test_insight_rules_read_the_source_detail_lines",
    "test_environment_variables_are_ones_the_function_reads",
]


@pytest.mark.parametrize("check", CONTRACT_CHECKS)
def test_the_contract_checks_hold_with_the_inventory(inventory, metric_model, check):
    """test_tf_contract's checks, on the inventory deployments: every metric
    and dimension set read, every rule key and environment variable, against
    `natmeter metrics --json`."""
    require_inventory_in_model(metric_model)
    getattr(contract, check)(inventory, metric_model)


def test_the_logs_insights_widget_is_unchanged_by_the_inventory(inventory, metric_model):
    contract.test_logs_insights_widgets_use_detail_line_fields(inventory, metric_model)


def model_with_the_contract(model: dict) -> dict:
    """The binary's model plus what issue 13 adds: what the Rust side is to
    declare."""
    out = copy.deepcopy(model)
    out["config_variables"] += sorted(CONTRACT_CONFIG_VARIABLES - set(out["config_variables"]))
    by_name = {m["name"]: m for m in out["metrics"]}
    for name, sets in CONTRACT_METRICS.items():
        entry = by_name.setdefault(name, {"name": name, "dimension_sets": [], "unit": "Bytes"})
        if entry not in out["metrics"]:
            out["metrics"].append(entry)
        for s in sets:
            if sorted(s) not in [sorted(x) for x in entry["dimension_sets"]]:
                entry["dimension_sets"].append(sorted(s))
    out["source_detail_line"]["fields"] += sorted(CONTRACT_DETAIL_FIELDS - set(out["source_detail_line"]["fields"]))
    return out


@pytest.mark.parametrize("check", CONTRACT_CHECKS)
def test_the_contract_checks_pass_once_the_binary_declares_the_contract(inventory, metric_model, check):
    """The same checks against the binary's model completed with the contract:
    the module passes them as soon as the Rust side declares exactly that."""
    getattr(contract, check)(inventory, model_with_the_contract(metric_model))


def test_the_contract_checks_see_a_missing_metric(inventory, metric_model):
    """... and they would fail if the binary declared the rest but not
    NatNodeBytes, or not the Namespace field."""
    model = model_with_the_contract(metric_model)
    model["metrics"] = [m for m in model["metrics"] if m["name"] != "NatNodeBytes"]
    with pytest.raises(AssertionError, match="NatNodeBytes"):
        contract.test_every_metric_read_is_one_the_function_emits(inventory, model)
    model = model_with_the_contract(metric_model)
    model["source_detail_line"]["fields"].remove("Namespace")
    with pytest.raises(AssertionError, match="Namespace"):
        contract.test_insight_rules_read_the_source_detail_lines(inventory, model)
    model = model_with_the_contract(metric_model)
    model["config_variables"].remove("NATMETER_INVENTORY_RETENTION_HOURS")
    with pytest.raises(AssertionError, match="NATMETER_INVENTORY_RETENTION_HOURS"):
        contract.test_environment_variables_are_ones_the_function_reads(inventory, model)


def test_the_gate_opens_on_any_part_of_the_contract(metric_model):
    """The xfail above is for a binary that declares none of the inventory;
    one declared part is enough to make the checks real (and fail on the rest)."""
    assert not model_declares_inventory({"config_variables": [], "metrics": [], "source_detail_line": {"fields": []}})
    some = copy.deepcopy(metric_model)
    some["config_variables"].append("NATMETER_INVENTORY_TABLE")
    assert model_declares_inventory(some)
    some = copy.deepcopy(metric_model)
    some["metrics"].append({"name": "NatNodeBytes", "dimension_sets": [[]], "unit": "Bytes"})
    assert model_declares_inventory(some)
    some = copy.deepcopy(metric_model)
    some["source_detail_line"]["fields"].append("Workload")
    assert model_declares_inventory(some)


# ---------------------------------------------------------------------------
# Outputs, README, example
# ---------------------------------------------------------------------------


def test_outputs(inventory):
    name, ev = inventory
    cfg = ev.config
    for out in ("inventory_table_name", "inventory_table_arn", "eks_audit_filter_pattern"):
        assert out in cfg.outputs
    value = ev.expr(cfg.outputs["contributor_insight_rule_names"].attributes["value"], {})
    assert value[-1] == f"{ev.variables['name']}-top-workloads" and len(value) == 3
    assert ev.expr(cfg.outputs["inventory_table_name"].attributes["value"], {}) == f"{ev.variables['name']}-inventory"
    assert ev.expr(cfg.outputs["eks_audit_filter_pattern"].attributes["value"], {}) == ev.local("eks_audit_filter_pattern")
    plain = evaluator(SCENARIOS["vpc_flow_log_3_nats"])
    assert plain.expr(cfg.outputs["inventory_table_name"].attributes["value"], {}) is None
    assert plain.expr(cfg.outputs["eks_audit_filter_pattern"].attributes["value"], {}) is None
    assert len(plain.expr(cfg.outputs["contributor_insight_rule_names"].attributes["value"], {})) == 2


def test_readme_documents_the_inventory():
    text = (MODULE / "README.md").read_text()
    section = text[text.index("## EKS workloads"):]
    section = section[: section.index("\n## ", 4)]
    pattern = evaluator(INVENTORY_SCENARIOS["inventory_vpc_flow_log_3_nats"]).local("eks_audit_filter_pattern")
    assert pattern in section, "the README shows the pattern exactly"
    for needle in (
        "eks_cluster_log_group_name", "inventory_retention_hours", "NATMETER_INVENTORY_TABLE",
        "NATMETER_INVENTORY_RETENTION_HOURS", "extractedFields", "NOT EXISTS", "two subscription filters",
        "LimitExceededException", "dynamodb:BatchWriteItem", "IncomingBytes", "retention_in_days", '"types":["audit"]',
        'enabled_cluster_log_types = ["audit"]', "get", "list", "watch", "$0.50", "top-workloads", "(node)", "(unresolved)",
    ):
        assert needle in section, f"the README's EKS section must mention {needle!r}"
    assert "aws_dynamodb_table.inventory" in text and "aws_cloudwatch_log_subscription_filter.eks_audit" in text


def test_the_complete_example_passes_the_cluster_log_group():
    example = INFRA / "examples" / "complete"
    cfg = tfeval.load_config(example)
    call = cfg.module_calls["natmeter"]
    assert "eks_cluster_log_group_name" in call.attributes
    for cluster, expected in ((None, None), ("shop-prod", "/aws/eks/shop-prod/cluster")):
        ev = tfeval.Evaluator(cfg, {"eks_cluster_name": cluster})
        value = ev.expr(call.attributes["eks_cluster_log_group_name"], {})
        assert value == expected
        assert _rejections("eks_cluster_log_group_name", value) == []
