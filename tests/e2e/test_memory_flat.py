"""A warm container's memory must stay flat over many invocations (issue 6 section 5, "flat memory"),
checked fast: 2,000 small invocations with NATMETER_SINK=emf (no network), VmRSS sampled.

The diagnostic variant runs the same with the Runtime API sending no Lambda-Runtime-Trace-Id.
Lambda sends a new trace header with every invocation; lambda_runtime 1.5 then calls
std::env::set_var("_X_AMZN_TRACE_ID", ...) each time (runtime.rs, amzn_trace_env), and glibc's
setenv never frees a value it has replaced. If only the variant with trace ids grows, that is
where the growth comes from.
"""

from __future__ import annotations

import time
import uuid

import pytest

import flowgen as fg
from bootstrap_proc import Bootstrap, lambda_env, read_proc_status
from conftest import OUT, _bin, _safe
from runtime_api import RuntimeApi

INVOCATIONS = 2000
WARM_UP = 200
ALLOWED_GROWTH_KB = 1024


@pytest.mark.parametrize("trace_ids", [True, False], ids=["with_trace_ids", "diagnostic_without_trace_ids"])
def test_rss_stays_flat_over_2000_invocations(trace_ids, record_measurement):
    api = RuntimeApi(send_trace_id=trace_ids)
    outdir = OUT / _safe(f"memory_flat-{'trace' if trace_ids else 'notrace'}")
    home = outdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = lambda_env(api, fg.env(f"NatMeterE2E/mem-{uuid.uuid4().hex[:8]}", NATMETER_SINK="emf"), home)
    b = Bootstrap([str(_bin("BOOTSTRAP_BIN", "target/debug/bootstrap"))], api, env, outdir, "bootstrap")
    try:
        b.start()
        b.wait_ready()
        series = []
        t0 = time.monotonic()
        for i in range(INVOCATIONS):
            inv = api.invoke_detail(fg.good_event(1, id_base=i * 10), timeout_s=30, alive=b.alive)
            assert inv.kind == "response" and inv.json().get("batch") == "data", inv.text()[:300]
            if i == WARM_UP or (i + 1) % 200 == 0:
                series.append(read_proc_status(b.pid)["VmRSS"])
        took = time.monotonic() - t0
        base = series[0]
        grew = series[-1] - base
        per_inv = grew * 1024 / (INVOCATIONS - WARM_UP)
        record_measurement(f"memory_flat_{'with' if trace_ids else 'without'}_trace_ids", {
            "invocations": INVOCATIONS, "rss_kb_after_warm_up": base, "rss_kb_end": series[-1],
            "growth_bytes_per_invocation": round(per_inv), "series_kb": series, "seconds": round(took, 1)})
        assert grew <= ALLOWED_GROWTH_KB, (
            f"VmRSS grew {grew} kB over {INVOCATIONS - WARM_UP} invocations after warm-up (~{per_inv:.0f} B per "
            f"invocation; trace ids {'on' if trace_ids else 'off'}): {series}")
    finally:
        b.stop()
