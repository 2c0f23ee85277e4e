"""`natmeter athena-sql` (issue 14 item 5, docs/athena.md): the Athena query that applies
natmeter's attribution rules, run in DuckDB on simulated flow logs. The query is written in
Athena's (Trino's) SQL; sqlglot translates it to DuckDB's. Ground truth is the simulator's
truth.json: the query's sums per source and direction, per gateway and per destination equal it,
in both SNAT modes, with the simulator's corrupt lines (a dropped field, a bad address, negative
bytes), NODATA/SKIPDATA, REJECT and public-side records among them. The table DDL is checked to
parse as Athena's Hive DDL.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict

import duckdb
import pytest
import sqlglot

from lambda_events import decode_event

INT_COLUMNS = {"version", "srcport", "dstport", "protocol", "tcp_flags", "traffic_path"}
BIGINT_COLUMNS = {"packets", "bytes", "start", "end"}


def athena_sql(natmeter_bin, sim, *extra: str, table: str = "flow_logs") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(natmeter_bin), "athena-sql", "--table", table, "--nat-gateways",
         f"@{sim.dir / 'nat-gateways.json'}", "--log-format", sim.log_format, *extra],
        capture_output=True, text=True, timeout=60)


def load(sim) -> duckdb.DuckDBPyConnection:
    """The simulated records as Athena's text table would hold them: one column per field (`-`
    in a name becomes `_`), a missing trailing field NULL, integers that do not parse NULL."""
    names = [f[2:-1].replace("-", "_") for f in sim.log_format.split()]
    rows = []
    for path in sim.events:
        p = decode_event(path.read_bytes())
        for e in p.get("logEvents", []):
            vals = e["message"].split(" ")
            vals = (vals + [None] * len(names))[: len(names)]
            rows.append(vals)
    con = duckdb.connect()
    con.execute("CREATE TABLE raw (" + ", ".join(f'"{n}" VARCHAR' for n in names) + ")")
    con.executemany("INSERT INTO raw VALUES (" + ", ".join("?" for _ in names) + ")", rows)
    typed = []
    for n in names:
        if n in INT_COLUMNS:
            typed.append(f'TRY_CAST("{n}" AS INTEGER) AS "{n}"')
        elif n in BIGINT_COLUMNS:
            typed.append(f'TRY_CAST("{n}" AS BIGINT) AS "{n}"')
        else:
            typed.append(f'"{n}"')
    con.execute("CREATE VIEW flow_logs AS SELECT " + ", ".join(typed) + " FROM raw")
    return con


@pytest.mark.parametrize("external_snat", [True, False])
def test_the_query_counts_what_natmeter_counts(natmeter_bin, simulate, external_snat):
    sim = simulate(seed=23, pods=40, nodes=4, nat_gateways=2, minutes=10, external_snat=external_snat)
    r = athena_sql(natmeter_bin, sim, "--query-only")
    assert r.returncode == 0, r.stderr
    duck = sqlglot.transpile(r.stdout, read="trino", write="duckdb")[0]
    rows = load(sim).execute(duck).fetchall()
    assert rows, "the query counted nothing"
    t = sim.truth
    by_source = defaultdict(lambda: [0, 0])
    by_gateway = defaultdict(lambda: [0, 0])
    by_destination = defaultdict(int)
    hours = set()
    for hour, gateway, source, direction, destination, b in rows:
        i = 0 if direction == "outbound" else 1
        by_source[source][i] += b
        by_gateway[gateway][i] += b
        by_destination[destination] += b
        hours.add(hour)
    assert sum(b for *_, b in rows) == t["totals"]["bytes"]
    assert sum(v[0] for v in by_source.values()) == t["totals"]["outbound_bytes"]
    assert {s["source"]: [s["outbound_bytes"], s["inbound_bytes"]] for s in t["sources"]} == dict(by_source)
    assert {g["nat_gateway"]: [g["outbound_bytes"], g["inbound_bytes"]] for g in t["nat_gateways"]
            if g["bytes"]} == dict(by_gateway)
    assert {d["destination"]: d["bytes"] for d in t["destinations"]} == dict(by_destination)
    assert hours == {int(m) // 3600 * 3600 for m in t["minutes"]}, "hours are the records' own start, floored"
    rec = t["records"]
    assert min(rec["parse_errors"], rec["skip_data"], rec["no_data"], rec["rejected"], rec["zero_bytes"]) > 0, (
        f"the simulation must hold every kind of record the query skips: {rec}")


def test_the_table_ddl_is_athenas(natmeter_bin, simulate):
    sim = simulate(seed=17, pods=40, nodes=4, nat_gateways=2, minutes=4)
    for storage in ("text", "parquet"):
        r = athena_sql(natmeter_bin, sim, "--storage", storage, "--location",
                       "s3://flow-logs-bucket/prefix/AWSLogs/123456789012/vpcflowlogs/us-east-1/")
        assert r.returncode == 0, r.stderr
        ddl, query = r.stdout.split(";\n", 1)
        parsed = sqlglot.parse_one(ddl, read="athena")
        assert parsed.key == "create", ddl
        cols = [c.name for c in parsed.find_all(sqlglot.exp.ColumnDef)]
        fields = [f[2:-1].replace("-", "_") for f in sim.log_format.split()]
        assert cols[: len(fields)] == fields, "one column per field, in the format's order"
        assert ("skip.header.line.count" in ddl) == (storage == "text")
        assert ("STORED AS PARQUET" in ddl) == (storage == "parquet")
        assert "storage.location.template" in ddl and "projection.date.type" in ddl
        sqlglot.parse_one(query, read="trino")


def test_formats_it_cannot_serve_are_refused(natmeter_bin, simulate):
    sim = simulate(seed=17, pods=40, nodes=4, nat_gateways=2, minutes=4)
    r = subprocess.run([str(natmeter_bin), "athena-sql", "--table", "flow_logs", "--query-only", "--nat-gateways",
                        f"@{sim.dir / 'nat-gateways.json'}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "pkt-srcaddr" in r.stderr, r.stderr
    r = athena_sql(natmeter_bin, sim, "--query-only", table="Bad-Name")
    assert r.returncode == 2 and "--table \"Bad-Name\"" in r.stderr, r.stderr
    r = athena_sql(natmeter_bin, sim)
    assert r.returncode == 2 and "--location" in r.stderr, r.stderr
