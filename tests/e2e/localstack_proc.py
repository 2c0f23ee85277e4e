"""Start and stop LocalStack on the host (no Docker), exactly as docs/testing.md §3.1 says.

    FILESYSTEM_ROOT=<dir> CONFIG_DIR=<dir> GATEWAY_LISTEN=127.0.0.1:<port> GATEWAY_SERVER=hypercorn
    DNS_ADDRESS=0 SERVICES=cloudwatch,logs,ec2,s3,sqs EAGER_SERVICE_LOADING=1 DISABLE_EVENTS=1
    SKIP_SSL_CERT_DOWNLOAD=1 TMPDIR=<dir> CLEAR_TMP_FOLDER=0 <venv>/bin/python -m localstack.runtime.main

with CloudWatch's SQLite file on tmpfs when there is one (`_place_metrics_db`).

Usable on its own for a smoke check:  .venv/bin/python tests/e2e/localstack_proc.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

SERVICES = ("cloudwatch", "logs", "ec2", "s3", "sqs")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    try:
        data = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data[-lines:])


class LocalStackError(RuntimeError):
    pass


class LocalStack:
    def __init__(self, workdir: Path, log_path: Path, python: str = sys.executable,
                 port: Optional[int] = None, host: str = "127.0.0.1"):
        self.workdir = Path(workdir)
        self.log_path = Path(log_path)
        self.python = python
        self.host = host
        self.port = port
        self.proc: Optional[subprocess.Popen] = None
        self.started_at: Optional[float] = None
        self.ready_after_s: Optional[float] = None
        self.stop_info: dict = {}
        self.metrics_dir: Optional[Path] = None  # where LocalStack's CloudWatch keeps its SQLite file
        self._shm_dir: Optional[Path] = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def health(self, timeout: float = 2.0) -> Optional[dict]:
        try:
            with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=timeout) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def start(self, timeout_s: float = 90.0) -> str:
        """Start, poll health until cloudwatch and logs are available; return the endpoint URL.

        On failure the process is stopped and LocalStackError carries the log tail."""
        if self.port is None:
            self.port = free_port(self.host)
        fs_root = self.workdir / "filesystem"
        cfg_dir = self.workdir / "config"
        fs_root.mkdir(parents=True, exist_ok=True)
        cfg_dir.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.workdir / "tmp"
        self._place_metrics_db(tmp_dir)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_"))}
        env.update({
            "FILESYSTEM_ROOT": str(fs_root),
            "CONFIG_DIR": str(cfg_dir),
            "GATEWAY_LISTEN": f"{self.host}:{self.port}",
            "GATEWAY_SERVER": "hypercorn",
            "DNS_ADDRESS": "0",
            "SERVICES": ",".join(SERVICES),
            "EAGER_SERVICE_LOADING": "1",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "PYTHONUNBUFFERED": "1",
            # LocalStack keeps its state under $TMPDIR/localstack whatever FILESYSTEM_ROOT says
            # (/tmp/localstack otherwise: shared by every run on the machine, and kept after it).
            "TMPDIR": str(tmp_dir),
            # ...which it empties at start-up and exit unless told not to: that would replace the
            # link to tmpfs below with a directory on disk (the workdir is new and removed anyway).
            "CLEAR_TMP_FOLDER": "0",
        })
        self._log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        argv = [self.python, "-m", "localstack.runtime.main"]
        setpriv = shutil.which("setpriv")
        if setpriv:  # if the test process dies without cleaning up, LocalStack gets SIGKILL
            argv = [setpriv, "--pdeathsig", "KILL", "--"] + argv
        self.proc = subprocess.Popen(
            argv,
            env=env, cwd=str(self.workdir), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        try:
            self._wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        self.ready_after_s = time.monotonic() - self.started_at
        return self.url

    def _place_metrics_db(self, tmp_dir: Path, min_free: int = 256 << 20) -> None:
        """LocalStack's CloudWatch commits its SQLite file once per datum: a 1,000-datum
        PutMetricData is 1,000 fsyncs, which outlasted an 8 s deadline on a slow disk in CI. The
        file's directory is a link into /dev/shm when that has room, else it stays on disk
        (docs/testing.md §3.1)."""
        cw = tmp_dir / "localstack" / "state" / "cloudwatch"
        cw.parent.mkdir(parents=True, exist_ok=True)
        shm = Path(os.environ.get("NATMETER_E2E_SHM", "/dev/shm"))
        try:
            st = os.statvfs(shm)
            roomy = os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize >= min_free
        except OSError:
            roomy = False
        if roomy:
            self._shm_dir = Path(tempfile.mkdtemp(prefix="natmeter-e2e-cloudwatch-", dir=shm))
            cw.symlink_to(self._shm_dir, target_is_directory=True)
            self.metrics_dir = self._shm_dir
        else:
            cw.mkdir(exist_ok=True)
            self.metrics_dir = cw

    def _wait_healthy(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise LocalStackError(
                    f"LocalStack exited with status {rc} before it was healthy; log {self.log_path}:\n"
                    f"{tail(self.log_path)}")
            h = self.health(timeout=1.0)
            if h is not None:
                last = h
                services = h.get("services", {})
                if all(services.get(s) in ("available", "running") for s in SERVICES):
                    return
            time.sleep(0.2)
        raise LocalStackError(
            f"LocalStack not healthy after {timeout_s:.0f}s (last health: {last}); log {self.log_path}:\n"
            f"{tail(self.log_path)}")

    def stop(self, grace_s: float = 5.0) -> dict:
        """SIGTERM the process we started, SIGKILL after grace_s. Idempotent."""
        p = self.proc
        if p is None:
            return self.stop_info
        children = []
        try:
            import psutil  # shipped with localstack-core
            children = [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
        except Exception:
            pass
        info = {"pid": p.pid, "signal": None, "seconds": None, "leftover_children_killed": []}
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
        for pid in children:  # only processes this LocalStack started
            try:
                os.kill(pid, signal.SIGKILL)
                info["leftover_children_killed"].append(pid)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
        self.proc = None
        if self._shm_dir is not None:  # tmpfs is memory: do not leave the database behind
            shutil.rmtree(self._shm_dir, ignore_errors=True)
            self._shm_dir = None
        self.stop_info = info
        return info


if __name__ == "__main__":  # smoke check: start, health, stop
    with tempfile.TemporaryDirectory(prefix="natmeter-ls-") as d:
        ls = LocalStack(Path(d), Path(d) / "localstack.log")
        t0 = time.monotonic()
        try:
            url = ls.start()
            print(f"healthy at {url} after {ls.ready_after_s:.2f}s: {ls.health()}")
        finally:
            info = ls.stop()
            print(f"stopped: {info} (total {time.monotonic() - t0:.2f}s)")
