"""The function-side bad-input matrix (issue 6 section 2): every way an event, a payload, a record or
a setting can be wrong, mapped to its exact outcome, one parametrized test per row.

Outcomes (docs/contracts.md §5.2):
- ERR: the invocation fails with an error whose message contains the given text (Lambda retries
  the event and the on-failure destination keeps it); nothing is emitted;
- OK: the invocation succeeds; bad records are skipped and counted (response counters, and the
  ParseErrors / RecordsSkipped{Reason} / RecordsCounted metrics in CloudWatch), with a parse-error
  sample naming the problem in the log;
- SURVIVES: a record CloudWatch itself would refuse to accept as a datapoint (timestamp outside
  the past two weeks / next two hours, a dimension value that is not 1-1024 ASCII characters) must
  not fail the batch: the invocation succeeds and the good record beside it is delivered;
- START: the process refuses to start, naming the variable (and the value).

Every event row runs on its own bootstrap, behind a proxy that checks requests the way the real
CloudWatch does (fault_proxy.py, emulate_cloudwatch=True; LocalStack checks none of it). After
each row the same process must answer a good invocation (it never dies), must not have panicked,
and must stay small. The matrix, with what each row actually did, is written to
tests/e2e/out/bad_input_matrix.json.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest

import flowgen as fg
from bootstrap_proc import json_lines
from conftest import OUT
from cwread import MetricsReader
from lambda_events import control_message_event

U64_MAX = 2 ** 64 - 1
REASONS = ("public_side", "not_nat", "rejected", "no_data", "skip_data", "zero_bytes")
GOOD_BYTES = 336781  # fg.record() default
MATRIX_REPORT: dict = {}


@dataclass
class Expect:
    kind: str  # "error" | "ok" | "survives" | "startup"
    contains: tuple = ()  # error: substrings of errorMessage; startup: of stderr/init error
    batch: str = "data"
    read: Optional[int] = None
    counted: Optional[int] = None
    parse_errors: int = 0
    skipped: dict = field(default_factory=dict)
    sample: Optional[str] = None  # substring of a logged parse-error sample
    bytes: Optional[int] = None  # response "bytes" and CloudWatch NatBytes total
    hwm_growth_kb: Optional[int] = None  # VmHWM may grow at most this much during the row


def ERR(*contains, **kw):
    return Expect("error", contains=contains, **kw)


def OK(**kw):
    return Expect("ok", **kw)


def SURVIVES(**kw):
    return Expect("survives", **kw)


def START(*contains):
    return Expect("startup", contains=contains)


@dataclass
class Row:
    id: str
    kind: str  # "event" | "record" | "env"
    expect: Expect
    event: Optional[Callable[[], bytes]] = None
    env: Optional[dict] = None
    note: str = ""  # what the row shows, for the report


def wrap_json(obj) -> bytes:
    return json.dumps(obj).encode()


def data_event(raw_data: bytes) -> bytes:
    """An event whose awslogs.data is base64(raw_data) (raw_data need not be gzip)."""
    return wrap_json({"awslogs": {"data": base64.b64encode(raw_data).decode()}})


def payload_event(decoded_text: bytes) -> bytes:
    return fg.wrap(decoded_text)


def payload_with(**over) -> bytes:
    p = fg.payload([fg.record()])
    for k, v in over.items():
        if v is _DELETE:
            p.pop(k, None)
        else:
            p[k] = v
    return json.dumps(p).encode()


_DELETE = object()


def event_with_log_event(**over) -> bytes:
    p = fg.payload([fg.record()])
    ev = p["logEvents"][0]
    for k, v in over.items():
        if v is _DELETE:
            ev.pop(k, None)
        else:
            ev[k] = v
    return fg.wrap(json.dumps(p).encode())


def records_event(*lines) -> bytes:
    return fg.event(list(lines))


@functools.lru_cache(maxsize=None)
def one_repeated_line_event(target: int = 1_040_000) -> tuple[bytes, int]:
    """A ~1 MB batch that is one flow-log line repeated (distinct log-event ids)."""
    line = fg.record()
    p = fg.payload([line])
    one = len(json.dumps(p["logEvents"][0], separators=(",", ":"))) + 1
    head = len(json.dumps(fg.payload([]), separators=(",", ":")))
    n = (target - head) // one
    return fg.event([line] * n), n


def repeated_event() -> bytes:
    return one_repeated_line_event()[0]


def _repeated_n() -> int:
    return one_repeated_line_event()[1]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@functools.lru_cache(maxsize=None)
def bad_lines_event(target: int = 1_000_000) -> tuple[bytes, int]:
    p = fg.payload(["x"])
    one = len(json.dumps(p["logEvents"][0], separators=(",", ":"))) + 1
    n = (target - 300) // one
    return fg.event(["x"] * n), n


def _bad_lines():
    return bad_lines_event()[0]


def _bad_lines_n():
    return bad_lines_event()[1]


def gzip_bomb() -> bytes:
    return data_event(gzip.compress(b"\0" * (64 << 20), compresslevel=9))


def big_valid_payload() -> bytes:
    """9 MB of well-formed records: over the 8 MiB decoded cap (CloudWatch Logs batches are <= 1 MB)."""
    line = fg.record()
    return fg.event([line] * (9_000_000 // (len(line) + 80)))


def two_max_records() -> bytes:
    return records_event(fg.record(bytes=U64_MAX, srcaddr="10.0.128.4", pkt_srcaddr="10.0.128.4"),
                         fg.record(bytes=U64_MAX, srcaddr="10.0.128.5", pkt_srcaddr="10.0.128.5"))


def raw_payload_bytes(raw: bytes) -> bytes:
    return fg.wrap(raw)


GOOD = fg.record()
NOW_MIN = fg.minute_ago()

ROWS: list[Row] = [
    # ------------------------------------------------------------ the event envelope -----------
    Row("event_not_json", "event", ERR("failed to deserialize"), lambda: b"this is not JSON",
        note="rejected by lambda_runtime before the handler runs"),
    Row("event_empty_body", "event", ERR("failed to deserialize"), lambda: b""),
    Row("event_json_null", "event", ERR("not a CloudWatch Logs subscription event"), lambda: b"null"),
    Row("event_json_array", "event", ERR("not a CloudWatch Logs subscription event"), lambda: b"[1,2]"),
    Row("event_json_without_awslogs", "event", ERR("not a CloudWatch Logs subscription event", "awslogs"),
        lambda: wrap_json({"Records": []})),
    Row("event_awslogs_not_an_object", "event", ERR("not a CloudWatch Logs subscription event"),
        lambda: wrap_json({"awslogs": "H4sI"})),
    Row("event_awslogs_data_missing", "event", ERR("not a CloudWatch Logs subscription event", "data"),
        lambda: wrap_json({"awslogs": {}})),
    Row("event_awslogs_data_not_a_string", "event", ERR("not a CloudWatch Logs subscription event", "invalid type"),
        lambda: wrap_json({"awslogs": {"data": 12345}})),
    Row("event_awslogs_data_empty", "event", ERR("awslogs.data is not valid gzip"),
        lambda: wrap_json({"awslogs": {"data": ""}})),
    Row("event_bad_base64", "event", ERR("awslogs.data is not valid base64"),
        lambda: wrap_json({"awslogs": {"data": "!!!not*base64@@@" + "%" * 13}})),
    Row("event_base64_of_non_gzip", "event", ERR("awslogs.data is not valid gzip"),
        lambda: data_event(json.dumps(fg.payload([GOOD])).encode())),
    Row("event_truncated_gzip", "event", ERR("awslogs.data is not valid gzip"),
        lambda: data_event(gzip.compress(json.dumps(fg.payload([GOOD] * 50)).encode())[:300])),
    Row("event_gzip_bomb_64MB_of_zeros", "event",
        ERR("inflates to more than", hwm_growth_kb=40 * 1024), gzip_bomb,
        note="refused at the 8 MiB decoded cap without inflating 64 MB"),
    Row("event_9MB_of_valid_records", "event", ERR("inflates to more than"), big_valid_payload),
    Row("event_deeply_nested_json_in_envelope", "event", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: (fg.event([GOOD])[:-1] + b',"x":' + nested(10_000).encode() + b"}"),
        note="10,000 nested arrays beside awslogs: skipped without recursion (serde_json ignores unknown keys "
             "iteratively), the batch is processed"),
    # ------------------------------------------------------------ the decoded payload ----------
    Row("payload_not_json", "event", ERR("decoded payload is not the CloudWatch Logs JSON document"),
        lambda: payload_event(b"this is not JSON {")),
    Row("payload_json_array", "event", ERR("decoded payload is not the CloudWatch Logs JSON document"),
        lambda: payload_event(b"[]")),
    Row("payload_without_messageType", "event", ERR("decoded payload is not", "messageType"),
        lambda: payload_event(payload_with(messageType=_DELETE))),
    Row("payload_logEvents_null", "event", ERR("DATA_MESSAGE without logEvents"),
        lambda: payload_event(payload_with(logEvents=None))),
    Row("payload_logEvents_missing", "event", ERR("DATA_MESSAGE without logEvents"),
        lambda: payload_event(payload_with(logEvents=_DELETE))),
    Row("payload_logEvents_a_string", "event", ERR("decoded payload is not", "invalid type"),
        lambda: payload_event(payload_with(logEvents="5 123 ..."))),
    Row("payload_logEvents_an_object", "event", ERR("decoded payload is not", "invalid type"),
        lambda: payload_event(payload_with(logEvents={"message": GOOD}))),
    Row("payload_logEvents_list_of_strings", "event", ERR("decoded payload is not", "invalid type"),
        lambda: payload_event(payload_with(logEvents=[GOOD]))),
    Row("payload_message_a_number", "event", ERR("decoded payload is not", "invalid type"),
        lambda: event_with_log_event(message=5)),
    Row("payload_message_null", "event", ERR("decoded payload is not", "invalid type"),
        lambda: event_with_log_event(message=None)),
    Row("payload_message_missing", "event", ERR("decoded payload is not", "message"),
        lambda: event_with_log_event(message=_DELETE)),
    Row("payload_timestamp_missing", "event", ERR("decoded payload is not", "timestamp"),
        lambda: event_with_log_event(timestamp=_DELETE)),
    Row("payload_timestamp_a_string", "event", ERR("decoded payload is not", "invalid type"),
        lambda: event_with_log_event(timestamp="1764000000000")),
    Row("payload_timestamp_a_float", "event", ERR("decoded payload is not", "invalid type"),
        lambda: event_with_log_event(timestamp=1.5)),
    Row("payload_logEvents_10000_nested_arrays", "event", ERR("decoded payload is not", "invalid type: sequence"),
        lambda: payload_event(('{"messageType":"DATA_MESSAGE","logStream":"%s","logEvents":%s}'
                               % (fg.LOG_STREAM, nested(10_000))).encode()),
        note="refused at the first nested array (a log event must be an object), without recursing"),
    Row("payload_10000_nested_arrays_under_an_unknown_key", "event", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: payload_event(('{"messageType":"DATA_MESSAGE","logStream":"%s","x":%s,"logEvents":%s}'
                               % (fg.LOG_STREAM, nested(10_000), json.dumps(fg.payload([GOOD])["logEvents"]))).encode()),
        note="unknown keys are skipped without recursion: no stack overflow, the batch is processed"),
    Row("payload_10000_nested_arrays_inside_a_log_event", "event", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: payload_event(
            ('{"messageType":"DATA_MESSAGE","logStream":"%s","logEvents":[{"id":"1","timestamp":%d,"message":%s,'
             '"extra":%s}]}' % (fg.LOG_STREAM, (NOW_MIN + 5) * 1000, json.dumps(GOOD), nested(10_000))).encode()),
        note="an unknown key of a log event, 10,000 arrays deep: skipped, the record counted"),
    Row("payload_lone_surrogate_escape_in_message", "event", ERR("decoded payload is not", "surrogate"),
        lambda: payload_event(json.dumps(fg.payload([GOOD + " \udc80"])).encode()),
        note="JSON can only carry non-UTF-8 as a lone surrogate escape; serde_json refuses it, failing the batch"),
    Row("payload_raw_invalid_utf8_byte_in_message", "event", ERR("decoded payload is not"),
        lambda: raw_payload_bytes(json.dumps(fg.payload([GOOD + " XX"])).encode().replace(b" XX", b" \xff\xfe")),
        note="raw 0xFF 0xFE inside a JSON string: not UTF-8, the whole batch fails"),
    Row("payload_non_ascii_in_unread_field", "event", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: fg.event([fg.record(account_id="12345678901\u00e9\U0001F600")]),
        note="valid UTF-8 (escaped surrogate pair) in a field the rules do not read: counted"),
    Row("payload_empty_logEvents", "event", OK(read=0, counted=0), lambda: fg.event([]),
        note="nothing read, nothing emitted"),
    Row("payload_unknown_messageType", "event", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: fg.event([GOOD], message_type="FOO_MESSAGE"),
        note="anything but CONTROL_MESSAGE is read as data"),
    Row("payload_stream_of_another_eni", "event", OK(batch="skipped_not_nat", read=0, counted=0),
        lambda: fg.event([GOOD], log_stream=f"{fg.OTHER_ENI}-all"),
        note="skipped from its first kilobyte, nothing emitted"),
    # ------------------------------------------------------------ records ----------------------
    Row("record_1MB_event_of_one_repeated_line", "record",
        OK(read=-1, counted=-1, bytes=-1), repeated_event,
        note="every copy is a record: all counted"),
    Row("record_1MB_event_of_one_char_bad_lines", "record",
        OK(read=-2, counted=0, parse_errors=-2, sample="expected 26 fields"), _bad_lines,
        note="tens of thousands of parse errors, at most 5 samples logged"),
    Row("record_huge_single_token_900KB", "record",
        OK(read=2, counted=1, parse_errors=1, sample="expected 26 fields", bytes=GOOD_BYTES),
        lambda: records_event("A" * 900_000, GOOD)),
    Row("record_900KB_value_in_an_unread_field", "record", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: records_event(fg.record(vpc_id="v" * 900_000)),
        note="fields the rules do not read are not validated"),
    Row("record_100000_fields", "record",
        OK(read=2, counted=1, parse_errors=1, sample="found 100000", bytes=GOOD_BYTES),
        lambda: records_event(" ".join(["1"] * 100_000), GOOD)),
    Row("record_empty_message", "record", OK(read=2, counted=1, parse_errors=1, sample="found 0", bytes=GOOD_BYTES),
        lambda: records_event("", GOOD)),
    Row("record_whitespace_message", "record", OK(read=2, counted=1, parse_errors=1, sample="found 0", bytes=GOOD_BYTES),
        lambda: records_event(" \t ", GOOD)),
    Row("record_25_fields", "record", OK(read=1, counted=0, parse_errors=1, sample="found 25"),
        lambda: records_event(GOOD.rsplit(" ", 1)[0])),
    Row("record_negative_bytes", "record",
        OK(read=2, counted=1, parse_errors=1, sample="field `bytes`: expected a non-negative integer", bytes=GOOD_BYTES),
        lambda: records_event(fg.record(bytes=-5), GOOD)),
    Row("record_bytes_u64_overflow", "record",
        OK(read=2, counted=1, parse_errors=1, sample="field `bytes`: integer too large for 64 bits", bytes=GOOD_BYTES),
        lambda: records_event(fg.record(bytes=U64_MAX + 1), GOOD)),
    Row("record_bytes_25_digits", "record",
        OK(read=1, counted=0, parse_errors=1, sample="integer too large for 64 bits"),
        lambda: records_event(fg.record(bytes="9" * 25))),
    Row("record_bytes_not_an_integer", "record",
        OK(read=1, counted=0, parse_errors=1, sample="field `bytes`: expected a non-negative integer"),
        lambda: records_event(fg.record(bytes="1.5"))),
    Row("record_bytes_u64_max", "record", OK(read=1, counted=1, bytes=U64_MAX),
        lambda: records_event(fg.record(bytes=U64_MAX)),
        note="the largest valid value is counted"),
    Row("record_two_sources_of_u64_max_bytes", "record", OK(read=2, counted=2, bytes=U64_MAX),
        two_max_records,
        note="totals saturate (the ledger's policy) instead of overflowing"),
    Row("record_negative_packets", "record",
        OK(read=1, counted=0, parse_errors=1, sample="field `packets`"),
        lambda: records_event(fg.record(packets=-1))),
    Row("record_ipv6_with_zone_in_srcaddr", "record",
        OK(read=2, counted=1, parse_errors=1, sample="field `srcaddr`: expected an IPv4 or IPv6 address", bytes=GOOD_BYTES),
        lambda: records_event(fg.record(srcaddr="fe80::1%eth0"), GOOD)),
    Row("record_ipv6_with_zone_in_pkt_dstaddr", "record",
        OK(read=1, counted=0, parse_errors=1, sample="field `pkt-dstaddr`"),
        lambda: records_event(fg.record(pkt_dstaddr="fe80::1%25eth0"))),
    Row("record_ipv4_octet_out_of_range", "record",
        OK(read=1, counted=0, parse_errors=1, sample="field `dstaddr`"),
        lambda: records_event(fg.record(dstaddr="10.0.0.256"))),
    Row("record_port_out_of_range", "record", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: records_event(fg.record(srcport=70000)),
        note="ports are not read by the rules: the record is counted"),
    Row("record_port_negative", "record", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: records_event(fg.record(dstport=-1)), note="not read: counted"),
    Row("record_protocol_out_of_range", "record", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: records_event(fg.record(protocol=300)), note="not read: counted"),
    Row("record_unknown_flow_direction", "record", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: records_event(fg.record(flow_direction="sideways")), note="not read: counted"),
    Row("record_unknown_log_status", "record",
        OK(read=2, counted=1, parse_errors=1, sample="field `log-status`: expected OK, NODATA or SKIPDATA",
           bytes=GOOD_BYTES),
        lambda: records_event(fg.record(log_status="MAYBE"), GOOD)),
    Row("record_lowercase_log_status", "record", OK(read=1, counted=0, parse_errors=1, sample="field `log-status`"),
        lambda: records_event(fg.record(log_status="ok"))),
    Row("record_unknown_action", "record",
        OK(read=1, counted=0, parse_errors=1, sample="field `action`: expected ACCEPT or REJECT"),
        lambda: records_event(fg.record(action="DENY"))),
    Row("record_interface_id_missing", "record",
        OK(read=1, counted=0, parse_errors=1, sample="field `interface-id`: a value is required here"),
        lambda: records_event(fg.record(interface_id="-"))),
    Row("record_start_not_a_number", "record", OK(read=1, counted=0, parse_errors=1, sample="field `start`"),
        lambda: records_event(fg.record(start="yesterday"))),
    Row("record_end_not_a_number", "record", OK(read=1, counted=0, parse_errors=1, sample="field `end`"),
        lambda: records_event(fg.record(end="soon"))),
    Row("record_start_absent_uses_event_timestamp", "record", OK(read=1, counted=1, bytes=GOOD_BYTES),
        lambda: records_event(fg.record(start="-"))),
    Row("record_nodata", "record", OK(read=1, counted=0, skipped={"no_data": 1}),
        lambda: records_event(fg.record(log_status="NODATA"))),
    Row("record_skipdata", "record", OK(read=1, counted=0, skipped={"skip_data": 1}),
        lambda: records_event(fg.record(log_status="SKIPDATA"))),
    Row("record_rejected", "record", OK(read=1, counted=0, skipped={"rejected": 1}),
        lambda: records_event(fg.record(action="REJECT"))),
    Row("record_zero_bytes", "record", OK(read=1, counted=0, skipped={"zero_bytes": 1}),
        lambda: records_event(fg.record(bytes=0))),
    Row("record_public_side", "record", OK(read=1, counted=0, skipped={"public_side": 1}),
        lambda: records_event(fg.record(flow_direction="egress", srcaddr=fg.NAT_IP, dstaddr=fg.REMOTE_IP,
                                        pkt_srcaddr=fg.NAT_IP, pkt_dstaddr=fg.REMOTE_IP))),
    Row("record_of_another_eni", "record", OK(read=1, counted=0, skipped={"not_nat": 1}),
        lambda: records_event(fg.record(interface_id=fg.OTHER_ENI))),
    # records whose datapoints CloudWatch itself refuses (LocalStack accepts them; the proxy checks)
    Row("record_start_in_1970", "record", SURVIVES(read=2), lambda: records_event(fg.record(start=60), GOOD),
        note="CloudWatch refuses timestamps older than two weeks (InvalidParameterValue)"),
    Row("record_start_in_2100", "record", SURVIVES(read=2),
        lambda: records_event(fg.record(start=4_102_444_800), GOOD),
        note="CloudWatch refuses timestamps more than two hours ahead"),
    Row("record_start_u64_max", "record", SURVIVES(read=2),
        lambda: records_event(fg.record(start=U64_MAX, end=U64_MAX), GOOD)),
    Row("record_aws_service_2000_chars", "record", SURVIVES(read=2),
        lambda: records_event(fg.record(pkt_dst_aws_service="S" * 2000), GOOD),
        note="becomes a Destination dimension value; CloudWatch allows 1-1024 characters"),
    Row("record_aws_service_non_ascii", "record", SURVIVES(read=2),
        lambda: records_event(fg.record(pkt_dst_aws_service="S3\u00e9"), GOOD),
        note="becomes a Destination dimension value; CloudWatch allows ASCII only"),
    Row("record_aws_service_control_char", "record", SURVIVES(read=2),
        lambda: records_event(fg.record(pkt_dst_aws_service="S3\u0007"), GOOD),
        note="becomes a Destination dimension value; CloudWatch refuses control characters"),
    # ------------------------------------------------------------ settings (start-up) ----------
    Row("env_format_empty", "env", START("NATMETER_LOG_FORMAT", "empty"), env={"NATMETER_LOG_FORMAT": ""}),
    Row("env_format_blank", "env", START("NATMETER_LOG_FORMAT", "empty"), env={"NATMETER_LOG_FORMAT": "   "}),
    Row("env_format_duplicated_field", "env", START("NATMETER_LOG_FORMAT", "`bytes` twice"),
        env={"NATMETER_LOG_FORMAT": "${version} ${bytes} ${srcaddr} ${bytes}"}),
    Row("env_format_not_aws_syntax", "env", START("NATMETER_LOG_FORMAT", "is not of the form"),
        env={"NATMETER_LOG_FORMAT": "${version} srcaddr ${bytes}"}),
    Row("env_format_300_columns", "env", START("NATMETER_LOG_FORMAT", "at most 256"),
        env={"NATMETER_LOG_FORMAT": " ".join("${f%d}" % i for i in range(300))}),
    Row("env_nat_gateways_missing", "env", START("NATMETER_NAT_GATEWAYS", "is required"),
        env={"NATMETER_NAT_GATEWAYS": None}),
    Row("env_nat_gateways_empty_string", "env", START("NATMETER_NAT_GATEWAYS", "not a JSON list"),
        env={"NATMETER_NAT_GATEWAYS": ""}),
    Row("env_nat_gateways_invalid_json", "env", START("NATMETER_NAT_GATEWAYS", "not a JSON list"),
        env={"NATMETER_NAT_GATEWAYS": "[{nat"}),
    Row("env_nat_gateways_empty_list", "env", START("NATMETER_NAT_GATEWAYS", "lists no NAT gateway"),
        env={"NATMETER_NAT_GATEWAYS": "[]"}),
    Row("env_nat_gateways_an_object", "env", START("NATMETER_NAT_GATEWAYS", "not a JSON list"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps(fg.GATEWAYS[0])}),
    Row("env_nat_gateways_bad_ip", "env", START("NATMETER_NAT_GATEWAYS", "10.0.0.999"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps([dict(fg.GATEWAYS[0], private_ips=["10.0.0.999"])])}),
    Row("env_nat_gateways_no_ips", "env", START("NATMETER_NAT_GATEWAYS", "private_ips is empty"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps([dict(fg.GATEWAYS[0], private_ips=[])])}),
    Row("env_nat_gateways_bad_eni", "env", START("NATMETER_NAT_GATEWAYS", "is not an ENI id"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps([dict(fg.GATEWAYS[0], eni="eni-xyz")])}),
    Row("env_nat_gateways_same_eni_twice", "env", START("NATMETER_NAT_GATEWAYS", "configured twice"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps([fg.GATEWAYS[0], dict(fg.GATEWAYS[0], id="nat-2")])}),
    Row("env_nat_gateway_id_non_ascii", "env", START("NATMETER_NAT_GATEWAYS"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps([dict(fg.GATEWAYS[0], id="nat-\u00e9t\u00e9")])},
        note="the id becomes the NatGatewayId dimension value, which CloudWatch refuses unless ASCII"),
    Row("env_nat_gateway_id_1100_chars", "env", START("NATMETER_NAT_GATEWAYS"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps([dict(fg.GATEWAYS[0], id="nat-" + "0" * 1100)])},
        note="NatGatewayId dimension values are limited to 1024 characters"),
    Row("env_nat_gateway_id_blank", "env", START("NATMETER_NAT_GATEWAYS"),
        env={"NATMETER_NAT_GATEWAYS": json.dumps([dict(fg.GATEWAYS[0], id="   ")])},
        note="a dimension value must hold a non-whitespace character"),
    Row("env_unknown_region_without_price", "env", START("AWS_REGION", "xx-nowhere-9", "NATMETER_PRICE_PER_GB"),
        env={"AWS_REGION": "xx-nowhere-9", "AWS_DEFAULT_REGION": "xx-nowhere-9"}),
    Row("env_price_negative", "env", START("NATMETER_PRICE_PER_GB", "-1"), env={"NATMETER_PRICE_PER_GB": "-1"}),
    Row("env_price_nan", "env", START("NATMETER_PRICE_PER_GB", "NaN"), env={"NATMETER_PRICE_PER_GB": "NaN"}),
    Row("env_price_not_a_number", "env", START("NATMETER_PRICE_PER_GB", "cheap"),
        env={"NATMETER_PRICE_PER_GB": "cheap"}),
    Row("env_sink_unknown", "env", START("NATMETER_SINK", "kafka"), env={"NATMETER_SINK": "kafka"}),
    Row("env_sink_empty", "env", START("NATMETER_SINK", "expected cloudwatch, emf or both"),
        env={"NATMETER_SINK": ""}),
    Row("env_sink_wrong_case", "env", START("NATMETER_SINK", "CloudWatch"), env={"NATMETER_SINK": "CloudWatch"}),
    Row("env_sink_both_without_emf_namespace", "env", START("NATMETER_EMF_NAMESPACE", "NATMETER_SINK=both", "twice"),
        env={"NATMETER_SINK": "both"}, note="one namespace, one sink: CloudWatch extracts EMF lines too"),
    Row("env_sink_both_same_namespace", "env", START("NATMETER_EMF_NAMESPACE", "must differ from NATMETER_NAMESPACE"),
        env={"NATMETER_SINK": "both", "NATMETER_NAMESPACE": "Team/NAT", "NATMETER_EMF_NAMESPACE": "Team/NAT"}),
    Row("env_max_sources_not_a_number", "env", START("NATMETER_MAX_SOURCES", "lots"),
        env={"NATMETER_MAX_SOURCES": "lots"}),
    Row("env_max_sources_negative", "env", START("NATMETER_MAX_SOURCES", "-3"), env={"NATMETER_MAX_SOURCES": "-3"}),
    Row("env_max_sources_above_limit", "env", START("NATMETER_MAX_SOURCES", "501", "0-500"),
        env={"NATMETER_MAX_SOURCES": "501"}),
    Row("env_max_sources_empty", "env", START("NATMETER_MAX_SOURCES"), env={"NATMETER_MAX_SOURCES": ""}),
    Row("env_namespace_aws_reserved", "env", START("NATMETER_NAMESPACE", "AWS/NATGateway"),
        env={"NATMETER_NAMESPACE": "AWS/NATGateway"}),
    Row("env_namespace_empty", "env", START("NATMETER_NAMESPACE"), env={"NATMETER_NAMESPACE": ""}),
    Row("env_namespace_non_ascii", "env", START("NATMETER_NAMESPACE"), env={"NATMETER_NAMESPACE": "NatM\u00e9ter"}),
    Row("env_namespace_256_chars", "env", START("NATMETER_NAMESPACE"), env={"NATMETER_NAMESPACE": "N" * 256}),
    Row("env_namespace_starts_with_colon", "env", START("NATMETER_NAMESPACE", ":NatMeter"),
        env={"NATMETER_NAMESPACE": ":NatMeter"},
        note="PutMetricData's Namespace pattern is [^:].*"),
    Row("env_namespace_control_character", "env", START("NATMETER_NAMESPACE"),
        env={"NATMETER_NAMESPACE": "Nat\tMeter"},
        note="CloudWatch namespaces are ASCII without control characters"),
    Row("env_private_cidrs_bad", "env", START("NATMETER_PRIVATE_CIDRS", "10.0.0.0/33"),
        env={"NATMETER_PRIVATE_CIDRS": "10.0.0.0/33"}),
]

ROW_IDS = [r.id for r in ROWS]
assert len(set(ROW_IDS)) == len(ROW_IDS), "duplicate row ids"


def _resolve(e: Expect) -> Expect:
    """Fill in the sizes of the generated rows (-1: the repeated-line count, -2: the bad-lines count)."""
    subst = {-1: _repeated_n(), -2: _bad_lines_n()} if any(
        v in (-1, -2) for v in (e.read, e.counted, e.parse_errors, e.bytes)) else {}
    out = Expect(**{**e.__dict__})
    for k in ("read", "counted", "parse_errors"):
        v = getattr(out, k)
        if v in subst:
            setattr(out, k, subst[v])
    if out.bytes == -1:
        out.bytes = subst[-1] * GOOD_BYTES
    return out


def _report(row: Row, actual: dict):
    MATRIX_REPORT[row.id] = {"kind": row.kind, "expect": row.expect.kind, "note": row.note, **actual}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bad_input_matrix.json").write_text(json.dumps(MATRIX_REPORT, indent=1, sort_keys=True, default=str) + "\n")


def _counters(cw, namespace) -> dict:
    now = int(time.time())
    r = MetricsReader(cw, namespace, now - 3 * 3600, now + 3 * 3600)
    out = {"RecordsCounted": r.value("RecordsCounted"), "ParseErrors": r.value("ParseErrors"),
           "RecordsSkipped": r.value("RecordsSkipped"), "NatBytes": r.value("NatBytes", unit="Bytes")}
    for reason in REASONS:
        out[f"RecordsSkipped/{reason}"] = r.value("RecordsSkipped", {"Reason": reason})
    out["series"] = len(r.list_metrics())
    return out


def _samples(b, inv) -> list[str]:
    return [l.get("error", "") for l in json_lines(b.stderr_text_of(inv))
            if l.get("message") == "flow-log record skipped"]


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_bad_input(row: Row, start_bootstrap, fault_proxy, cw, namespace):
    if row.kind == "env":
        return _env_row(row, start_bootstrap, fault_proxy, namespace)
    e = _resolve(row.expect)
    proxy = fault_proxy(emulate_cloudwatch=True)
    b = start_bootstrap(fg.env(namespace), name="bootstrap", endpoint=proxy.url)
    warm = b.invoke_detail(control_message_event(), timeout_s=30)
    assert warm.kind == "response"
    before = b.proc_status()
    event = row.event()
    inv = b.invoke_detail(event, timeout_s=90, deadline_s=60)
    assert b.alive(), f"{row.id}: the process died (status {b.proc.returncode})\n{b.stderr_tail()}"
    after = b.proc_status()
    proxy.wait_idle()
    actual = {"answer": inv.kind, "body": inv.text()[:400], "event_bytes": len(event),
              "rss_kb_before": before.get("VmRSS"), "rss_kb_after": after.get("VmRSS"),
              "hwm_kb_before": before.get("VmHWM"), "hwm_kb_after": after.get("VmHWM"),
              "elapsed_s": round(inv.elapsed_s, 3),
              "rejected_by_cloudwatch": [r.error[:200] for r in proxy.since(0) if r.outcome == "rejected"]}
    if inv.kind == "response":
        actual["counters"] = _counters(cw, namespace)
        actual["samples"] = _samples(b, inv)[:5]
    _report(row, actual)
    stderr = b.stderr_text_of(inv)
    assert "panicked" not in stderr, f"{row.id}: the function panicked:\n{stderr[-2000:]}"

    if e.kind == "error":
        assert inv.kind == "error", f"{row.id}: expected an invocation error, got {inv.kind}: {inv.text()[:500]}"
        msg = inv.json().get("errorMessage", "")
        assert msg.strip(), f"{row.id}: error without a message: {inv.text()[:300]}"
        for s in e.contains:
            assert s in msg, f"{row.id}: error message lacks {s!r}: {msg[:500]}"
        assert b.stdout_json_of(inv) == [], f"{row.id}: a failed invocation printed lines"
        assert [r for r in proxy.since(0) if r.operation == "PutMetricData"] == [], f"{row.id}: a failed event sent metrics"
    elif e.kind == "ok":
        assert inv.kind == "response", f"{row.id}: expected a response, got {inv.kind}: {inv.text()[:500]}"
        body = inv.json()
        assert body.get("batch") == e.batch, f"{row.id}: batch {body.get('batch')!r} != {e.batch!r}: {body}"
        if e.batch == "data":
            assert body["records_read"] == e.read, f"{row.id}: records_read {body['records_read']} != {e.read}"
            assert body["records_counted"] == e.counted, f"{row.id}: counted {body['records_counted']} != {e.counted}"
            assert body["parse_errors"] == e.parse_errors, f"{row.id}: parse_errors {body['parse_errors']} != {e.parse_errors}"
            if e.bytes is not None:
                assert body["bytes"] == e.bytes, f"{row.id}: bytes {body['bytes']} != {e.bytes}"
        c = actual["counters"]
        if not e.read:
            assert c["series"] == 0, f"{row.id}: nothing was read, yet {c['series']} metric series were emitted"
        else:
            assert c["RecordsCounted"] == e.counted, f"{row.id}: RecordsCounted {c['RecordsCounted']} != {e.counted}"
            assert c["ParseErrors"] == e.parse_errors, f"{row.id}: ParseErrors {c['ParseErrors']} != {e.parse_errors}"
            assert c["RecordsSkipped"] == sum(e.skipped.values()), f"{row.id}: RecordsSkipped {c}"
            for reason in REASONS:
                assert c[f"RecordsSkipped/{reason}"] == e.skipped.get(reason, 0), f"{row.id}: Reason={reason}: {c}"
            if e.bytes is not None:
                assert c["NatBytes"] == float(e.bytes), f"{row.id}: NatBytes {c['NatBytes']} != {e.bytes}"
        samples = _samples(b, inv)
        assert len(samples) <= 5, f"{row.id}: {len(samples)} parse-error samples logged (at most 5)"
        if e.parse_errors:
            assert samples, f"{row.id}: parse errors without a logged sample"
        if e.sample:
            assert any(e.sample in s for s in samples), f"{row.id}: no sample mentions {e.sample!r}: {samples}"
    elif e.kind == "survives":
        assert inv.kind == "response", (
            f"{row.id}: a record CloudWatch refuses as a datapoint failed the whole batch (the event would be "
            f"retried and end in the on-failure destination, and its good records never counted): {inv.text()[:600]}"
            f"\nCloudWatch's answer: {actual['rejected_by_cloudwatch'][:1]}")
        body = inv.json()
        assert body["records_read"] == e.read, body
        got = actual["counters"]["NatBytes"]
        assert got >= GOOD_BYTES, f"{row.id}: the good record beside the bad one was not delivered: NatBytes {got}"
    else:
        raise AssertionError(e.kind)

    if e.hwm_growth_kb is not None:
        grew = after["VmHWM"] - before["VmHWM"]
        assert grew <= e.hwm_growth_kb, f"{row.id}: peak RSS grew {grew} kB (limit {e.hwm_growth_kb} kB)"
    assert after["VmRSS"] <= before["VmRSS"] + 24 * 1024, \
        f"{row.id}: RSS went from {before['VmRSS']} kB to {after['VmRSS']} kB and stayed there"

    # the same process answers a good invocation
    good = b.invoke_detail(fg.good_event(1, id_base=7_000_000), timeout_s=60, deadline_s=30)
    assert good.kind == "response", f"{row.id}: the next, good invocation failed: {good.text()[:500]}"
    gb = good.json()
    assert gb.get("batch") == "data" and gb.get("records_counted") == 1, f"{row.id}: next invocation: {gb}"
    assert b.alive()
    assert "panicked" not in b.stderr_text(), f"{row.id}: the function panicked"


def _env_row(row: Row, start_bootstrap, fault_proxy, namespace):
    env = fg.env(namespace)
    env.update(row.env)
    proxy = fault_proxy(emulate_cloudwatch=True)
    b = start_bootstrap(env, name="bootstrap", wait_ready=False, endpoint=proxy.url)
    end = time.monotonic() + 15
    while b.alive() and b.api.init_error is None and b.api.next_requests == 0 and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.2)
    text = b.stderr_text() + (b.api.init_error or b"").decode(errors="replace")
    _report(row, {"answer": "startup-error" if (not b.alive() or b.api.init_error) else "started",
                  "exit_status": b.proc.poll(), "stderr": text[-600:]})
    if b.api.next_requests and b.api.init_error is None:
        # show what the accepted setting does to an invocation (through CloudWatch's checks)
        inv = b.invoke_detail(fg.good_event(1), timeout_s=60, deadline_s=20)
        MATRIX_REPORT[row.id]["good_invocation_then"] = inv.text()[:400]
        _report(row, {k: v for k, v in MATRIX_REPORT[row.id].items() if k not in ("kind", "expect", "note")})
        pytest.fail(f"{row.id}: the function started serving invocations with {str(row.env)[:200]} "
                    f"({row.note}); a good invocation then answered {inv.kind}: {inv.text()[:400]}", pytrace=False)
    assert not b.alive() or b.api.init_error is not None, f"{row.id}: neither exited nor reported an init error"
    assert "panicked" not in text, f"{row.id}: panicked at start-up:\n{text[-1500:]}"
    for s in row.expect.contains:
        assert s in text, f"{row.id}: the start-up error lacks {s!r}:\n{text[-1500:]}"


def test_matrix_size(record_measurement):
    kinds = {}
    outcomes = {}
    for r in ROWS:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
        outcomes[r.expect.kind] = outcomes.get(r.expect.kind, 0) + 1
    print(f"\nbad-input matrix: {len(ROWS)} rows; by input: {kinds}; by expected outcome: {outcomes}")
    record_measurement("bad_input_matrix", {"rows": len(ROWS), "by_input": kinds, "by_expected_outcome": outcomes})
    assert len(ROWS) >= 90
