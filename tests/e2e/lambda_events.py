"""Build and take apart CloudWatch Logs subscription events ({"awslogs":{"data":"<b64 gzip json>"}})."""

from __future__ import annotations

import base64
import copy
import gzip
import json

CONTROL_MESSAGE = {
    "messageType": "CONTROL_MESSAGE",
    "owner": "CloudwatchLogs",
    "logGroup": "",
    "logStream": "",
    "subscriptionFilters": [],
    "logEvents": [{
        "id": "",
        "timestamp": 1432826855000,
        "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.",
    }],
}


def wrap_bytes(gz: bytes) -> bytes:
    return json.dumps({"awslogs": {"data": base64.b64encode(gz).decode("ascii")}}).encode()


def encode_payload(payload: dict) -> bytes:
    """A decoded subscription payload -> Lambda event bytes."""
    return wrap_bytes(gzip.compress(json.dumps(payload, separators=(",", ":")).encode()))


def decode_event(event: bytes) -> dict:
    data = json.loads(event)["awslogs"]["data"]
    return json.loads(gzip.decompress(base64.b64decode(data)))


def decoded_size(event: bytes) -> int:
    data = json.loads(event)["awslogs"]["data"]
    return len(gzip.decompress(base64.b64decode(data)))


def control_message_event() -> bytes:
    return encode_payload(CONTROL_MESSAGE)


def corrupt_events(template_payload: dict) -> dict[str, bytes]:
    """Events that are not valid base64 / gzip / JSON / subscription payloads.

    template_payload: a real DATA_MESSAGE (from the simulator, of a NAT ENI) so that each event
    differs from a valid one by exactly the defect its name says."""
    good_gz = gzip.compress(json.dumps(template_payload).encode())
    no_events = {k: v for k, v in template_payload.items() if k != "logEvents"}
    return {
        "bad_base64": json.dumps({"awslogs": {"data": "!!!not*base64@@@" + "%" * 13}}).encode(),
        "truncated_gzip": wrap_bytes(good_gz[: len(good_gz) // 2]),
        "json_without_logEvents": wrap_bytes(gzip.compress(json.dumps(no_events).encode())),
        "gzip_of_non_json": wrap_bytes(gzip.compress(b"this is not JSON {")),
        "base64_of_non_gzip": wrap_bytes(json.dumps(template_payload).encode()),
        "no_awslogs_key": json.dumps({"Records": []}).encode(),
    }


def inflate_to_size(payload: dict, target_decoded_bytes: int) -> dict:
    """Repeat payload's logEvents (fresh ids) until the decoded JSON is about target bytes
    (never more: CloudWatch Logs subscription batches are at most 1,048,576 bytes)."""
    base = payload["logEvents"]
    assert base, "payload has no log events"
    out = copy.deepcopy(payload)
    out["logEvents"] = []
    size = len(json.dumps(out, separators=(",", ":")))
    n = 0
    while True:
        ev = dict(base[n % len(base)])
        ev["id"] = f"{37000000000000000000000000000000000000000000000000000000 + n:056d}"
        add = len(json.dumps(ev, separators=(",", ":"))) + 1
        if size + add > target_decoded_bytes:
            break
        out["logEvents"].append(ev)
        size += add
        n += 1
    return out
