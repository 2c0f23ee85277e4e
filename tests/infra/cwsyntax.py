"""What a dashboard body, an alarm or a Contributor Insights rule asks CloudWatch
for, read the way CloudWatch reads it: metric arrays, Metrics Insights queries,
SEARCH expressions, metric math, Logs Insights queries.

Sources for the syntax: CloudWatch "Dashboard body structure and syntax",
"Metrics Insights query components and syntax", "CloudWatch search expression
syntax", "Metric math syntax and functions" and "Contributor Insights rule
syntax" (user guide and API reference).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# AWS's own metrics the module reads, with the dimension sets AWS publishes them
# under (AWS/Lambda, AWS/SQS, AWS/NATGateway and AWS/Logs metric pages of the
# respective user guides). natmeter's own metrics are never listed here: they
# come from `natmeter metrics --json`.
AWS_METRICS: dict[str, dict[str, list[set[str]]]] = {
    "AWS/Lambda": {
        m: [{"FunctionName"}]
        for m in (
            "Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions",
            # Asynchronous invocation metrics (Lambda developer guide, "Types of
            # metrics for Lambda functions"); AsyncEventAge is in milliseconds.
            "AsyncEventsReceived", "AsyncEventAge", "AsyncEventsDropped", "DestinationDeliveryFailures",
        )
    },
    "AWS/SQS": {
        m: [{"QueueName"}]
        for m in (
            "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "ApproximateAgeOfOldestMessage",
            "NumberOfMessagesSent",
        )
    },
    "AWS/NATGateway": {
        m: [{"NatGatewayId"}]
        for m in ("BytesInFromSource", "BytesOutToSource", "BytesInFromDestination", "BytesOutToDestination")
    },
    "AWS/Logs": {
        **{
            m: [{"LogGroupName", "DestinationType", "FilterName"}]
            for m in ("ForwardedLogEvents", "DeliveryErrors", "DeliveryThrottling", "ForwardedBytes")
        },
        # What a log group takes in, per group (uncompressed bytes, events).
        **{m: [{"LogGroupName"}] for m in ("IncomingBytes", "IncomingLogEvents")},
    },
}

METRIC_MATH_FUNCTIONS = {
    "ABS", "ANOMALY_DETECTION_BAND", "AVG", "CEIL", "DATAPOINT_COUNT", "DIFF", "DIFF_TIME", "FILL",
    "FIRST", "LAST", "FLOOR", "IF", "INSIGHT_RULE_METRIC", "LOG", "LOG10", "MAX", "METRIC_COUNT",
    "METRICS", "MIN", "MINUTE", "HOUR", "DAY", "DATE", "MONTH", "YEAR", "EPOCH", "PERIOD", "RATE",
    "REMOVE_EMPTY", "RUNNING_SUM", "SEARCH", "SERVICE_QUOTA", "SLICE", "SORT", "STDDEV", "SUM",
    "TIME_SERIES", "AND", "OR", "NOT", "REPEAT", "LINEAR", "ASC", "DESC",
}


@dataclass
class MetricUse:
    """One metric a widget or alarm reads."""

    where: str
    namespace: str
    name: str
    dimensions: dict[str, str]
    # Metrics Insights SCHEMA(...) and SEARCH {...} select an exact dimension
    # set without values; for them dimensions maps each key to None.
    by_schema: bool = False
    group_by: list[str] = field(default_factory=list)

    @property
    def dimension_set(self) -> frozenset[str]:
        return frozenset(self.dimensions)


@dataclass
class Expression:
    where: str
    id: str | None
    text: str


MI_RE = re.compile(
    r"""^\s*SELECT\s+(?P<fn>AVG|COUNT|MAX|MIN|SUM)\((?P<metric>\w+)\)\s+
        FROM\s+(?:SCHEMA\(\s*"(?P<schema_ns>[^"]+)"\s*(?P<schema_dims>(?:,\s*\w+\s*)*)\)|"(?P<ns>[^"]+)")
        (?:\s+WHERE\s+(?P<where>.+?))?
        (?:\s+GROUP\s+BY\s+(?P<group>\w+(?:\s*,\s*\w+)*))?
        (?:\s+ORDER\s+BY\s+(?P<order>AVG|COUNT|MAX|MIN|SUM)\(\)\s*(?:ASC|DESC)?)?
        (?:\s+LIMIT\s+(?P<limit>\d+))?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

SEARCH_RE = re.compile(
    r"""^\s*SEARCH\(\s*'\{(?P<schema>[^}]*)\}\s*(?P<terms>[^']*)'\s*,\s*'(?P<stat>[A-Za-z0-9.]+)'\s*,\s*(?P<period>\d+)\s*\)\s*$"""
)


def is_metrics_insights(text: str) -> bool:
    return text.lstrip().upper().startswith("SELECT")


def parse_metrics_insights(where: str, text: str) -> MetricUse:
    m = MI_RE.match(text)
    if not m:
        raise AssertionError(f"{where}: not a Metrics Insights query this check understands: {text!r}")
    if m.group("schema_ns") is None:
        raise AssertionError(
            f"{where}: query FROM a bare namespace; use SCHEMA(namespace, dims...) so the dimension set is pinned: {text!r}"
        )
    dims = [d.strip() for d in m.group("schema_dims").split(",") if d.strip()]
    group = [g.strip() for g in (m.group("group") or "").split(",") if g.strip()]
    where_values: dict[str, str] = {}
    if m.group("where"):
        for cond in re.split(r"\s+AND\s+", m.group("where"), flags=re.IGNORECASE):
            c = re.fullmatch(r"\s*(\w+)\s*=\s*'([^']*)'\s*", cond)
            if not c:
                raise AssertionError(f"{where}: WHERE condition this check does not understand: {cond!r}")
            if c.group(1) not in dims:
                raise AssertionError(f"{where}: WHERE {c.group(1)} is not in SCHEMA {dims}")
            where_values[c.group(1)] = c.group(2)
    if m.group("limit") is not None and not 1 <= int(m.group("limit")) <= 500:
        raise AssertionError(f"{where}: LIMIT must be 1-500 (a query returns at most 500 series)")
    return MetricUse(where, m.group("schema_ns"), m.group("metric"), {d: where_values.get(d) for d in dims}, True, group)


def parse_search(where: str, text: str) -> MetricUse:
    m = SEARCH_RE.match(text)
    if not m:
        raise AssertionError(f"{where}: not a SEARCH expression this check understands: {text!r}")
    # A name with spaces or non-alphanumeric characters is double-quoted in the
    # schema ("CloudWatch search expression syntax").
    schema = [_unquote_schema_name(s.strip()) for s in m.group("schema").split(",")]
    ns, dims = schema[0], schema[1:]
    names = re.findall(r'MetricName\s*=\s*"([^"]+)"', m.group("terms"))
    if len(names) != 1:
        raise AssertionError(f"{where}: SEARCH must name exactly one MetricName: {text!r}")
    exact = dict(re.findall(r'(\w+)\s*=\s*"([^"]+)"', m.group("terms")))
    return MetricUse(where, ns, names[0], {d: exact.get(d) for d in dims}, True)


def _unquote_schema_name(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        inner = name[1:-1]
        if '"' in inner or "\\" in inner:
            raise AssertionError(f"SEARCH schema name with an escaped character this check does not read: {name!r}")
        return inner
    return name


def math_tokens(text: str) -> tuple[set[str], set[str]]:
    """(ids, functions) of a metric math expression: lower- or mixed-case
    identifiers are ids of other queries, upper-case ones functions/keywords."""
    stripped = re.sub(r"'[^']*'|\"[^\"]*\"", " ", text)  # quoted SEARCH strings
    tokens = set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", stripped))
    functions = {t for t in tokens if t.isupper()}
    return tokens - functions, functions


def split_metric_entry(where: str, entry: list) -> tuple[list[str], dict]:
    if not isinstance(entry, list) or not entry:
        raise AssertionError(f"{where}: a metrics entry must be a non-empty array, got {entry!r}")
    opts = entry[-1] if isinstance(entry[-1], dict) else {}
    head = entry[:-1] if isinstance(entry[-1], dict) else entry
    if any(not isinstance(x, str) for x in head):
        raise AssertionError(f"{where}: metric array items before the options must be strings: {entry!r}")
    if any(x == "." or x == ".." for x in head):
        raise AssertionError(f"{where}: '.' shorthand is not used by this module (explicit arrays are checkable)")
    return head, opts


@dataclass
class WidgetQueries:
    metrics: list[MetricUse] = field(default_factory=list)
    expressions: list[Expression] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    metrics_insights: int = 0
    entries: int = 0


def widget_queries(where: str, props: dict) -> WidgetQueries:
    """Everything one metric widget (or alarm, in the same shape) reads."""
    q = WidgetQueries()
    for entry in props.get("metrics", []):
        head, opts = split_metric_entry(where, entry)
        q.entries += 1
        if "id" in opts:
            q.ids.append(opts["id"])
        if not head:
            text = opts.get("expression")
            if not isinstance(text, str):
                raise AssertionError(f"{where}: entry without metric or expression: {entry!r}")
            q.expressions.append(Expression(where, opts.get("id"), text))
            if is_metrics_insights(text):
                q.metrics_insights += 1
                q.metrics.append(parse_metrics_insights(where, text))
            elif text.lstrip().upper().startswith("SEARCH("):
                q.metrics.append(parse_search(where, text))
            continue
        if len(head) < 2 or len(head) % 2 != 0:
            raise AssertionError(f"{where}: metric array must be [namespace, name, (dim, value)*]: {entry!r}")
        dims = dict(zip(head[2::2], head[3::2]))
        q.metrics.append(MetricUse(where, head[0], head[1], dims))
    return q


def alarm_queries(where: str, alarm: dict) -> WidgetQueries:
    """The metrics and expressions of an evaluated aws_cloudwatch_metric_alarm."""
    q = WidgetQueries()
    if alarm.get("metric_name"):
        q.metrics.append(MetricUse(where, alarm["namespace"], alarm["metric_name"], dict(alarm.get("dimensions") or {})))
        q.entries += 1
    for mq in alarm.get("metric_query", []):
        q.entries += 1
        q.ids.append(mq["id"])
        if mq.get("expression"):
            q.expressions.append(Expression(where, mq["id"], mq["expression"]))
            if is_metrics_insights(mq["expression"]):
                q.metrics_insights += 1
                q.metrics.append(parse_metrics_insights(where, mq["expression"]))
        for metric in mq.get("metric", []):
            q.metrics.append(
                MetricUse(where, metric["namespace"], metric["metric_name"], dict(metric.get("dimensions") or {}))
            )
    return q


def logs_insights_fields(query: str) -> set[str]:
    """CamelCase field names a Logs Insights query uses (its commands and
    functions are lower case, SOURCE is upper case, aliases are ours)."""
    stripped = re.sub(r"'[^']*'|\"[^\"]*\"", " ", query)
    return set(re.findall(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*\b", stripped))


# ---------------------------------------------------------------------------
# CloudWatch Logs JSON filter patterns
# ---------------------------------------------------------------------------
#
# CloudWatch Logs user guide, "Filter pattern syntax for metric filters,
# subscription filters, filter log events, and Live Tail", matching terms in
# JSON log events:
#
# - a JSON pattern is { SELECTOR OPERATOR VALUE } in curly braces; selectors
#   start with $ (the root), then .name (letters, digits, '-', '_') or [n];
# - = and != compare strings (quoted, or bare when alphanumeric), numbers with
#   =, !=, <, >, <=, >=; matching is exact and case sensitive;
# - the selector must point to a value node: on an array or an object neither
#   = nor != matches;
# - $.x IS NULL is true only if x is set to null, $.x NOT EXISTS only if x
#   does not exist in the event, $.x IS TRUE / IS FALSE on booleans;
# - && and || combine conditions, parentheses group them, and the order is
#   () > && > ||;
# - only events that are JSON can match.
#
# What the guide leaves open is refused rather than guessed: != on a property
# that does not exist, and the '*' wildcard (the module uses neither).


class FilterPatternError(AssertionError):
    """A JSON filter pattern this evaluator does not read (or CloudWatch would reject)."""


_JSON_TOKEN = re.compile(
    r"""\s*(?:
        (?P<punct>\{|\}|\(|\)|&&|\|\|)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<postfix>NOT\s+EXISTS|IS\s+NULL|IS\s+TRUE|IS\s+FALSE)\b
      | (?P<selector>\$(?:\.[A-Za-z0-9_-]+|\[\d+\])*)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![A-Za-z0-9_.*-]))
      | (?P<bare>[A-Za-z0-9_.*-]+)
    )""",
    re.VERBOSE,
)


def _json_tokens(pattern: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(pattern):
        if pattern[i:].strip() == "":
            break
        m = _JSON_TOKEN.match(pattern, i)
        if not m:
            raise FilterPatternError(f"cannot read the JSON filter pattern at {pattern[i:i + 30]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        i = m.end()
    return out


_MISSING = object()


def _select(doc, selector: str):
    """The node a selector points to, or _MISSING."""
    node = doc
    for name, index in re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]", selector[1:]):
        if name:
            if not isinstance(node, dict) or name not in node:
                return _MISSING
            node = node[name]
        else:
            i = int(index)
            if not isinstance(node, list) or i >= len(node):
                return _MISSING
            node = node[i]
    return node


class _JsonPatternParser:
    def __init__(self, pattern: str):
        self.pattern = pattern
        self.tokens = _json_tokens(pattern)
        self.i = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            raise FilterPatternError(f"expected {value or kind} at token {self.i} of {self.pattern!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        self.take("punct", "{")
        tree = self.or_expr()
        self.take("punct", "}")
        if self.i != len(self.tokens):
            raise FilterPatternError(f"text after the closing brace of {self.pattern!r}")
        return tree

    def or_expr(self):
        terms = [self.and_expr()]
        while self.peek() == ("punct", "||"):
            self.take()
            terms.append(self.and_expr())
        return ("or", terms) if len(terms) > 1 else terms[0]

    def and_expr(self):
        terms = [self.atom()]
        while self.peek() == ("punct", "&&"):
            self.take()
            terms.append(self.atom())
        return ("and", terms) if len(terms) > 1 else terms[0]

    def atom(self):
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.or_expr()
            self.take("punct", ")")
            return inner
        _, selector = self.take("selector")
        kind, text = self.peek()
        if kind == "postfix":
            self.take()
            return ("postfix", selector, " ".join(text.split()))
        _, op = self.take("op")
        kind, text = self.take()
        if kind == "string":
            value = json.loads(text)
            if "*" in value:
                raise FilterPatternError(f"wildcard in {text}: not evaluated here")
            return ("cmp", selector, op, value)
        if kind == "number":
            return ("cmp", selector, op, float(text))
        if kind == "bare":
            if "*" in text:
                raise FilterPatternError(f"wildcard in {text}: not evaluated here")
            return ("cmp", selector, op, text)
        raise FilterPatternError(f"a value was expected after {selector} {op} in {self.pattern!r}, got {text!r}")


def parse_json_pattern(pattern: str):
    """The syntax tree of a JSON filter pattern ({ ... }); FilterPatternError
    for anything this evaluator does not read."""
    if len(pattern) > 1024:
        raise FilterPatternError(f"filter patterns take at most 1024 characters, this one has {len(pattern)}")
    tree = _JsonPatternParser(pattern).parse()
    for node in _walk_json_pattern(tree):
        if node[0] == "cmp" and isinstance(node[3], str) and node[2] not in ("=", "!="):
            raise FilterPatternError(f"{node[1]} {node[2]} {node[3]!r}: strings compare with = or != only")
    return tree


def _walk_json_pattern(node):
    yield node
    if node[0] in ("and", "or"):
        for t in node[1]:
            yield from _walk_json_pattern(t)


def json_pattern_selectors(pattern: str) -> set[str]:
    return {n[1] for n in _walk_json_pattern(parse_json_pattern(pattern)) if n[0] in ("cmp", "postfix")}


def _eval_json_pattern(node, doc) -> bool:
    kind = node[0]
    # Every term is evaluated (no short cut), so that a condition this
    # evaluator refuses is refused on every event, not only on some.
    if kind == "and":
        return all([_eval_json_pattern(t, doc) for t in node[1]])
    if kind == "or":
        return any([_eval_json_pattern(t, doc) for t in node[1]])
    selector = node[1]
    value = _select(doc, selector)
    if kind == "postfix":
        word = node[2]
        if word == "NOT EXISTS":
            return value is _MISSING
        if word == "IS NULL":
            return value is None
        if word == "IS TRUE":
            return value is True
        if word == "IS FALSE":
            return value is False
        raise FilterPatternError(word)
    _, _, op, want = node
    if value is _MISSING:
        if op == "=":
            return False
        raise FilterPatternError(f"{selector} {op} ...: on a property that does not exist the guide does not say")
    if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
        return False  # not a value node: neither = nor != applies
    if isinstance(want, float):
        if not isinstance(value, (int, float)):
            return False
        return {"=": value == want, "!=": value != want, "<": value < want, ">": value > want,
                "<=": value <= want, ">=": value >= want}[op]
    if not isinstance(value, str):
        return False
    return (value == want) if op == "=" else (value != want)


def json_pattern_matches(pattern: str, message: str) -> bool:
    """Whether CloudWatch Logs passes a log event with this message through
    a JSON filter pattern."""
    tree = parse_json_pattern(pattern)
    try:
        doc = json.loads(message)
    except ValueError:
        return False
    if not isinstance(doc, dict):
        return False
    return _eval_json_pattern(tree, doc)
