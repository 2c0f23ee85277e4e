"""Start and stop the DynamoDB emulator of the end-to-end tests: moto's server (moto 5.2.5, pinned in
tests/e2e/requirements-moto.txt), in a venv of its own (<repo>/.venv-moto, made by run.sh), on
loopback:

    <moto venv>/bin/python -m moto.server -H 127.0.0.1 -p <free port>

with AWS_*/MOTO_* variables removed from its environment, under `setpriv --pdeathsig KILL` when
available (it dies with the test process). Ready when a DynamoDB ListTables answers 200 (moto
routes a request to a service by the credential scope of its Authorization header; the first
DynamoDB request loads the backend). Stop: SIGTERM (moto exits 0 on it), SIGKILL after a grace
period. State is in memory only: every test makes its own table.

Usable on its own for a smoke check:  .venv/bin/python tests/e2e/dynamodb_proc.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from localstack_proc import free_port, tail

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


class DynamoDbError(RuntimeError):
    pass


def moto_venv() -> Path:
    """NATMETER_E2E_MOTO_VENV (exported by run.sh), else <NATMETER_E2E_VENV or .venv>-moto."""
    v = os.environ.get("NATMETER_E2E_MOTO_VENV")
    if v:
        return Path(v)
    main = Path(os.environ.get("NATMETER_E2E_VENV") or (REPO / ".venv"))
    return main.with_name(main.name + "-moto")


class MotoServer:
    def __init__(self, log_path: Path, python: Optional[str] = None, port: Optional[int] = None,
                 host: str = "127.0.0.1"):
        self.log_path = Path(log_path)
        self.python = python or str(moto_venv() / "bin" / "python")
        self.host = host
        self.port = port
        self.proc: Optional[subprocess.Popen] = None
        self.started_at: Optional[float] = None
        self.ready_after_s: Optional[float] = None
        self.stop_info: dict = {}
        self.version: Optional[str] = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def list_tables(self, timeout: float = 2.0) -> Optional[list]:
        """A raw DynamoDB ListTables (no SDK): the table names, or None when it did not answer 200."""
        req = urllib.request.Request(
            self.url + "/", data=b"{}", method="POST",
            headers={"Content-Type": "application/x-amz-json-1.0",
                     "X-Amz-Target": "DynamoDB_20120810.ListTables",
                     "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
                                      "SignedHeaders=host, Signature=0"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                if r.status != 200:
                    return None
                return json.loads(r.read()).get("TableNames", [])
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def start(self, timeout_s: float = 60.0, attempts: int = 3) -> str:
        """Start and wait until DynamoDB answers; return the endpoint URL. A port taken between
        choosing and binding it is retried on another (up to `attempts` times)."""
        if not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
            raise DynamoDbError(
                f"no moto venv at {Path(self.python).parent.parent} (python {self.python} missing): run "
                f"tests/e2e/run.sh (or run.sh --setup-only), which installs tests/e2e/requirements-moto.txt there")
        fixed_port = self.port
        last: Optional[BaseException] = None
        for _ in range(max(1, attempts)):
            self.port = fixed_port or free_port(self.host)
            try:
                return self._start_once(timeout_s)
            except DynamoDbError as e:
                last = e
                if fixed_port or "Address already in use" not in str(e):
                    raise
        raise last  # type: ignore[misc]

    def _start_once(self, timeout_s: float) -> str:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "PYTHON"))}
        env["PYTHONUNBUFFERED"] = "1"
        self._log = open(self.log_path, "ab")
        self._log.write(f"--- moto server on {self.host}:{self.port} ---\n".encode())
        self._log.flush()
        argv = [self.python, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        setpriv = shutil.which("setpriv")
        if setpriv:  # if the test process dies without cleaning up, moto gets SIGKILL
            argv = [setpriv, "--pdeathsig", "KILL", "--"] + argv
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, cwd=str(self.log_path.parent), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        self.ready_after_s = time.monotonic() - self.started_at
        # the installed moto's version, from its dist-info (no second interpreter start)
        venv = Path(self.python).parent.parent
        found = sorted(venv.glob("lib/python*/site-packages/moto-*.dist-info"))
        self.version = found[-1].name[len("moto-"):-len(".dist-info")] if found else None
        return self.url

    def _wait_ready(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise DynamoDbError(f"moto server exited with status {rc} before it answered; log "
                                    f"{self.log_path}:\n{tail(self.log_path)}")
            if self.list_tables(timeout=1.0) is not None:
                return
            time.sleep(0.1)
        raise DynamoDbError(f"moto server did not answer DynamoDB ListTables within {timeout_s:.0f}s; log "
                            f"{self.log_path}:\n{tail(self.log_path)}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float = 5.0) -> dict:
        """SIGTERM the process we started, SIGKILL after grace_s. Idempotent."""
        p = self.proc
        if p is None:
            return self.stop_info
        info = {"pid": p.pid, "signal": None, "seconds": None}
        t0 = time.monotonic()
        if p.poll() is None:
            info["signal"] = "SIGTERM"
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                info["signal"] = "SIGKILL"
                p.kill()
                p.wait(timeout=10)
        info["seconds"] = round(time.monotonic() - t0, 3)
        info["returncode"] = p.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        self.proc = None
        self.stop_info = info
        return info


# ---------------------------------------------------------------- the function's table --------

INVENTORY_KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
INVENTORY_ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
TTL_ATTRIBUTE = "expires_at"


def dynamodb_client(endpoint_url: str, max_attempts: int = 3):
    """max_attempts: in all, the first one included (botocore's total_max_attempts)."""
    import boto3
    from botocore.config import Config
    return boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                                      connect_timeout=5, read_timeout=30))


def create_inventory_table(client, name: str) -> dict:
    """The function's table (infra/modules/natmeter/inventory.tf): pk (S, HASH), sk (S, RANGE),
    PAY_PER_REQUEST, TTL on expires_at. Returns DescribeTable's Table."""
    client.create_table(TableName=name, KeySchema=INVENTORY_KEY_SCHEMA, AttributeDefinitions=INVENTORY_ATTRIBUTES,
                        BillingMode="PAY_PER_REQUEST")
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    client.update_time_to_live(TableName=name,
                               TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})
    return client.describe_table(TableName=name)["Table"]


def scan_items(client, table: str) -> list[dict]:
    """Every item of the table, as plain dicts ({"pk": "h#...", "sk": ..., "f": ..., "expires_at": 123}),
    sorted by (pk, sk)."""
    out = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for it in page["Items"]:
            row = {}
            for k, v in it.items():
                (t, x), = v.items()
                row[k] = int(x) if t == "N" and x.lstrip("-").isdigit() else (float(x) if t == "N" else x)
                if t not in ("S", "N"):
                    row[k] = {t: x}
            out.append(row)
    return sorted(out, key=lambda r: (str(r.get("pk")), str(r.get("sk"))))


if __name__ == "__main__":  # smoke check: start, make a table, stop
    with tempfile.TemporaryDirectory(prefix="natmeter-moto-") as d:
        m = MotoServer(Path(d) / "moto.log")
        t0 = time.monotonic()
        try:
            url = m.start()
            print(f"moto {m.version} answering at {url} after {m.ready_after_s:.2f}s")
            c = dynamodb_client(url)
            t = create_inventory_table(c, "natmeter-smoke")
            print(f"table {t['TableName']}: {t['TableStatus']}, {t['KeySchema']}, "
                  f"TTL {c.describe_time_to_live(TableName='natmeter-smoke')['TimeToLiveDescription']}")
        finally:
            print(f"stopped: {m.stop()} (total {time.monotonic() - t0:.2f}s)")
            print(tail(Path(d) / "moto.log", 5))
