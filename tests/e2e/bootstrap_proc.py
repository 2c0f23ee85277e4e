"""Run a Lambda custom-runtime process (the real `bootstrap`) against a RuntimeApi."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

from runtime_api import Invocation, RuntimeApi


def read_proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS / VmPeak ... in kB from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Vm"):
                k, v = line.split(":", 1)
                parts = v.split()
                if parts and parts[0].isdigit():
                    out[k] = int(parts[0])
    return out


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


class Bootstrap:
    def __init__(self, argv: list[str], api: RuntimeApi, env: dict[str, str], outdir: Path, name: str,
                 pdeathsig: bool = True):
        self.argv = argv
        # if the test process dies without cleaning up, the runtime gets SIGKILL (not for start-up
        # measurements: setpriv adds an exec)
        self.pdeathsig = pdeathsig and shutil.which("setpriv") is not None
        self.api = api
        self.env = env
        self.outdir = Path(outdir)
        self.name = name
        self.stdout_path = self.outdir / f"{name}.stdout"
        self.stderr_path = self.outdir / f"{name}.stderr"
        self.proc: Optional[subprocess.Popen] = None
        self.spawned_at: Optional[float] = None
        self.invocations: list[Invocation] = []

    def start(self) -> "Bootstrap":
        self.outdir.mkdir(parents=True, exist_ok=True)
        (self.outdir / f"{self.name}.env.json").write_text(json.dumps(self.env, indent=1, sort_keys=True))
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.spawned_at = time.monotonic()
            # BOOTSTRAP_WRAPPER runs the binary through an emulator: `make smoke-arm64` runs the
            # arm64 package under "qemu-aarch64 -L /usr/aarch64-linux-gnu".
            wrapper = []
            real = os.environ.get("BOOTSTRAP_BIN")
            if real and os.path.realpath(self.argv[0]) == os.path.realpath(real):  # not stand-ins
                wrapper = shlex.split(os.environ.get("BOOTSTRAP_WRAPPER", ""))
            argv = (["setpriv", "--pdeathsig", "KILL", "--"] if self.pdeathsig else []) + wrapper + self.argv
            self.proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, cwd=str(self.outdir))
        finally:
            out.close()
            err.close()
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float = 10.0) -> float:
        """Wait for the first GET /next; return start-up seconds (spawn -> first /next)."""
        end = time.monotonic() + timeout_s
        while self.api.first_next_at is None:
            if not self.alive():
                raise AssertionError(
                    f"{self.name}: process exited with status {self.proc.returncode} before its first "
                    f"/next request{self._init_error_note()}\n--- stderr tail ---\n{self.stderr_tail()}")
            if time.monotonic() > end:
                raise AssertionError(f"{self.name}: no /next request within {timeout_s}s\n"
                                     f"--- stderr tail ---\n{self.stderr_tail()}")
            time.sleep(0.001)
        return self.startup_s

    @property
    def startup_s(self) -> Optional[float]:
        if self.api.first_next_at is None or self.spawned_at is None:
            return None
        return self.api.first_next_at - self.spawned_at

    def _init_error_note(self) -> str:
        if self.api.init_error is not None:
            return f"; init error posted: {self.api.init_error.decode(errors='replace')}"
        return ""

    def invoke_detail(self, event: bytes, timeout_s: float = 60.0,
                      deadline_s: Optional[float] = None) -> Invocation:
        out_before = self._size(self.stdout_path)
        err_before = self._size(self.stderr_path)
        try:
            inv = self.api.invoke_detail(event, timeout_s=timeout_s, deadline_s=deadline_s, alive=self.alive)
        except Exception as e:
            rc = self.proc.poll() if self.proc else None
            raise AssertionError(
                f"{self.name}: invocation failed in the harness: {e} (process status: "
                f"{'running' if rc is None else rc}){self._init_error_note()}\n"
                f"--- stderr tail ---\n{self.stderr_tail()}") from e
        time.sleep(0.05)  # let the last lines of this invocation reach the files
        inv.stdout_span = (out_before, self._size(self.stdout_path))
        inv.stderr_span = (err_before, self._size(self.stderr_path))
        self.invocations.append(inv)
        return inv

    @staticmethod
    def _size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0

    def stdout_json_of(self, inv: Invocation) -> list[dict]:
        """JSON lines the process wrote to stdout while handling inv."""
        a, b = inv.stdout_span
        with open(self.stdout_path, "rb") as f:
            f.seek(a)
            return json_lines(f.read(b - a).decode("utf-8", errors="replace"))

    def stderr_text_of(self, inv: Invocation) -> str:
        a, b = inv.stderr_span
        with open(self.stderr_path, "rb") as f:
            f.seek(a)
            return f.read(b - a).decode("utf-8", errors="replace")

    def invoke(self, event: bytes, timeout_s: float = 60.0, deadline_s: Optional[float] = None) -> tuple[str, str]:
        inv = self.invoke_detail(event, timeout_s, deadline_s)
        return inv.kind, inv.text()

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stdout_json(self) -> list[dict]:
        return json_lines(self.stdout_text())

    def stderr_json(self) -> list[dict]:
        return json_lines(self.stderr_text())

    def stderr_tail(self, n: int = 30) -> str:
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def proc_status(self) -> dict[str, int]:
        return read_proc_status(self.proc.pid)

    def stop(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.api.stop()


def lambda_env(api: RuntimeApi, extra: dict[str, str], home: Path) -> dict[str, str]:
    """The environment a provided.al2023 function sees (the subset lambda_runtime and the SDK use)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # an empty home: no ~/.aws of the host leaks in
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "natmeter-e2e",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]e2e00000000000000000000000000000",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/natmeter-e2e",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "RUST_BACKTRACE": "1",
        # The function reads https://ip-ranges.amazonaws.com/ip-ranges.json at cold start by
        # default; these machines reach no AWS endpoint. Tests of the ranges serve a file on
        # loopback (test_ip_ranges.py) and set the URL themselves.
        "NATMETER_IP_RANGES_URL": "",
    }
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env
