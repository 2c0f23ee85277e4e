"""Fixtures for natmeter's end-to-end tests: LocalStack, a Lambda Runtime API, the real bootstrap,
and the simulator's events plus ground truth.

Environment:
    NATMETER_BIN    the CLI (default target/debug/natmeter, relative to the repository root)
    BOOTSTRAP_BIN   the Lambda binary (default target/debug/bootstrap)
    NATMETER_E2E_MOTO_VENV  the venv with moto's server, the DynamoDB emulator (run.sh exports it;
                    default <repo>/.venv-moto)
Artifacts (bootstrap stdout/stderr, LocalStack and moto logs, simulations, measurements.json) go
to tests/e2e/out/, which is wiped at the start of each session.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bootstrap_proc import Bootstrap, lambda_env  # noqa: E402
from cwread import MetricsReader, cloudwatch_client  # noqa: E402
from lambda_events import decode_event  # noqa: E402
from localstack_proc import LocalStack, LocalStackError, free_port  # noqa: E402
from runtime_api import RuntimeApi  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from dynamodb_proc import DynamoDbError, MotoServer, create_inventory_table, dynamodb_client  # noqa: E402

REPO = HERE.parent.parent
OUT = HERE / "out"
# All simulations of one session start at the same minute, about 30 minutes ago.
SIM_START = (int(time.time()) - 30 * 60) // 60 * 60


def _bin(var: str, default: str) -> Path:
    p = Path(os.environ.get(var) or default)
    return p if p.is_absolute() else (REPO / p)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120]


# ---------------------------------------------------------------- session-wide ----------------

def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session):
    # a SIGTERM (e.g. a CI time-out) unwinds like Ctrl-C, so LocalStack and bootstraps are stopped
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    if OUT.exists():
        shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)


_MEASUREMENTS: dict = {}


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("natmeter measurements")
        terminalreporter.write_line(json.dumps(_MEASUREMENTS, indent=2, sort_keys=True))
        terminalreporter.write_line(f"(also in {OUT / 'measurements.json'})")


@pytest.fixture(scope="session")
def record_measurement():
    """record_measurement(key, dict): merged into tests/e2e/out/measurements.json and printed."""
    def record(key: str, value):
        _MEASUREMENTS[key] = value
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "measurements.json").write_text(json.dumps(_MEASUREMENTS, indent=2, sort_keys=True) + "\n")
        print(f"\n[measurement] {key}: {json.dumps(value, sort_keys=True)}")
    return record


@pytest.fixture(scope="session")
def natmeter_bin() -> Path:
    p = _bin("NATMETER_BIN", "target/debug/natmeter")
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"natmeter CLI not found or not executable at {p} (set NATMETER_BIN, or build it: "
                    f"cargo build -p <cli crate>)", pytrace=False)
    return p


@pytest.fixture(scope="session")
def bootstrap_bin() -> Path:
    p = _bin("BOOTSTRAP_BIN", "target/debug/bootstrap")
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"bootstrap binary not found or not executable at {p} (set BOOTSTRAP_BIN, or build "
                    f"it: cargo build -p <lambda crate>)", pytrace=False)
    return p


@pytest.fixture(scope="session")
def localstack_instance():
    """The LocalStack object (session): started once, always stopped."""
    workdir = Path(tempfile.mkdtemp(prefix="natmeter-e2e-localstack-"))
    ls = LocalStack(workdir, OUT / "localstack.log")
    atexit.register(ls.stop)  # also on KeyboardInterrupt / abnormal exit
    try:
        try:
            ls.start()
        except LocalStackError as e:
            print(str(e), file=sys.stderr)
            pytest.fail(f"LocalStack did not start: {e}", pytrace=False)
        yield ls
    finally:
        ls.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def localstack(localstack_instance) -> str:
    """LocalStack's endpoint URL, e.g. http://127.0.0.1:43121."""
    return localstack_instance.url


@pytest.fixture(scope="session")
def cw(localstack):
    return cloudwatch_client(localstack)


@pytest.fixture(scope="session")
def dynamodb_instance():
    """The MotoServer object (session): moto's server on a free loopback port, started on first use,
    always stopped; its log in tests/e2e/out/dynamodb.log."""
    m = MotoServer(OUT / "dynamodb.log")
    atexit.register(m.stop)  # also on KeyboardInterrupt / abnormal exit
    try:
        try:
            m.start()
        except DynamoDbError as e:
            print(str(e), file=sys.stderr)
            pytest.fail(f"the DynamoDB emulator (moto server) did not start: {e}", pytrace=False)
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="session")
def dynamodb(dynamodb_instance) -> str:
    """The DynamoDB emulator's endpoint URL, e.g. http://127.0.0.1:43122 (AWS_ENDPOINT_URL_DYNAMODB)."""
    return dynamodb_instance.url


@pytest.fixture(scope="session")
def ddb(dynamodb):
    """A boto3 DynamoDB client of the emulator (dummy credentials, us-east-1)."""
    return dynamodb_client(dynamodb)


# ---------------------------------------------------------------- per test -------------------

@pytest.fixture
def inventory_table(request, ddb) -> str:
    """A fresh table with the function's schema (pk S HASH, sk S RANGE, PAY_PER_REQUEST, TTL on
    expires_at), unique to this test (the emulator has no reset); deleted at teardown."""
    name = f"natmeter-e2e-{_safe(request.node.name)[:60]}-{uuid.uuid4().hex[:8]}"
    create_inventory_table(ddb, name)
    try:
        yield name
    finally:
        try:
            ddb.delete_table(TableName=name)
        except Exception:  # noqa: BLE001 - the emulator may be gone at the end of a failed session
            pass


@pytest.fixture
def test_out(request) -> Path:
    d = OUT / _safe(request.node.nodeid.split("::", 1)[-1])
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def namespace(request) -> str:
    """A CloudWatch namespace unique to this test (LocalStack has no reset)."""
    return f"NatMeterE2E/{_safe(request.node.name)[:60]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def runtime_api():
    api = RuntimeApi()
    try:
        yield api
    finally:
        api.stop()


def launch_bootstrap(argv: list[str], natmeter_env: dict, outdir: Path, name: str,
                     endpoint: Optional[str], wait_ready: bool = True, pdeathsig: bool = True) -> Bootstrap:
    """Start argv (the real bootstrap) with its own Runtime API server and the Lambda environment,
    AWS_ENDPOINT_URL_CLOUDWATCH=endpoint (unset when None) and the given NATMETER_* settings."""
    extra = dict(natmeter_env)
    if endpoint:
        extra["AWS_ENDPOINT_URL_CLOUDWATCH"] = endpoint
    api = RuntimeApi()
    home = outdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    b = Bootstrap(argv, api, lambda_env(api, extra, home), outdir, name, pdeathsig=pdeathsig)
    try:
        b.start()
        if wait_ready:
            b.wait_ready()
    except BaseException:
        b.stop()
        raise
    return b


@pytest.fixture
def start_bootstrap(request, test_out):
    """Factory: start_bootstrap(natmeter_env, name=..., endpoint="localstack"|URL|None, argv=None,
    wait_ready=True, pdeathsig=True) -> Bootstrap.

    Starts the real BOOTSTRAP_BIN (or argv) with the Lambda environment, its own Runtime API
    server, AWS_ENDPOINT_URL_CLOUDWATCH=<endpoint> and the given NATMETER_* settings. stdout and
    stderr go to files in tests/e2e/out/<test>/. Every process is stopped at teardown."""
    started: list[Bootstrap] = []

    def start(natmeter_env: dict, name: Optional[str] = None, endpoint: Optional[str] = "localstack",
              argv: Optional[list[str]] = None, wait_ready: bool = True, pdeathsig: bool = True) -> Bootstrap:
        if argv is None:
            argv = [str(request.getfixturevalue("bootstrap_bin"))]
        if endpoint == "localstack":
            endpoint = request.getfixturevalue("localstack")
        b = launch_bootstrap(argv, natmeter_env, test_out, name or f"bootstrap{len(started)}", endpoint,
                             wait_ready=False, pdeathsig=pdeathsig)
        started.append(b)
        if wait_ready:
            b.wait_ready()
        return b

    try:
        yield start
    finally:
        for b in started:
            b.stop()


@pytest.fixture
def fault_proxy(request, test_out):
    """Factory: fault_proxy(upstream=<LocalStack>, delay_s=60, emulate_cloudwatch=False) -> FaultProxy,
    a fault-injecting proxy in front of LocalStack (fault_proxy.py). Stopped at teardown (which
    releases held requests); its request log goes to tests/e2e/out/<test>/proxy<N>.json."""
    proxies: list[FaultProxy] = []

    def make(upstream: Optional[str] = None, **kw) -> FaultProxy:
        p = FaultProxy(upstream or request.getfixturevalue("localstack"), **kw)
        proxies.append(p)
        return p

    try:
        yield make
    finally:
        for i, p in enumerate(proxies):
            p.stop()
            (test_out / f"proxy{i}.json").write_text(
                json.dumps([r.summary() for r in p.requests], indent=1) + "\n")


# ---------------------------------------------------------------- simulator ------------------

@dataclass
class Sim:
    dir: Path
    params: dict
    start: int
    minutes: int
    events: list[Path]
    nat_gateways: str
    log_format: str
    truth: dict
    _decoded: dict = field(default_factory=dict, repr=False)

    def event_bytes(self, path: Path) -> bytes:
        return path.read_bytes()

    def decoded(self, path: Path) -> dict:
        if path not in self._decoded:
            self._decoded[path] = decode_event(path.read_bytes())
        return self._decoded[path]

    def nat_gateway_list(self) -> list[dict]:
        return json.loads(self.nat_gateways)

    def nat_enis(self) -> set[str]:
        return {g["eni"] for g in self.nat_gateway_list()}

    def nat_eni_events(self) -> list[Path]:
        """Events whose log stream names a NAT gateway ENI, largest decoded batch first."""
        enis = self.nat_enis()
        out = [p for p in self.events
               if any(e in self.decoded(p).get("logStream", "") for e in enis)]
        return sorted(out, key=lambda p: -len(json.dumps(self.decoded(p))))

    def env(self, namespace: str, **extra) -> dict:
        env = {
            "NATMETER_NAT_GATEWAYS": self.nat_gateways,
            "NATMETER_LOG_FORMAT": self.log_format,
            "NATMETER_NAMESPACE": namespace,
        }
        env.update({k: v for k, v in extra.items()})
        return env

    def reader(self, cw, namespace: str, margin_s: int = 600) -> MetricsReader:
        """A reader whose window covers every simulated minute (with a margin)."""
        return MetricsReader(cw, namespace, self.start - margin_s, self.start + self.minutes * 60 + margin_s)


_SIMS: dict = {}


@pytest.fixture(scope="session")
def simulate(natmeter_bin):
    """Factory: simulate(seed=, pods=, nodes=, nat_gateways=, minutes=, external_snat=, scope=,
    [max_batch_bytes=, shuffle_format=]) -> Sim.
    Runs `natmeter simulate ... --start <about 30 min ago> --out DIR`; cached per parameter set."""
    def run(seed=1, pods=30, nodes=3, nat_gateways=2, minutes=3, external_snat=False, scope="vpc",
            max_batch_bytes=None, shuffle_format=False) -> Sim:
        params = dict(seed=seed, pods=pods, nodes=nodes, nat_gateways=nat_gateways, minutes=minutes,
                      external_snat=external_snat, scope=scope, max_batch_bytes=max_batch_bytes,
                      shuffle_format=shuffle_format)
        key = tuple(sorted(params.items()))
        if key in _SIMS:
            return _SIMS[key]
        d = OUT / "sims" / _safe("-".join(f"{k}{v}" for k, v in sorted(params.items())))
        if d.exists():
            shutil.rmtree(d)
        d.parent.mkdir(parents=True, exist_ok=True)
        argv = [str(natmeter_bin), "simulate", "--seed", str(seed), "--pods", str(pods),
                "--nodes", str(nodes), "--nat-gateways", str(nat_gateways), "--minutes", str(minutes),
                "--external-snat", "true" if external_snat else "false", "--scope", scope,
                "--start", str(SIM_START), "--out", str(d)]
        if max_batch_bytes is not None:  # optional flags of the current CLI
            argv += ["--max-batch-bytes", str(max_batch_bytes)]
        if shuffle_format:
            argv += ["--shuffle-format"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.fail(f"`{' '.join(argv)}` exited {r.returncode}\nstdout:\n{r.stdout[-3000:]}\n"
                        f"stderr:\n{r.stderr[-3000:]}", pytrace=False)
        missing = [n for n in ("events", "nat-gateways.json", "log-format.txt", "truth.json")
                   if not (d / n).exists()]
        if missing:
            pytest.fail(f"`natmeter simulate` did not write {missing} in {d} (contract: events/*.json, "
                        f"nat-gateways.json, log-format.txt, truth.json)", pytrace=False)
        events = sorted((d / "events").glob("*.json"))
        if not events:
            pytest.fail(f"`natmeter simulate` wrote no events/*.json in {d}", pytrace=False)
        sim = Sim(dir=d, params=params, start=SIM_START, minutes=minutes, events=events,
                  nat_gateways=(d / "nat-gateways.json").read_text().strip(),
                  log_format=(d / "log-format.txt").read_text().strip(),
                  truth=json.loads((d / "truth.json").read_text()))
        (d / "argv.txt").write_text(" ".join(argv) + "\n")
        _SIMS[key] = sim
        return sim
    return run


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port with nothing listening (bound once, then released)."""
    return free_port()
