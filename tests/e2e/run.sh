#!/usr/bin/env bash
# End-to-end tests: LocalStack (CloudWatch) on the host + the real `bootstrap` through the Lambda
# Runtime API + `natmeter simulate` ground truth.
#
#   tests/e2e/run.sh [test files] [pytest args...]   e.g. tests/e2e/run.sh -k emf -s
#   tests/e2e/run.sh --setup-only          only create/update the venv
#
# Env: NATMETER_BIN (default target/debug/natmeter), BOOTSTRAP_BIN (default target/debug/bootstrap),
#      NATMETER_E2E_VENV (default <repo>/.venv), PYTHON313 (a Python >= 3.13 interpreter to use),
#      NATMETER_E2E_MOTO_VENV (default <venv>-moto: moto's server, the DynamoDB emulator, in a venv
#      of its own because localstack-core's moto-ext ships the same `moto` package).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
REQ="tests/e2e/requirements.txt"
VENV="${NATMETER_E2E_VENV:-$ROOT/.venv}"
MOTO_REQ="tests/e2e/requirements-moto.txt"
MOTO_VENV="${NATMETER_E2E_MOTO_VENV:-$VENV-moto}"

die() { echo "tests/e2e/run.sh: $*" >&2; exit 2; }

is_py313() {  # is "$1" a Python >= 3.13?
  [ -x "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null
}

find_python313() {
  local c p
  if [ -n "${PYTHON313:-}" ]; then
    is_py313 "$PYTHON313" && { echo "$PYTHON313"; return; }
    die "PYTHON313=$PYTHON313 is not a Python >= 3.13 interpreter"
  fi
  if command -v pyenv >/dev/null 2>&1; then
    p="$(pyenv prefix 3.13.0 2>/dev/null || true)"
    [ -n "$p" ] && is_py313 "$p/bin/python3" && { echo "$p/bin/python3"; return; }
  fi
  # newest 3.13.x first among pyenv's versions
  for c in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13* 2>/dev/null | sort -rV); do
    is_py313 "$c/bin/python3" && { echo "$c/bin/python3"; return; }
  done
  for c in python3.13 python3; do
    p="$(command -v "$c" 2>/dev/null || true)"
    [ -n "$p" ] && is_py313 "$p" && { echo "$p"; return; }
  done
  die "no Python >= 3.13 found (LocalStack needs 3.13-only APIs; under 3.11/3.12 it reports 'No component
plugins found'). Looked at: \$PYTHON313, 'pyenv prefix 3.13.0', ${PYENV_ROOT:-$HOME/.pyenv}/versions/3.13*,
python3.13 and python3 on PATH. Install one (e.g. 'pyenv install 3.13.0') or set PYTHON313."
}

setup_venv() {
  local want stamp
  want="$( (cat "$REQ"; echo "python-major-minor=3.13") | sha256sum | cut -d' ' -f1)"
  stamp="$VENV/.natmeter-e2e-stamp"
  if [ -x "$VENV/bin/python" ] && is_py313 "$VENV/bin/python" && [ -f "$stamp" ] \
      && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local py t0
  py="$(find_python313)"
  t0=$(date +%s)
  if ! { [ -x "$VENV/bin/python" ] && is_py313 "$VENV/bin/python"; }; then
    echo "tests/e2e/run.sh: creating $VENV with $py ($("$py" --version 2>&1))" >&2
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
  fi
  rm -f "$stamp"
  echo "tests/e2e/run.sh: installing $REQ into $VENV (first time: about a minute, ~500 MB)" >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
  "$VENV/bin/python" -c 'import localstack.runtime.main, boto3, pytest' \
    || die "the venv at $VENV installed but cannot import localstack/boto3/pytest"
  echo "$want" > "$stamp"
  echo "tests/e2e/run.sh: venv ready in $(( $(date +%s) - t0 )) s" >&2
}

# moto's server (the DynamoDB emulator of test_inventory.py) in a venv of its own: the same
# interpreter finder, a stamp keyed on its requirements file.
setup_moto_venv() {
  local want stamp
  want="$( (cat "$MOTO_REQ"; echo "python-major-minor=3.13") | sha256sum | cut -d' ' -f1)"
  stamp="$MOTO_VENV/.natmeter-e2e-stamp"
  if [ -x "$MOTO_VENV/bin/python" ] && is_py313 "$MOTO_VENV/bin/python" && [ -f "$stamp" ] \
      && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local py t0
  py="$(find_python313)"
  t0=$(date +%s)
  if ! { [ -x "$MOTO_VENV/bin/python" ] && is_py313 "$MOTO_VENV/bin/python"; }; then
    echo "tests/e2e/run.sh: creating $MOTO_VENV with $py ($("$py" --version 2>&1))" >&2
    rm -rf "$MOTO_VENV"
    "$py" -m venv "$MOTO_VENV"
  fi
  rm -f "$stamp"
  echo "tests/e2e/run.sh: installing $MOTO_REQ into $MOTO_VENV (first time: under a minute, ~125 MB)" >&2
  "$MOTO_VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$MOTO_REQ"
  "$MOTO_VENV/bin/python" -c 'import moto.server, moto.dynamodb, flask, flask_cors' \
    || die "the venv at $MOTO_VENV installed but cannot import moto.server/moto.dynamodb/flask"
  echo "$want" > "$stamp"
  echo "tests/e2e/run.sh: moto venv ready in $(( $(date +%s) - t0 )) s" >&2
}

if [ "${1:-}" = "--setup-only" ]; then
  setup_venv
  setup_moto_venv
  exit 0
fi

setup_venv
setup_moto_venv
export NATMETER_E2E_MOTO_VENV="$MOTO_VENV"

abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
NATMETER_BIN="$(abs "${NATMETER_BIN:-target/debug/natmeter}")"
BOOTSTRAP_BIN="$(abs "${BOOTSTRAP_BIN:-target/debug/bootstrap}")"
missing=""
[ -x "$NATMETER_BIN" ] || missing="$missing\n  NATMETER_BIN=$NATMETER_BIN (the CLI)"
[ -x "$BOOTSTRAP_BIN" ] || missing="$missing\n  BOOTSTRAP_BIN=$BOOTSTRAP_BIN (the Lambda binary)"
if [ -n "$missing" ]; then
  printf 'tests/e2e/run.sh: binaries missing or not executable:%b\nBuild them first (cargo build), or point NATMETER_BIN / BOOTSTRAP_BIN at them.\n' "$missing" >&2
  exit 2
fi
export NATMETER_BIN BOOTSTRAP_BIN

# Test files given first (tests/e2e/run.sh tests/e2e/test_x.py -k y) narrow the run; otherwise
# every test under tests/e2e runs.
paths=()
while [ $# -gt 0 ] && [ -e "${1%%::*}" ]; do paths+=("$1"); shift; done
[ ${#paths[@]} -gt 0 ] || paths=(tests/e2e)
exec "$VENV/bin/python" -m pytest -q "${paths[@]}" "$@"
