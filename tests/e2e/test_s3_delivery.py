"""Flow logs delivered to S3, read by the function (issue 14, docs/s3.md), against LocalStack's S3
and SQS on loopback and the real bootstrap through the Runtime API.

What is checked:
- S3 notifications as LocalStack's S3 writes them into an SQS queue (its s3:TestEvent first),
  received with boto3 and handed to the function in the event Lambda's SQS event source mapping
  delivers: every object is read and metered, NatBytes per gateway equal the simulator's truth; a
  truncated gzip object and a key that does not exist fail their own messages only
  (batchItemFailures), each named in the log by bucket and key; a key with spaces and `+` is
  read (S3 URL-encodes it in the notification);
- a repeated delivery of the same messages counts nothing again: in one container (its memory),
  and across two containers with NATMETER_OBJECTS_TABLE (conditional writes to moto's DynamoDB);
- a 75 MB-class gzip object (NATMETER_E2E_BIG_OBJECT_MB=75, in `make test-package`) (concatenated members, as S3 may write) is streamed: the function's
  peak RSS stays bounded, and its bytes equal the truth times the members.

Ground truth is the simulator's truth.json (times the copies the test made), never natmeter's output.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid

import boto3
import pytest

from cwread import MetricsReader
from s3objects import notification_body, object_key, put_sim_objects, records_by_object, sqs_event, text_object

PRICE = 0.045


def client(kind: str, url: str):
    return boto3.client(kind, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def s3(localstack):
    return client("s3", localstack)


@pytest.fixture
def sqs(localstack):
    return client("sqs", localstack)


@pytest.fixture
def bucket(s3) -> str:
    name = f"natmeter-e2e-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def s3_env(sim, namespace: str, localstack: str, **extra) -> dict:
    return sim.env(namespace, AWS_ENDPOINT_URL_S3=localstack, NATMETER_PRICE_PER_GB=str(PRICE), **extra)


def nat_bytes_by_gateway(cw, sim, namespace: str, want: dict, wait_s: float = 20) -> dict:
    """NatBytes per NatGatewayId, polled until it equals `want` or the wait ends."""
    m = sim.reader(cw, namespace)
    deadline = time.time() + wait_s
    while True:
        got = {g: m.value("NatBytes", {"NatGatewayId": g}) for g in want}
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.5)


def truth_by_gateway(sim, times: int = 1) -> dict:
    return {g["nat_gateway"]: float(g["bytes"] * times) for g in sim.truth["nat_gateways"] if g["bytes"]}


def queue_with_notifications(s3, sqs, bucket: str) -> str:
    url = sqs.create_queue(QueueName=f"natmeter-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return url


def drain(sqs, url: str, want: int, timeout_s: float = 30) -> list[dict]:
    got: list[dict] = []
    deadline = time.time() + timeout_s
    while len(got) < want and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                VisibilityTimeout=600)
        got.extend(r.get("Messages", []))
    return got


def invoke_json(b, event: bytes) -> dict:
    kind, text = b.invoke(event, timeout_s=120)
    assert kind == "response", text[:2000]
    return json.loads(text)


def test_sqs_notifications_meter_each_object_once(simulate, s3, sqs, bucket, localstack, start_bootstrap,
                                                  cw, namespace):
    sim = simulate(seed=41, pods=30, nodes=3, nat_gateways=2, minutes=6, external_snat=False)
    url = queue_with_notifications(s3, sqs, bucket)
    # One NAT ENI's object under a prefix with a space and a `+`: S3 URL-encodes the key in its
    # notification; the function must read the object the key names.
    keys = put_sim_objects(s3, bucket, sim, odd_prefix="flow logs+nat/")
    odd_key = next(k for k in keys if k.startswith("flow logs+nat/"))
    lines = next(iter(records_by_object(sim).values()))
    # A truncated gzip object (its last 40 bytes cut off).
    bad = text_object(sim.log_format, lines)
    s3.put_object(Bucket=bucket, Key="AWSLogs/truncated.log.gz", Body=bad[:-40])
    messages = drain(sqs, url, len(keys) + 3)
    assert any("s3:TestEvent" in m["Body"] for m in messages), "LocalStack sends S3's test event first"
    # A notification for a key that does not exist (deleted before it was read).
    missing = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r",
               "Body": notification_body(bucket, "AWSLogs/gone.log.gz", 10, "0" * 32)}
    messages.append(missing)
    by_key = {}
    for m in messages:
        body = json.loads(m["Body"])
        for r in body.get("Records", []):
            k = r["s3"]["object"]["key"]
            if k.startswith("flow%20logs%2Bnat/"):
                # LocalStack encodes the space as %20; S3 itself writes `+` (AWS's notification
                # docs: "red flower.jpg" becomes "red+flower.jpg"). The message is made S3's.
                k = k.replace("%20", "+")
                r["s3"]["object"]["key"] = k
                m["Body"] = json.dumps(body)
            by_key[k] = m["MessageId"]
    assert "flow+logs%2Bnat/" + odd_key.split("/", 1)[1] in by_key, list(by_key)

    b = start_bootstrap(s3_env(sim, namespace, localstack))
    failures = []
    events = [sqs_event(messages[i:i + 10]) for i in range(0, len(messages), 10)]
    for ev in events:
        failures += [f["itemIdentifier"] for f in invoke_json(b, ev)["batchItemFailures"]]
    expected_failures = {by_key["AWSLogs/truncated.log.gz"], missing["MessageId"]}
    assert set(failures) == expected_failures, (failures, by_key)
    log = b.stderr_text()
    assert f"s3://{bucket}/AWSLogs/truncated.log.gz" in log and "truncated" in log
    assert f"s3://{bucket}/AWSLogs/gone.log.gz" in log and "NoSuchKey" in log

    want = truth_by_gateway(sim)
    assert nat_bytes_by_gateway(cw, sim, namespace, want) == want

    # The same messages again (SQS redelivers at least once): nothing is counted twice.
    for ev in events:
        failures = [f["itemIdentifier"] for f in invoke_json(b, ev)["batchItemFailures"]]
        assert set(failures) <= expected_failures
    assert "already counted" in b.stderr_text()
    time.sleep(2)
    assert nat_bytes_by_gateway(cw, sim, namespace, want, wait_s=0) == want


def test_repeated_delivery_to_another_container_counts_once(simulate, s3, bucket, localstack, start_bootstrap,
                                                           cw, namespace, dynamodb, inventory_table):
    sim = simulate(seed=42, pods=20, nodes=2, nat_gateways=2, minutes=4, external_snat=True)
    keys = put_sim_objects(s3, bucket, sim)
    msgs = []
    for k in keys:
        head = s3.head_object(Bucket=bucket, Key=k)
        msgs.append({"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r",
                     "Body": notification_body(bucket, k, head["ContentLength"], head["ETag"].strip('"'))})
    env = s3_env(sim, namespace, localstack, NATMETER_OBJECTS_TABLE=inventory_table,
                 AWS_ENDPOINT_URL_DYNAMODB=dynamodb)
    one = start_bootstrap(env, name="container1")
    two = start_bootstrap(env, name="container2")
    ev = sqs_event(msgs)
    assert invoke_json(one, ev)["batchItemFailures"] == []
    assert invoke_json(two, ev)["batchItemFailures"] == []
    assert "already counted" in two.stderr_text(), "the second container finds the claims of the first"
    want = truth_by_gateway(sim)
    assert nat_bytes_by_gateway(cw, sim, namespace, want) == want
    time.sleep(2)
    assert nat_bytes_by_gateway(cw, sim, namespace, want, wait_s=0) == want


def test_a_large_object_is_streamed_in_bounded_memory(simulate, s3, bucket, localstack, start_bootstrap, cw,
                                                      namespace, record_measurement):
    """75 MB against the packaged (release) bootstrap in `make test-package`; the debug build of
    `make test-e2e` reads at a tenth of its speed, so it gets a smaller object of the same kind."""
    sim = simulate(seed=43, pods=300, nodes=10, nat_gateways=2, minutes=30, external_snat=False,
                   scope="nat-enis")
    # Every record of the simulation in one member (S3 writes an object per ENI; the function
    # reads each record's own interface-id, so one object of all ENIs is the same work).
    lines = [l for _, ls in sorted(records_by_object(sim).items()) for l in ls]
    # One member with the header, then copies without it, concatenated as gzip members: a
    # 75 MB-class object whose records are those lines, `copies` times over. Level 1 keeps the
    # ratio near what S3's objects show (about 8-10x).
    text = ("\n".join(lines) + "\n").encode()
    first = gzip.compress((" ".join(f[2:-1] for f in sim.log_format.split()) + "\n").encode() + text, 1)
    rest = gzip.compress(text, 1)
    copies = max(2, (int(os.environ.get("NATMETER_E2E_BIG_OBJECT_MB", "4")) << 20) // len(rest))
    body = first + rest * (copies - 1)
    key = object_key("eni-all", sim.start, prefix="big/")
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    b = start_bootstrap(s3_env(sim, namespace, localstack))
    before = b.proc_status()
    msg = {"MessageId": "big", "ReceiptHandle": "r", "Body": notification_body(bucket, key, len(body), "e")}
    t0 = time.monotonic()
    assert invoke_json(b, sqs_event([msg]))["batchItemFailures"] == []
    took = time.monotonic() - t0
    after = b.proc_status()
    want = truth_by_gateway(sim, copies)
    assert nat_bytes_by_gateway(cw, sim, namespace, want) == want
    decoded = len(text) * copies
    record_measurement("s3_large_object", {
        "object_bytes": len(body), "decoded_bytes": decoded, "gzip_members": copies,
        "rss_kb_before": before["VmRSS"], "peak_rss_kb": after["VmHWM"], "seconds": round(took, 1)})
    assert after["VmHWM"] - before["VmRSS"] < 64 * 1024, (
        f"peak RSS grew {after['VmHWM'] - before['VmRSS']} kB reading a {len(body) >> 20} MB object "
        f"({decoded >> 20} MB decoded): it must be streamed, not held")


def simulate_at(natmeter_bin, out, start: int, **kw) -> "object":
    """`natmeter simulate` starting at `start` (the session's simulations start 30 minutes ago)."""
    import subprocess
    from conftest import Sim
    argv = [str(natmeter_bin), "simulate", "--start", str(start), "--out", str(out)]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v).lower() if isinstance(v, bool) else str(v)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return Sim(dir=out, params=kw, start=start, minutes=kw["minutes"], events=sorted((out / "events").glob("*.json")),
               nat_gateways=(out / "nat-gateways.json").read_text().strip(),
               log_format=(out / "log-format.txt").read_text().strip(),
               truth=json.loads((out / "truth.json").read_text()))


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_batch_operations_over_history_write_results_objects_report_merges(
        natmeter_bin, s3, bucket, localstack, start_bootstrap, cw, namespace, test_out, schema):
    """Records 20 days old cannot be metrics: with NATMETER_RESULTS_BUCKET each becomes part of a
    natmeter.report/v1 object per hour and gateway, and `natmeter report` over those objects gives
    the simulator's truth."""
    from s3objects import batch_event
    start = (int(time.time()) - 20 * 86400) // 3600 * 3600 - 1800  # across an hour boundary
    sim = simulate_at(natmeter_bin, test_out / "sim", start, seed=44, pods=30, nodes=3, nat_gateways=2,
                      minutes=70, external_snat=False)
    keys = put_sim_objects(s3, bucket, sim)
    ev, task_ids = batch_event(bucket, keys + ["AWSLogs/never-written.log.gz"], schema)
    b = start_bootstrap(s3_env(sim, namespace, localstack, NATMETER_RESULTS_BUCKET=bucket,
                               NATMETER_RESULTS_PREFIX="natmeter/results"))
    r = invoke_json(b, ev)
    assert r["invocationSchemaVersion"] == schema and r["treatMissingKeysAs"] == "PermanentFailure"
    codes = {x["taskId"]: x["resultCode"] for x in r["results"]}
    assert [codes[t] for t in task_ids] == ["Succeeded"] * len(keys) + ["PermanentFailure"], r["results"]
    assert "NoSuchKey" in r["results"][-1]["resultString"]

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="natmeter/results/")["Contents"]
    import datetime as dt
    hours = {o["Key"].split("/")[2] for o in listed}
    want_hours = {dt.datetime.fromtimestamp(int(m) // 3600 * 3600, dt.timezone.utc).strftime("hour=%Y-%m-%dT%H")
                  for m, b in sim.truth["minutes"].items() if b}
    assert hours == want_hours and len(hours) == 2, "one object per hour (70 minutes from half past: two)"
    assert all(o["Key"].split("/")[3].startswith("nat_gateway=nat-") for o in listed)
    got = test_out / "results"
    for o in listed:
        p = got / o["Key"]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
    rep = subprocess_json([str(natmeter_bin), "report", "--output", "json", str(got)])
    t = sim.truth
    assert rep["totals"]["bytes"] == t["totals"]["bytes"]
    assert rep["totals"]["outbound_bytes"] == t["totals"]["outbound_bytes"]
    assert {s["source"]: s["bytes"] for s in rep["sources"]} == {s["source"]: s["bytes"] for s in t["sources"]}
    assert ({g["nat_gateway"]: g["bytes"] for g in rep["nat_gateways"] if g["bytes"]}
            == {g["nat_gateway"]: g["bytes"] for g in t["nat_gateways"] if g["bytes"]})
    assert rep["records"]["counted"] == t["records"]["counted"]
    # Nothing of it went to CloudWatch (it would refuse it), and a repeated job rewrites the same
    # objects instead of adding copies.
    assert sim.reader(cw, namespace).list_metrics("NatBytes") == []
    invoke_json(b, ev)
    again = s3.list_objects_v2(Bucket=bucket, Prefix="natmeter/results/")["Contents"]
    assert sorted(o["Key"] for o in again) == sorted(o["Key"] for o in listed)


def subprocess_json(argv: list[str]) -> dict:
    import subprocess
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_parquet_objects_meter_as_their_text_does(simulate, s3, bucket, localstack, start_bootstrap, cw,
                                                  namespace):
    """S3 delivery's Parquet (written by DuckDB: typed columns named with `_`, NULL for `-`, Gzip
    pages) reads by column name into the same NatBytes as the truth. A file without the srcaddr
    column reads like a header without it (docs/attribution.md §1.5): each of its records is a
    parse error naming the field, counted, and nothing of it is metered."""
    from s3objects import parquet_object
    sim = simulate(seed=45, pods=30, nodes=3, nat_gateways=2, minutes=6, external_snat=True)
    msgs = []
    for (eni, window), lines in sorted(records_by_object(sim).items()):
        key = object_key(eni, window).replace(".log.gz", ".log.parquet")
        body = parquet_object(sim.log_format, lines)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        msgs.append({"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r",
                     "Body": notification_body(bucket, key, len(body), "e")})
    lines = [l for l in max(records_by_object(sim).values(), key=len)
             if len(l.split(" ")) == len(sim.log_format.split())]
    s3.put_object(Bucket=bucket, Key="AWSLogs/no-srcaddr.log.parquet",
                  Body=parquet_object(sim.log_format, lines, drop="srcaddr"))
    msgs.append({"MessageId": "no-srcaddr", "ReceiptHandle": "r",
                 "Body": notification_body(bucket, "AWSLogs/no-srcaddr.log.parquet", 1, "e")})
    b = start_bootstrap(s3_env(sim, namespace, localstack))
    for i in range(0, len(msgs), 10):
        assert invoke_json(b, sqs_event(msgs[i:i + 10]))["batchItemFailures"] == []
    lines_of = [json.loads(l) for l in b.stderr_text().splitlines() if l.startswith("{")]
    obj = next(x for x in lines_of if x.get("message") == "natmeter object"
               and x["object"].endswith("/AWSLogs/no-srcaddr.log.parquet"))
    # Every record that would count needs srcaddr: none counts (those skipped before the addresses
    # matter, NODATA or REJECT, are counted as such).
    assert (obj["records_read"], obj["records_counted"], obj["bytes"]) == (len(lines), 0, 0), obj
    assert obj["parse_errors"] > len(lines) * 0.9, obj
    assert any(x.get("message") == "flow-log record skipped" and "no-srcaddr.log.parquet:" in x["location"]
               and "srcaddr" in x["error"] for x in lines_of)
    want = truth_by_gateway(sim)
    assert nat_bytes_by_gateway(cw, sim, namespace, want) == want


def test_a_partly_delivered_object_resumes_in_another_container_without_double_counting(
        simulate, s3, bucket, localstack, start_bootstrap, cw, namespace, fault_proxy, dynamodb, inventory_table):
    """CloudWatch accepts one of an object's PutMetricData requests and fails the rest until the
    deadline: the message is reported failed, and the claim in NATMETER_OBJECTS_TABLE keeps the
    clock and the delivered request. The retry, in a new container, resumes from there: it sends
    only the requests that failed, and CloudWatch holds the object's truth exactly once."""
    sim = simulate(seed=46, pods=100, nodes=4, nat_gateways=2, minutes=60, external_snat=False, scope="nat-enis")
    lines = [l for _, ls in sorted(records_by_object(sim).items()) for l in ls]
    key = object_key("eni-all", sim.start, prefix="partial/")
    body = text_object(sim.log_format, lines)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    ev = sqs_event([{"MessageId": "m1", "ReceiptHandle": "r", "Body": notification_body(bucket, key, len(body), "e")}])
    proxy = fault_proxy()
    first: dict = {}

    def rule(r):
        if r.operation != "PutMetricData":
            return "pass"
        first.setdefault("sha", r.body_sha256)
        return "pass" if r.body_sha256 == first["sha"] else "500"

    proxy.set_rule(rule)
    env = s3_env(sim, namespace, localstack, NATMETER_MIN_SOURCE_SHARE="0", NATMETER_MAX_SOURCES="500",
                 NATMETER_OBJECTS_TABLE=inventory_table,
                 AWS_ENDPOINT_URL_DYNAMODB=dynamodb)
    one = start_bootstrap(env, endpoint=proxy.url, name="first")
    # Time enough past reading the object (seconds in the debug build) for the delivered request's
    # answer to arrive: a request delivered but unanswered at the deadline is not known delivered,
    # and is sent again (the bound docs/s3.md §3 states).
    inv = one.invoke_detail(ev, timeout_s=90, deadline_s=20.0)
    assert inv.kind == "response" and inv.json()["batchItemFailures"] == [{"itemIdentifier": "m1"}], inv.text()[:500]
    proxy.wait_idle()
    puts = [r for r in proxy.since(0) if r.operation == "PutMetricData"]
    assert len({r.body_sha256 for r in puts}) >= 2, "the object must need two requests at least"
    delivered = [r for r in puts if r.forwarded_ok]
    assert len({r.body_sha256 for r in delivered}) == 1
    proxy.healthy()
    mark = proxy.mark()
    two = start_bootstrap(env, endpoint=proxy.url, name="retry")
    retry = two.invoke_detail(ev, timeout_s=60, deadline_s=30.0)
    assert retry.kind == "response" and retry.json()["batchItemFailures"] == [], retry.text()[:500]
    proxy.wait_idle()
    resent = {r.body_sha256 for r in proxy.since(mark) if r.operation == "PutMetricData"}
    assert first["sha"] not in resent, "the request delivered the first time was sent again"
    want = truth_by_gateway(sim)
    assert nat_bytes_by_gateway(cw, sim, namespace, want) == want
