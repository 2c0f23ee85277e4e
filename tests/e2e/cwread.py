"""Read CloudWatch metrics back (ListMetrics + GetMetricData) for assertions.

LocalStack's GetMetricData buckets start at StartTime + k*Period (not on minute boundaries), so
every read here uses ONE period covering the whole window and sums what comes back.
StartTime is inclusive and EndTime exclusive (checked against LocalStack 2026.3.0).

LocalStack 2026.3.0 also matches a GetMetricData query's dimensions with SQL `LIKE '%Name=Value%'`
(localstack/services/cloudwatch/cloudwatch_database_helper.py): a query for [NatGatewayId=X] also
sums the series [NatGatewayId=X, Direction=...], and SourceIp=10.0.1.1 also matches
SourceIp=10.0.1.15. Real CloudWatch matches dimensions exactly. With `like_matching=True` (the
default, for LocalStack) the reader recovers exact per-series sums: it queries every listed series
of the metric and subtracts the series each query over-matched (ListMetrics itself is exact).
The query without dimensions is exact in both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Iterable, Optional

import boto3


def cloudwatch_client(endpoint_url: str):
    return boto3.client(
        "cloudwatch", endpoint_url=endpoint_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )


def _ts(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


class MetricsReader:
    def __init__(self, client, namespace: str, start_s: int, end_s: int, like_matching: bool = True):
        """Window [start_s, end_s): both are rounded outwards to whole minutes."""
        self.like_matching = like_matching
        self.cw = client
        self.namespace = namespace
        self.start_s = start_s // 60 * 60
        self.end_s = -(-end_s // 60) * 60
        self.period = self.end_s - self.start_s

    def with_window(self, start_s: int, end_s: int) -> "MetricsReader":
        return MetricsReader(self.cw, self.namespace, start_s, end_s, self.like_matching)

    # ---- discovery -------------------------------------------------------------------------
    def list_metrics(self, metric_name: Optional[str] = None) -> list[dict]:
        kwargs = {"Namespace": self.namespace}
        if metric_name:
            kwargs["MetricName"] = metric_name
        out = []
        for page in self.cw.get_paginator("list_metrics").paginate(**kwargs):
            for m in page["Metrics"]:
                out.append({"MetricName": m["MetricName"], "Dimensions": m.get("Dimensions", [])})
        return out

    def metric_names(self) -> set[str]:
        return {m["MetricName"] for m in self.list_metrics()}

    def dimension_sets(self, metric_name: str) -> set[tuple[str, ...]]:
        return {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in self.list_metrics(metric_name)}

    # ---- values ----------------------------------------------------------------------------
    def _get(self, metrics: list[dict], stat: str, unit: Optional[str]) -> list[float]:
        """One value per metric (the stat over the whole window); 0.0 when there is no data."""
        collected: list[list[float]] = [[] for _ in metrics]
        for base in range(0, len(metrics), 400):
            chunk = metrics[base:base + 400]
            queries = []
            for i, m in enumerate(chunk):
                ms = {"Metric": {"Namespace": self.namespace, "MetricName": m["MetricName"],
                                 "Dimensions": m["Dimensions"]},
                      "Period": self.period, "Stat": stat}
                if unit:
                    ms["Unit"] = unit
                queries.append({"Id": f"m{base + i}", "MetricStat": ms, "ReturnData": True})
            kwargs = {"MetricDataQueries": queries, "StartTime": _ts(self.start_s),
                      "EndTime": _ts(self.end_s), "ScanBy": "TimestampAscending"}
            while True:
                r = self.cw.get_metric_data(**kwargs)
                for res in r["MetricDataResults"]:
                    collected[int(res["Id"][1:])].extend(res.get("Values", []))
                token = r.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        out = []
        for vals in collected:
            if not vals:
                out.append(0.0)
            elif stat in ("Sum", "SampleCount"):
                out.append(float(sum(vals)))
            elif stat == "Maximum":
                out.append(max(vals))
            elif stat == "Minimum":
                out.append(min(vals))
            else:
                assert len(vals) == 1, f"{stat}: several buckets in one period: {vals}"
                out.append(vals[0])
        return out

    @staticmethod
    def _stored(dims: list[dict]) -> str:
        return "".join(f"{d['Name']}={d['Value']}\t" for d in sorted(dims, key=lambda d: d["Name"]))

    @staticmethod
    def _like(dims: list[dict]) -> "re.Pattern":
        pattern = "".join(f"%{d['Name']}={d['Value']}%" for d in sorted(dims, key=lambda d: d["Name"]))
        rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
        return re.compile(rx, re.IGNORECASE | re.DOTALL)  # SQLite LIKE: ASCII case-insensitive

    def exact_sums(self, metric_name: str, unit: Optional[str] = None) -> dict[frozenset, float]:
        """Exact Sum over the window for every listed series of metric_name.
        Key: frozenset of (Name, Value) pairs (frozenset() for the series without dimensions)."""
        metrics = self.list_metrics(metric_name)
        raw = self._get(metrics, "Sum", unit)
        keys = [frozenset((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in metrics]
        if not self.like_matching:
            return dict(zip(keys, raw))
        stored = [self._stored(m["Dimensions"]) for m in metrics]
        over: list[list[int]] = []  # over[i]: other series that query i also summed
        for i, m in enumerate(metrics):
            if not m["Dimensions"]:
                over.append([])  # "dimensions is null": exact
                continue
            rx = self._like(m["Dimensions"])
            over.append([j for j in range(len(metrics)) if j != i and metrics[j]["Dimensions"]
                         and rx.fullmatch(stored[j])])
        exact: dict[int, float] = {}
        pending = set(range(len(metrics)))
        while pending:
            ready = [i for i in pending if all(j in exact for j in over[i])]
            if not ready:
                raise AssertionError(f"cannot disentangle LocalStack's LIKE matching for {metric_name}: "
                                     f"{[metrics[i]['Dimensions'] for i in pending]}")
            for i in ready:
                exact[i] = raw[i] - sum(exact[j] for j in over[i])
                pending.discard(i)
        return {keys[i]: exact[i] for i in range(len(metrics))}

    def value(self, metric_name: str, dims: Optional[dict] = None, stat: str = "Sum",
              unit: Optional[str] = None) -> float:
        d = [{"Name": k, "Value": v} for k, v in sorted((dims or {}).items())]
        if stat == "Sum" and d and self.like_matching:
            return self.exact_sums(metric_name, unit).get(frozenset((dims or {}).items()), 0.0)
        return self._get([{"MetricName": metric_name, "Dimensions": d}], stat, unit)[0]

    def by_dimensions(self, metric_name: str, dim_names: Iterable[str], stat: str = "Sum",
                      unit: Optional[str] = None) -> dict[tuple[str, ...], float]:
        """For every listed metric whose dimension NAMES are exactly dim_names (in that order for
        the key), the stat over the window. Key: tuple of the dimension values in dim_names order."""
        names = tuple(dim_names)
        wanted = sorted(names)
        out: dict[tuple[str, ...], float] = defaultdict(float)
        if stat == "Sum":
            for key, v in self.exact_sums(metric_name, unit).items():
                dd = dict(key)
                if sorted(dd) == wanted:
                    out[tuple(dd[n] for n in names)] += v
            return dict(out)
        if self.like_matching and names:
            raise NotImplementedError(f"{stat} per dimension is not exact under LocalStack's LIKE matching")
        metrics = [m for m in self.list_metrics(metric_name)
                   if sorted(d["Name"] for d in m["Dimensions"]) == wanted]
        for m, v in zip(metrics, self._get(metrics, stat, unit)):
            dd = {d["Name"]: d["Value"] for d in m["Dimensions"]}
            out[tuple(dd[n] for n in names)] += v
        return dict(out)
