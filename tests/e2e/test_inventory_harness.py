"""Self-tests of the inventory tests' harness (no bootstrap needed): the DynamoDB emulator (moto's
server) and the per-test table, the proxy's `ddb_throttle` mode in front of it, and the audit
event builders (auditgen.py), checked against the natmeter CLI's own audit reader."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

import auditgen as ag
import flowgen
from auditgen import us
from dynamodb_proc import dynamodb_client, scan_items
from fault_proxy import DDB_THROTTLE_MESSAGE, DDB_THROTTLE_TYPE


def test_emulator_table_has_the_functions_schema(dynamodb_instance, ddb, inventory_table):
    assert dynamodb_instance.alive() and dynamodb_instance.version == "5.2.5", dynamodb_instance.version
    t = ddb.describe_table(TableName=inventory_table)["Table"]
    assert t["TableStatus"] == "ACTIVE"
    assert sorted((k["AttributeName"], k["KeyType"]) for k in t["KeySchema"]) == [("pk", "HASH"), ("sk", "RANGE")]
    assert sorted((a["AttributeName"], a["AttributeType"]) for a in t["AttributeDefinitions"]) == \
        [("pk", "S"), ("sk", "S")]
    assert t["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=inventory_table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert scan_items(ddb, inventory_table) == []
    # a Query by hour bucket, as the function reads
    ddb.put_item(TableName=inventory_table, Item={"pk": {"S": "h#1"}, "sk": {"S": "a"}, "f": {"S": "{}"},
                                                  "expires_at": {"N": "3601"}})
    q = ddb.query(TableName=inventory_table, KeyConditionExpression="pk = :h",
                  ExpressionAttributeValues={":h": {"S": "h#1"}}, ConsistentRead=True)
    assert q["Items"] == [{"pk": {"S": "h#1"}, "sk": {"S": "a"}, "f": {"S": "{}"}, "expires_at": {"N": "3601"}}]
    assert scan_items(ddb, inventory_table) == [{"pk": "h#1", "sk": "a", "f": "{}", "expires_at": 3601}]


def test_tables_are_per_test(ddb, inventory_table):
    names = ddb.list_tables()["TableNames"]
    assert inventory_table in names
    assert scan_items(ddb, inventory_table) == [], "a fresh table is empty"


def test_ddb_throttle_mode_answers_dynamodbs_throttling_error_and_passes_otherwise(dynamodb, ddb, inventory_table,
                                                                                   fault_proxy):
    proxy = fault_proxy(upstream=dynamodb)
    once = dynamodb_client(proxy.url, max_attempts=1)
    item = {"pk": {"S": "h#2"}, "sk": {"S": "b"}, "f": {"S": "{}"}, "expires_at": {"N": "7201"}}
    proxy.always("ddb_throttle")
    with pytest.raises(ClientError) as e:
        once.put_item(TableName=inventory_table, Item=item)
    err = e.value.response
    assert err["Error"]["Code"] == "ProvisionedThroughputExceededException", err
    assert err["Error"]["Message"] == DDB_THROTTLE_MESSAGE
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.0"
    r = proxy.requests[-1]
    assert (r.outcome, r.ddb_operation, r.target) == ("ddb_throttle", "PutItem", "DynamoDB_20120810.PutItem")
    assert r.json_body()["TableName"] == inventory_table
    assert scan_items(ddb, inventory_table) == [], "a throttled request reached the emulator"

    # an SDK retries it as throttling (botocore's standard mode: 3 attempts of the same body)
    mark = proxy.mark()
    with pytest.raises(ClientError):
        dynamodb_client(proxy.url, max_attempts=3).put_item(TableName=inventory_table, Item=item)
    tried = proxy.since(mark)
    assert [x.attempt for x in tried] == [1, 2, 3] and all(x.outcome == "ddb_throttle" for x in tried)

    proxy.healthy()
    once.put_item(TableName=inventory_table, Item=item)
    assert proxy.requests[-1].outcome == "pass" and proxy.requests[-1].upstream_status == 200
    assert scan_items(ddb, inventory_table) == [{"pk": "h#2", "sk": "b", "f": "{}", "expires_at": 7201}]

    # the raw answer, byte for byte what DynamoDB sends
    proxy.always("ddb_throttle")
    req = urllib.request.Request(proxy.url + "/", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/x-amz-json-1.0",
                                          "X-Amz-Target": "DynamoDB_20120810.Query"})
    with pytest.raises(urllib.error.HTTPError) as h:
        urllib.request.urlopen(req, timeout=10)
    assert h.value.code == 400 and h.value.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert json.loads(h.value.read()) == {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "Rate of requests exceeds the allowed throughput."} == \
        {"__type": DDB_THROTTLE_TYPE, "message": DDB_THROTTLE_MESSAGE}


def test_audit_builders_are_read_by_natmeters_own_audit_reader(natmeter_bin, tmp_path):
    """The events of auditgen.py are what crates/core/src/inventory.rs reads: `natmeter report
    --inventory <audit subscription event>` names a flow event's pod and node as the tests expect."""
    pod = ag.PodSpec()
    t0 = us(flowgen.minute_ago(20) + 12.351234)
    evs = [ag.pod_create(t0, pod), ag.node_status(t0 + 900_000), ag.pod_status(t0 + 2_351_234, pod),
           ag.pod_get(t0 + 5_000_000, pod), ag.configmap_update(t0 + 6_000_000), "not an audit event"]
    assert len(ag.expected_items(evs)) == 3
    p = ag.audit_payload(evs)
    assert p["logGroup"] == "/aws/eks/natmeter-e2e/cluster"
    assert p["logStream"].startswith("kube-apiserver-audit-") and len(p["logStream"]) == 21 + 32
    assert all(len(e["id"]) == 56 for e in p["logEvents"])
    assert json.loads(p["logEvents"][0]["message"])["stageTimestamp"] == ag.iso(t0)
    assert ag.iso(us(1764547392.351234)) == "2025-12-01T00:03:12.351234Z"
    (tmp_path / "audit.json").write_bytes(ag.audit_event(evs))
    start = flowgen.minute_ago(10) + 5
    recs = [flowgen.record(start, srcaddr=pod.ip, pkt_srcaddr=pod.ip, srcport=20001, bytes=336781),
            flowgen.record(start, srcaddr=ag.NODE.ip, pkt_srcaddr=ag.NODE.ip, srcport=20002, bytes=98304),
            flowgen.record(start, srcaddr="10.0.128.99", pkt_srcaddr="10.0.128.99", srcport=20003, bytes=7)]
    (tmp_path / "flow.json").write_bytes(flowgen.event(recs))
    r = subprocess.run([str(natmeter_bin), "report", "--nat-gateways", json.dumps(flowgen.GATEWAYS),
                        "--log-format", flowgen.FORMAT, "--inventory", str(tmp_path / "audit.json"),
                        "--output", "json", str(tmp_path / "flow.json")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep["identity"] == {"resolved_bytes": 336781, "node_bytes": 98304, "unresolved_bytes": 7}
    by_src = {s["source"]: s for s in rep["sources"]}
    assert (by_src[pod.ip]["namespace"], by_src[pod.ip]["workload"], by_src[pod.ip]["pod"], by_src[pod.ip]["node"]) \
        == ("shop", "Deployment/web", pod.name, ag.NODE.name)
    assert by_src[ag.NODE.ip]["holder"] == "node" and by_src[ag.NODE.ip]["node"] == ag.NODE.name
    assert "3 about pods and nodes, 1 refused" in r.stderr, r.stderr[-1000:]

    # before the status patch's second, the address is nobody's
    early = flowgen.record(t0 // 1_000_000 - 60, srcaddr=pod.ip, pkt_srcaddr=pod.ip, srcport=20004, bytes=11)
    (tmp_path / "early.json").write_bytes(flowgen.event([early]))
    r = subprocess.run([str(natmeter_bin), "report", "--nat-gateways", json.dumps(flowgen.GATEWAYS),
                        "--log-format", flowgen.FORMAT, "--inventory", str(tmp_path / "audit.json"),
                        "--output", "json", str(tmp_path / "early.json")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["identity"]["unresolved_bytes"] == 11, r.stdout[-800:]
