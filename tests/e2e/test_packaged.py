"""The panic strategy of the binary under test (run against the packaged bootstrap by
`make test-package`, and against the plain build by `make test-e2e`).

docs/contracts.md §5.2: a handler panic becomes an error response and the process stays up for
the next invocation. That holds only if the build unwinds: cargo-lambda builds release
binaries with panic=abort unless the profile names a strategy, so this test is what tells a
shipped zip that would die on a panic from one that answers. The panic is injected with
NATMETER_TEST_PANIC_ON (fault injection: an event holding that text panics the handler)."""
import json

import flowgen

MARKER = "natmeter-injected-panic"


def test_a_handler_panic_is_an_error_response_and_the_process_stays_up(start_bootstrap, namespace):
    b = start_bootstrap(flowgen.env(namespace, NATMETER_SINK="emf", NATMETER_TEST_PANIC_ON=MARKER))
    # The marker sits in the event's raw bytes (the handler checks them before decoding).
    bad = json.dumps(dict(json.loads(flowgen.good_event(1)), marker=MARKER)).encode()
    inv = b.invoke_detail(bad, timeout_s=30)
    assert inv.kind == "error", f"a panic must be answered as an error: {inv.kind} {inv.text()[:300]}"
    assert "panic" in inv.text().lower(), inv.text()[:300]
    assert b.alive(), f"the process died on a handler panic (built with panic=abort?)\n{b.stderr_tail()}"
    good = b.invoke_detail(flowgen.good_event(1), timeout_s=30)
    assert good.kind == "response" and good.json()["batch"] == "data", good.text()[:300]
    assert b.alive()
