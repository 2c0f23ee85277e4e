"""Flow-log objects as S3 delivery writes them (docs/s3.md §2), made from a simulation's records:
one gzip text object per NAT ENI and 5-minute window, a header line of field names first, under
AWS's key layout `AWSLogs/{account}/vpcflowlogs/{region}/YYYY/MM/DD/HH/{account}_vpcflowlogs_
{region}_{fl-id}_{YYYYMMDDTHHmmZ}_{hash}.log.gz`. The Lambda events around them are built here in
the shapes AWS documents (SQS messages around S3 notifications, Batch Operations tasks)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import uuid
from collections import defaultdict

from lambda_events import decode_event

ACCOUNT = "123456789012"
REGION = "us-east-1"


def header(log_format: str) -> str:
    return " ".join(f[2:-1] for f in log_format.split())


def object_key(eni: str, window_start: int, prefix: str = "", flow_log: str = "fl-0e2e0001") -> str:
    t = dt.datetime.fromtimestamp(window_start, dt.timezone.utc)
    h = hashlib.sha1(f"{eni}{window_start}".encode()).hexdigest()[:8]
    return (f"{prefix}AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{t:%Y/%m/%d/%H}/"
            f"{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log}_{t:%Y%m%dT%H%MZ}_{h}.log.gz")


def records_by_object(sim) -> dict[tuple[str, int], list[str]]:
    """The simulated records grouped as S3 delivery groups them: (ENI, 5-minute window)."""
    out: dict[tuple[str, int], list[str]] = defaultdict(list)
    for path in sim.events:
        p = decode_event(path.read_bytes())
        if p.get("messageType") != "DATA_MESSAGE":
            continue
        eni = p["logStream"].removesuffix("-all")
        for e in p["logEvents"]:
            window = e["timestamp"] // 1000 // 300 * 300
            out[(eni, window)].append(e["message"])
    return out


def text_object(log_format: str, lines: list[str]) -> bytes:
    return gzip.compress((header(log_format) + "\n" + "\n".join(lines) + "\n").encode(), 6)


def put_sim_objects(s3, bucket: str, sim, prefix: str = "", odd_prefix: str = "") -> list[str]:
    """Every object of the simulation; with `odd_prefix`, the first NAT ENI's first object is put
    under that prefix instead (a key with characters S3 URL-encodes)."""
    keys = []
    odd = odd_prefix
    for (eni, window), lines in sorted(records_by_object(sim).items()):
        key = object_key(eni, window, prefix)
        if odd and eni in sim.nat_enis():
            key, odd = object_key(eni, window, odd_prefix), ""
        s3.put_object(Bucket=bucket, Key=key, Body=text_object(sim.log_format, lines))
        keys.append(key)
    return keys


def sqs_event(messages: list[dict]) -> bytes:
    """The event Lambda's SQS event source mapping delivers for messages received from a queue."""
    records = []
    for m in messages:
        records.append({
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764547200000",
                           "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764547200000"},
            "messageAttributes": {}, "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:natmeter-objects",
            "awsRegion": REGION,
        })
    return json.dumps({"Records": records}).encode()


def notification_body(bucket: str, key: str, size: int, etag: str) -> str:
    """An S3 event notification as S3 writes it: the key URL-encoded, `+` for a space."""
    from urllib.parse import quote_plus
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2026-12-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "natmeter",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag,
                          "sequencer": "0062E99A88DC407460"}}}]})


def batch_event(bucket: str, keys: list[str], schema: str = "1.0") -> tuple[bytes, list[str]]:
    """An S3 Batch Operations invocation over `keys` (URL-encoded as in a manifest)."""
    from urllib.parse import quote
    tasks, ids = [], []
    for k in keys:
        tid = uuid.uuid4().hex
        ids.append(tid)
        t = {"taskId": tid, "s3Key": quote(k, safe="/"), "s3VersionId": None}
        if schema == "1.0":
            t["s3BucketArn"] = f"arn:aws:s3:::{bucket}"
        else:
            t["s3Bucket"] = bucket
        tasks.append(t)
    job = {"id": str(uuid.uuid4())}
    if schema == "2.0":
        job["userArguments"] = {}
    return json.dumps({"invocationSchemaVersion": schema, "invocationId": uuid.uuid4().hex,
                       "job": job, "tasks": tasks}).encode(), ids


INT32 = {"version", "srcport", "dstport", "protocol", "tcp-flags", "traffic-path", "sublocation-id"}
INT64 = {"packets", "bytes", "start", "end"}


def parquet_object(log_format: str, lines: list[str], drop: str | None = None) -> bytes:
    """The records as S3 delivery's Parquet writes them: a column per field, `-` in names as `_`,
    INT32 / INT64 / STRING by AWS's table, `-` (no value) as NULL, Gzip pages. Written by DuckDB,
    not by natmeter. `drop` leaves one field's column out."""
    import os
    import tempfile

    import duckdb
    names = [f[2:-1] for f in log_format.split()]
    rows = []
    for line in lines:
        vals = line.split(" ")
        # A row of a Parquet file has every column: the simulator's line with a field dropped
        # (a parse error in text, counted nowhere) has no Parquet form and is left out.
        if len(vals) == len(names):
            rows.append(vals)
    con = duckdb.connect()
    cols = ", ".join(f'"{n}" VARCHAR' for n in names)
    con.execute(f"CREATE TABLE raw ({cols})")
    con.executemany("INSERT INTO raw VALUES (" + ", ".join("?" for _ in names) + ")", rows)
    typed = []
    for n in names:
        if n == drop:
            continue
        col = f'NULLIF("{n}", \'-\')'
        kind = "INTEGER" if n in INT32 else "BIGINT" if n in INT64 else None
        typed.append(f'TRY_CAST({col} AS {kind}) AS "{n.replace("-", "_")}"' if kind
                     else f'{col} AS "{n.replace("-", "_")}"')
    fd, path = tempfile.mkstemp(suffix=".parquet")
    os.close(fd)
    try:
        con.execute(f"COPY (SELECT {', '.join(typed)} FROM raw) TO '{path}' (FORMAT parquet, COMPRESSION gzip)")
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)
