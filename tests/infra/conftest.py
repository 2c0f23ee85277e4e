"""Fixtures of the Terraform checks (tests/infra): the parsed module, the
scenarios it is evaluated in, and the metric model printed by the natmeter
binary. Shared helpers are in tfsupport.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tfeval  # noqa: E402
from tfsupport import MODULE, SCENARIOS, evaluator, natmeter_bin, natmeter_env  # noqa: E402


@pytest.fixture(scope="session")
def module_config() -> tfeval.Config:
    return tfeval.load_config(MODULE)


@pytest.fixture(params=sorted(SCENARIOS), scope="session")
def scenario(request) -> tuple[str, tfeval.Evaluator]:
    return request.param, evaluator(SCENARIOS[request.param])


@pytest.fixture(scope="session")
def metric_model() -> dict:
    """The metric model as the Rust code declares it (`natmeter metrics --json`).

    The contract tests compare the module against this, never against a list kept
    by hand. A missing binary is a failure, not a skip: without it nothing here
    is checked.
    """
    binary = natmeter_bin()
    if not binary.is_file():
        pytest.fail(
            f"the natmeter binary is missing at {binary}: build it (`cargo build`) or set "
            "NATMETER_BIN to a natmeter executable. The contract tests need `natmeter metrics --json`.",
            pytrace=False,
        )
    proc = subprocess.run(
        [str(binary), "metrics", "--json"], capture_output=True, text=True, timeout=60, env=natmeter_env()
    )
    if proc.returncode != 0:
        pytest.fail(
            f"`{binary} metrics --json` exited {proc.returncode}: {proc.stderr.strip()[:2000]}",
            pytrace=False,
        )
    try:
        model = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"`{binary} metrics --json` did not print JSON ({e}): {proc.stdout[:500]!r}", pytrace=False)
    if model.get("schema") != "natmeter.metrics/v1":
        pytest.fail(f"unexpected metric model schema {model.get('schema')!r}, expected natmeter.metrics/v1", pytrace=False)
    return model
