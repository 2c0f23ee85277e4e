"""Measurements (issue 3 "Done when"): bootstrap start-up time (process spawn to its first Runtime
API request) and peak RSS (VmHWM) while handling one ~1 MB decoded batch.

Numbers are recorded in tests/e2e/out/measurements.json and printed in the terminal summary.
docs/testing.md §7 targets (start-up < 20 ms, peak RSS < 16 MB) are for the release build: they are
reported next to the numbers, not asserted, since this suite usually runs a debug build.
"""

from __future__ import annotations

import os
import statistics

from lambda_events import decoded_size, encode_payload, inflate_to_size

SIM = dict(seed=31, pods=60, nodes=4, nat_gateways=2, minutes=2, external_snat=True, scope="nat-enis")
STARTUP_TARGET_MS = 20
RSS_TARGET_KB = 16 * 1024


def _build_info(path) -> dict:
    st = os.stat(path)
    return {"path": str(path), "size_bytes": st.st_size,
            "profile_guess": "release" if "/release/" in str(path) else "debug" if "/debug/" in str(path) else "?"}


def test_bootstrap_startup_time(simulate, start_bootstrap, bootstrap_bin, namespace, record_measurement):
    sim = simulate(**SIM)
    runs_ms = []
    for i in range(7):
        b = start_bootstrap(sim.env(namespace), name=f"startup{i}", pdeathsig=False)  # exec the binary itself
        runs_ms.append(b.startup_s * 1000)
        b.stop()
    record_measurement("bootstrap_startup_ms", {
        "binary": _build_info(bootstrap_bin),
        "what": "spawn (Popen) to the first GET /2018-06-01/runtime/invocation/next",
        "runs_ms": [round(x, 2) for x in runs_ms],
        "median_ms": round(statistics.median(runs_ms), 2),
        "min_ms": round(min(runs_ms), 2),
        "target_ms": STARTUP_TARGET_MS,
        "median_meets_target": statistics.median(runs_ms) < STARTUP_TARGET_MS,
    })


def test_peak_rss_on_a_1mb_batch(simulate, start_bootstrap, bootstrap_bin, namespace, record_measurement, test_out):
    sim = simulate(**SIM)
    payload = inflate_to_size(sim.decoded(sim.nat_eni_events()[0]), 1_000_000)
    event = encode_payload(payload)
    (test_out / "event-1mb.json").write_bytes(event)
    size = decoded_size(event)
    assert 950_000 <= size <= 1_048_576, size
    b = start_bootstrap(sim.env(namespace), pdeathsig=False)
    before = b.proc_status()
    inv = b.invoke_detail(event, timeout_s=120)
    after = b.proc_status()
    assert inv.kind == "response", f"1 MB batch failed: {inv.text()[:500]}"
    record_measurement("bootstrap_peak_rss_1mb_batch", {
        "binary": _build_info(bootstrap_bin),
        "decoded_batch_bytes": size,
        "log_events": len(payload["logEvents"]),
        "event_bytes": len(event),
        "vmhwm_kb_before_invocation": before.get("VmHWM"),
        "vmhwm_kb_after_invocation": after.get("VmHWM"),
        "vmrss_kb_after_invocation": after.get("VmRSS"),
        "invocation_s": round(inv.elapsed_s, 4),
        "target_kb": RSS_TARGET_KB,
        "meets_target": after.get("VmHWM", 1 << 30) < RSS_TARGET_KB,
    })
