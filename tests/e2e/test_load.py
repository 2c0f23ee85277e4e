"""Load (issue 6 section 5): 1,000 simulated events of ~0.5 MB decoded each (~500 MB decoded), through
the real bootstrap and the Runtime API emulator, against LocalStack:

1. back to back through one bootstrap;
2. with concurrency: 4 bootstrap processes polling the same Runtime API (8 invocations in flight);
3. back to back with NATMETER_SINK=emf (no LocalStack): the function's own rate and memory,
   totals checked from the EMF lines on stdout.

Pass: no invocation error, totals exactly equal to truth.json (NatBytes total, per gateway, per
gateway and direction, NatPackets per gateway, RecordsCounted, ParseErrors, RecordsSkipped), and
flat memory: for every process, the largest VmRSS sample of the last quarter of the run is within
RSS_MARGIN of the largest of the first quarter. Invocations/s, latencies, RSS series and the CPU
used by the bootstraps and by LocalStack go to tests/e2e/out/load.json.

Marked `load`: excluded from the default run; `tests/e2e/load.sh` runs it.
"""

from __future__ import annotations

import json
import math
import os
import queue
import statistics
import subprocess
import threading
import time
import uuid

import pytest

from bootstrap_proc import Bootstrap, json_lines, lambda_env, read_proc_status
from conftest import OUT, _safe
from cwread import MetricsReader
from runtime_api import RuntimeApi

pytestmark = pytest.mark.load

# 243 simulated minutes of 5,000 pods over 2 NAT gateways, batches cut at 500 kB decoded:
# 1,000 events, ~507 MB decoded
SIM_ARGS = dict(seed=61, pods=5000, nodes=50, nat_gateways=2, minutes=288, external_snat="true", scope="nat-enis",
                max_batch_bytes=500000)
SAMPLE_EVERY = 25  # invocations between RSS samples
CONCURRENT_PROCESSES = 4
IN_FLIGHT = 8
RSS_MARGIN = 0.10  # last quarter's max RSS <= first quarter's max * (1 + margin) + RSS_SLACK_KB
RSS_SLACK_KB = 1024
GIB = 2 ** 30
RESULTS: dict = {}


def _write_results():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(json.dumps(RESULTS, indent=1, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def load_sim(natmeter_bin):
    d = OUT / "sims" / "load"
    start = (int(time.time()) - (SIM_ARGS["minutes"] + 7) * 60) // 60 * 60
    argv = [str(natmeter_bin), "simulate", "--out", str(d), "--start", str(start)]
    for k, v in SIM_ARGS.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    events = sorted((d / "events").glob("*.json"))
    sim = {
        "dir": d, "start": start, "events": events,
        "nat_gateways": (d / "nat-gateways.json").read_text().strip(),
        "log_format": (d / "log-format.txt").read_text().strip(),
        "truth": json.loads((d / "truth.json").read_text()),
        "simulate_s": round(time.monotonic() - t0, 1),
        "simulate_stderr": r.stderr.strip()[-300:],
        "event_file_mb": round(sum(p.stat().st_size for p in events) / 1e6, 1),
    }
    RESULTS["simulation"] = {"argv": " ".join(argv[1:]), "events": len(events), "seconds": sim["simulate_s"],
                             "event_files_mb": sim["event_file_mb"], "cli": sim["simulate_stderr"],
                             "truth_totals": sim["truth"]["totals"], "truth_records": sim["truth"]["records"]}
    _write_results()
    assert 990 <= len(events) <= 1010, f"expected ~1,000 events, got {len(events)}"
    return sim


def _env(sim, namespace):
    return {"NATMETER_NAT_GATEWAYS": sim["nat_gateways"], "NATMETER_LOG_FORMAT": sim["log_format"],
            "NATMETER_NAMESPACE": namespace}


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _start(bootstrap_bin, api, env, outdir, name, localstack) -> Bootstrap:
    extra = dict(env, AWS_ENDPOINT_URL_CLOUDWATCH=localstack)
    home = outdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    b = Bootstrap([str(bootstrap_bin)], api, lambda_env(api, extra, home), outdir, name)
    b.start()
    return b


def _check_truth(cw, sim, namespace) -> dict:
    """Exact totals. LocalStack matches dimensions with LIKE '%Name=Value%': a query for
    [NatGatewayId=X] also sums [Direction=d, NatGatewayId=X]; the reader's general disentangling is
    O(series^2) over ~5,000 SourceIp series, so the few sums needed here are disentangled by hand."""
    t = sim["truth"]
    r = MetricsReader(cw, namespace, sim["start"] - 3600, int(time.time()) + 3600)

    def raw(metric, dims=None):
        d = [{"Name": k, "Value": v} for k, v in sorted((dims or {}).items())]
        return r._get([{"MetricName": metric, "Dimensions": d}], "Sum", None)[0]

    got = {"NatBytes": raw("NatBytes"), "NatCost": raw("NatCost"), "RecordsCounted": raw("RecordsCounted"),
           "ParseErrors": raw("ParseErrors"), "RecordsSkipped": raw("RecordsSkipped"), "per_gateway": {}}
    for g in t["nat_gateways"]:
        gw = g["nat_gateway"]
        dirs = {d: raw("NatBytes", {"NatGatewayId": gw, "Direction": d}) for d in ("outbound", "inbound")}
        gw_raw = raw("NatBytes", {"NatGatewayId": gw})
        got["per_gateway"][gw] = {"bytes": gw_raw - sum(dirs.values()) if r.like_matching else gw_raw,
                                  **{f"{d}_bytes": v for d, v in dirs.items()},
                                  "packets": raw("NatPackets", {"NatGatewayId": gw})}
    problems = []
    if got["NatBytes"] != t["totals"]["bytes"]:
        problems.append(f"NatBytes {got['NatBytes']} != {t['totals']['bytes']}")
    if not math.isclose(got["NatCost"], t["totals"]["bytes"] / GIB * t["price_per_gb_usd"], rel_tol=1e-9):
        problems.append(f"NatCost {got['NatCost']}")
    for k, want in (("RecordsCounted", t["records"]["counted"]), ("ParseErrors", t["records"]["parse_errors"]),
                    ("RecordsSkipped", sum(t["records"][x] for x in
                                           ("public_side", "not_nat", "rejected", "no_data", "skip_data", "zero_bytes")))):
        if got[k] != want:
            problems.append(f"{k} {got[k]} != {want}")
    for g in t["nat_gateways"]:
        pg = got["per_gateway"][g["nat_gateway"]]
        for k in ("bytes", "outbound_bytes", "inbound_bytes"):
            if pg[k] != g[k]:
                problems.append(f"{g['nat_gateway']} {k} {pg[k]} != {g[k]}")
    packets = sum(pg["packets"] for pg in got["per_gateway"].values())
    if packets != t["totals"]["packets"]:
        problems.append(f"NatPackets {packets} != {t['totals']['packets']}")
    got["problems"] = problems
    return got


def _check_emf_truth(sim, procs) -> dict:
    """NatBytes totals (all, per gateway, per gateway and direction) from the EMF lines on stdout."""
    t = sim["truth"]
    total, per_gw, per_dir = 0, {}, {}
    for b in procs:
        with open(b.stdout_path, "rb") as f:
            for raw in f:
                if b'"_aws"' not in raw:
                    continue
                l = json.loads(raw)
                if "NatBytes" not in l:
                    continue
                for d in l["_aws"]["CloudWatchMetrics"]:
                    if not any(m["Name"] == "NatBytes" for m in d["Metrics"]):
                        continue
                    for ds in d["Dimensions"]:
                        v = l["NatBytes"]
                        v = sum(v) if isinstance(v, list) else v
                        if sorted(ds) == []:
                            total += v
                        elif sorted(ds) == ["NatGatewayId"]:
                            per_gw[l["NatGatewayId"]] = per_gw.get(l["NatGatewayId"], 0) + v
                        elif sorted(ds) == ["Direction", "NatGatewayId"]:
                            k = (l["NatGatewayId"], l["Direction"])
                            per_dir[k] = per_dir.get(k, 0) + v
    problems = []
    if total != t["totals"]["bytes"]:
        problems.append(f"EMF NatBytes {total} != {t['totals']['bytes']}")
    for g in t["nat_gateways"]:
        gw = g["nat_gateway"]
        if per_gw.get(gw, 0) != g["bytes"]:
            problems.append(f"EMF {gw} {per_gw.get(gw, 0)} != {g['bytes']}")
        for d in ("outbound", "inbound"):
            if per_dir.get((gw, d), 0) != g[f"{d}_bytes"]:
                problems.append(f"EMF {gw} {d} {per_dir.get((gw, d), 0)} != {g[f'{d}_bytes']}")
    return {"NatBytes": total, "per_gateway": per_gw, "problems": problems}


def _flat(series: list[int]) -> dict:
    q = max(1, len(series) // 4)
    first, last = max(series[:q]), max(series[-q:])
    limit = first * (1 + RSS_MARGIN) + RSS_SLACK_KB
    return {"first_quarter_max_kb": first, "last_quarter_max_kb": last, "limit_kb": int(limit),
            "flat": last <= limit, "min_kb": min(series), "max_kb": max(series)}


def _latency(invs) -> dict:
    lat = sorted(i.elapsed_s for i in invs if i.elapsed_s is not None)
    if not lat:
        return {}
    return {"p50_ms": round(1000 * lat[len(lat) // 2]), "p95_ms": round(1000 * lat[int(len(lat) * 0.95)]),
            "max_ms": round(1000 * lat[-1]), "mean_ms": round(1000 * statistics.fmean(lat))}


def _log_stats(procs) -> dict:
    lines = [l for b in procs for l in json_lines(b.stderr_text()) if l.get("message") == "natmeter invocation"]
    dur = [l.get("duration_ms", 0) for l in lines]
    return {"invocation_log_lines": len(lines), "datums_sent": sum(l.get("datums_sent", 0) for l in lines),
            "put_metric_data_requests_at_least": sum(math.ceil(l.get("datums_sent", 0) / 1000) for l in lines),
            "retries": sum(l.get("retries", 0) for l in lines),
            "handler_duration_ms_mean": round(statistics.fmean(dur), 1) if dur else None,
            "handler_duration_ms_max": max(dur) if dur else None,
            "warnings": sum(1 for b in procs for l in json_lines(b.stderr_text()) if l.get("level") == "WARN"),
            "errors": sum(1 for b in procs for l in json_lines(b.stderr_text()) if l.get("level") == "ERROR")}


def _run_phase(name, sim, procs, api, localstack_pid, concurrency: int) -> dict:
    events = sim["events"]
    rss = {b.name: [] for b in procs}
    results = [None] * len(events)
    done = [0]
    lock = threading.Lock()
    cpu0 = {b.name: _cpu_s(b.pid) for b in procs}
    ls_cpu0 = _cpu_s(localstack_pid)
    me0 = _cpu_s(os.getpid())
    t0 = time.monotonic()

    def sample():
        for b in procs:
            rss[b.name].append(read_proc_status(b.pid)["VmRSS"])

    sample()
    if concurrency == 1:
        b = procs[0]
        for i, p in enumerate(events):
            results[i] = api.invoke_detail(p.read_bytes(), timeout_s=90, deadline_s=60, alive=b.alive)
            if (i + 1) % SAMPLE_EVERY == 0:
                sample()
    else:
        work: "queue.Queue[int]" = queue.Queue()
        for i in range(len(events)):
            work.put(i)
        errors = []

        def worker():
            while True:
                try:
                    i = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    inv = api.submit(events[i].read_bytes(), deadline_s=60)
                    results[i] = api.wait(inv, 90, alive=lambda: all(b.alive() for b in procs))
                except Exception as e:  # noqa: BLE001
                    errors.append(f"event {i}: {e}")
                    return
                with lock:
                    done[0] += 1
                    if done[0] % SAMPLE_EVERY == 0:
                        sample()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:5]
    wall = time.monotonic() - t0
    sample()
    cpu = {b.name: round(_cpu_s(b.pid) - cpu0[b.name], 1) for b in procs}
    ls_cpu = round(_cpu_s(localstack_pid) - ls_cpu0, 1)
    harness_cpu = round(_cpu_s(os.getpid()) - me0, 1)
    decoded_mb = float(RESULTS["simulation"]["cli"].split("(")[1].split(" MB")[0]) if "(" in RESULTS["simulation"]["cli"] else None
    failed = [(i, r.kind, r.text()[:300]) for i, r in enumerate(results) if r is None or r.kind != "response"]
    return {
        "phase": name, "processes": len(procs), "in_flight": concurrency, "invocations": len(events),
        "wall_s": round(wall, 1), "invocations_per_s": round(len(events) / wall, 2),
        "decoded_mb_per_s": round(decoded_mb / wall, 2) if decoded_mb else None,
        "latency": _latency([r for r in results if r is not None]),
        "cpu_s": {"bootstraps": cpu, "localstack": ls_cpu, "pytest_and_runtime_api": harness_cpu,
                  "localstack_share_of_one_core": round(ls_cpu / wall, 2),
                  "bootstraps_share_of_one_core": round(sum(cpu.values()) / wall, 2)},
        "rss_kb": rss, "rss_flat": {k: _flat(v) for k, v in rss.items()},
        "failed": failed[:10], "failed_count": len(failed),
        "log": _log_stats(procs),
    }


@pytest.mark.parametrize("mode", ["back_to_back", "concurrent", "back_to_back_emf"])
def test_load(mode, load_sim, bootstrap_bin, localstack, localstack_instance, cw, record_measurement):
    namespace = f"NatMeterLoad/{mode}-{uuid.uuid4().hex[:8]}"
    outdir = OUT / _safe(f"load-{mode}")
    api = RuntimeApi()
    n = CONCURRENT_PROCESSES if mode == "concurrent" else 1
    procs = []
    try:
        for k in range(n):
            env = _env(load_sim, namespace)
            if mode.endswith("_emf"):
                env["NATMETER_SINK"] = "emf"
            procs.append(_start(bootstrap_bin, api, env, outdir, f"bootstrap{k}", localstack))
        end = time.monotonic() + 15
        while api.next_requests < n and time.monotonic() < end:
            assert all(b.alive() for b in procs), "a bootstrap exited at start-up"
            time.sleep(0.01)
        phase = _run_phase(mode, load_sim, procs, api, localstack_instance.proc.pid,
                           IN_FLIGHT if mode == "concurrent" else 1)
        RESULTS[mode] = phase
        _write_results()
        t0 = time.monotonic()
        phase["truth_check"] = (_check_emf_truth(load_sim, procs) if mode.endswith("_emf")
                                else _check_truth(cw, load_sim, namespace))
        phase["read_back_s"] = round(time.monotonic() - t0, 1)
        phase["all_alive"] = all(b.alive() for b in procs)
        phase["panics"] = sum("panicked" in b.stderr_text() for b in procs)
        RESULTS[mode] = phase
        _write_results()
        summary = {k: phase[k] for k in ("wall_s", "invocations_per_s", "decoded_mb_per_s", "latency", "cpu_s",
                                         "failed_count")}
        summary["rss_flat"] = {k: (v["first_quarter_max_kb"], v["last_quarter_max_kb"], v["flat"])
                               for k, v in phase["rss_flat"].items()}
        summary["truth_problems"] = phase["truth_check"]["problems"]
        record_measurement(f"load_{mode}", summary)
        assert phase["failed_count"] == 0, f"{phase['failed_count']} invocations failed: {phase['failed']}"
        assert phase["all_alive"] and phase["panics"] == 0
        assert not phase["truth_check"]["problems"], phase["truth_check"]["problems"]
        not_flat = {k: v for k, v in phase["rss_flat"].items() if not v["flat"]}
        assert not not_flat, f"memory grew: {not_flat}"
    finally:
        for b in procs:
            b.proc.terminate() if b.alive() else None
        for b in procs:
            try:
                b.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                b.proc.kill()
        api.stop()
