"""checkov over infra/: no failed check, no parsing error, and every skip is a
`#checkov:skip=ID:reason` in the code (checked for a real reason in
test_tf_static.test_checkov_skips_carry_reasons).

checkov runs in its own virtualenv (.venv-infra/checkov, made by run.sh): it
pins bc-python-hcl2, which installs a package named `hcl2` too and would
clobber python-hcl2 in a shared environment. --skip-download keeps it from
calling the Prisma Cloud API; where the kernel allows, it also runs in a
network namespace of its own, without any network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tfsupport import INFRA, REPO


def checkov_bin() -> Path:
    return Path(os.environ.get("NATMETER_CHECKOV") or REPO / ".venv-infra" / "checkov" / "bin" / "checkov")


def no_network_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    binary = checkov_bin()
    if not binary.is_file():
        pytest.fail(f"checkov is missing at {binary}: run tests/infra/run.sh (or set NATMETER_CHECKOV)", pytrace=False)
    cmd = no_network_prefix() + [
        str(binary), "--directory", str(INFRA), "--framework", "terraform",
        "--skip-download", "--output", "json", "--compact",
    ]
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    if proc.returncode not in (0, 1):  # 1: checks failed, reported below
        pytest.fail(f"checkov exited {proc.returncode}: {proc.stderr[-3000:]}", pytrace=False)
    report = json.loads(proc.stdout)
    if isinstance(report, list):
        (report,) = [r for r in report if r.get("check_type") == "terraform"]
    return report


def test_no_failed_checks(checkov_report):
    failed = checkov_report["results"].get("failed_checks", [])
    lines = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}): {c['check_name']}" for c in failed]
    assert not failed, "checkov failed checks:\n" + "\n".join(lines)


def test_no_parsing_errors_and_real_coverage(checkov_report):
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["passed"] >= 40, f"checkov checked suspiciously little: {summary}"
    assert summary["resource_count"] >= 20, summary


def test_every_skip_has_a_reason(checkov_report):
    for c in checkov_report["results"].get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) >= 40, f"{c['check_id']} on {c['resource']} is skipped without a real reason: {reason!r}"
