"""Hand-made flow-log records and subscription events over a fixed topology, for tests that need
exact control over every field (the bad-input matrix, duplicate delivery).

Topology: one NAT gateway NAT_ID, ENI NAT_ENI, private IP NAT_IP; the v5 format FORMAT (the
simulator's, 26 fields). `record(**fields)` gives a line of an outbound private-side traversal
(rule A: pod POD_IP -> NAT -> REMOTE_IP), counted with `bytes` bytes unless a field says otherwise.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Optional

NAT_ID = "nat-0e2e00000000000a1"
NAT_ENI = "eni-0e2e00000000000a1"
NAT_IP = "10.0.0.10"
OTHER_ENI = "eni-0e2e00000000000b2"
POD_IP = "10.0.128.4"
REMOTE_IP = "3.218.181.255"
GATEWAYS = [{"id": NAT_ID, "eni": NAT_ENI, "private_ips": [NAT_IP], "az_id": "use1-az1"}]
FIELDS = ["version", "account-id", "region", "vpc-id", "az-id", "subnet-id", "instance-id", "interface-id",
          "flow-direction", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "pkt-srcaddr", "pkt-dstaddr",
          "pkt-src-aws-service", "pkt-dst-aws-service", "traffic-path", "packets", "bytes", "start", "end",
          "action", "log-status", "type"]
FORMAT = " ".join("${%s}" % f for f in FIELDS)
LOG_STREAM = f"{NAT_ENI}-all"


def minute_ago(minutes: int = 10) -> int:
    """Start of the minute `minutes` ago (Unix seconds): within CloudWatch's accepted window."""
    return (int(time.time()) - minutes * 60) // 60 * 60


def env(namespace: str, **extra) -> dict:
    e = {"NATMETER_NAT_GATEWAYS": json.dumps(GATEWAYS), "NATMETER_LOG_FORMAT": FORMAT,
         "NATMETER_NAMESPACE": namespace}
    e.update(extra)
    return e


def fields(start: Optional[int] = None, **over) -> dict:
    """The fields of a counted outbound record (rule A); keyword names use _ for -."""
    base = minute_ago() + 5
    if start is None:
        start = base
    end = start + 9 if isinstance(start, int) and start < 2 ** 64 - 9 else base + 9
    f = {
        "version": "5", "account-id": "123456789012", "region": "us-east-1", "vpc-id": "vpc-0a1b2c3d4e5f60718",
        "az-id": "use1-az1", "subnet-id": "subnet-0b54489040e3ad369", "instance-id": "-",
        "interface-id": NAT_ENI, "flow-direction": "ingress", "srcaddr": POD_IP, "dstaddr": NAT_IP,
        "srcport": "35943", "dstport": "443", "protocol": "6", "pkt-srcaddr": POD_IP, "pkt-dstaddr": REMOTE_IP,
        "pkt-src-aws-service": "-", "pkt-dst-aws-service": "-", "traffic-path": "-", "packets": "281",
        "bytes": "336781", "start": str(start), "end": str(end), "action": "ACCEPT", "log-status": "OK",
        "type": "IPv4",
    }
    for k, v in over.items():
        k = k.replace("_", "-")
        assert k in f, f"unknown field {k}"
        f[k] = str(v)
    return f


def record(start: Optional[int] = None, **over) -> str:
    f = fields(start, **over)
    return " ".join(f[k] for k in FIELDS)


def payload(messages: list, log_stream: str = LOG_STREAM, ts_ms: Optional[int] = None, id_base: int = 0,
            message_type: str = "DATA_MESSAGE") -> dict:
    ts_ms = (minute_ago() + 5) * 1000 if ts_ms is None else ts_ms
    return {
        "messageType": message_type, "owner": "123456789012", "logGroup": "/aws/vpc/flow-logs",
        "logStream": log_stream, "subscriptionFilters": ["natmeter"],
        "logEvents": [{"id": f"{id_base + i:056d}", "timestamp": ts_ms, "message": m}
                      for i, m in enumerate(messages)],
    }


def wrap(decoded: bytes, level: int = 6) -> bytes:
    """Decoded payload bytes -> Lambda event bytes."""
    gz = gzip.compress(decoded, compresslevel=level, mtime=0)
    return json.dumps({"awslogs": {"data": base64.b64encode(gz).decode("ascii")}}).encode()


def event(messages: list, **kw) -> bytes:
    level = kw.pop("level", 6)
    return wrap(json.dumps(payload(messages, **kw), separators=(",", ":")).encode(), level)


def good_event(n: int = 1, id_base: int = 0, bytes_each: int = 336781) -> bytes:
    """n counted records (distinct source ports), bytes_each bytes each."""
    return event([record(srcport=20000 + i, bytes=bytes_each) for i in range(n)], id_base=id_base)
