#!/usr/bin/env bash
# Terraform checks of infra/ (tests/infra): python-hcl2 parsing and evaluation,
# the contract with `natmeter metrics --json`, the dashboard's limits, and
# checkov. No terraform binary is needed.
#
#   tests/infra/run.sh [pytest args]
#   tests/infra/run.sh --setup-only     only create/update the venvs
#
# Creates .venv-infra (python-hcl2 + pytest) and .venv-infra/checkov (checkov,
# kept apart because it pins bc-python-hcl2, which installs a package named
# `hcl2` too) with the default python3, reinstalling only when a requirements
# file changed. The contract tests run target/debug/natmeter (or $NATMETER_BIN):
# build it first (`cargo build`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-infra"
python="${PYTHON:-python3}"

# ensure_venv DIR REQUIREMENTS: a virtualenv at DIR holding exactly what
# REQUIREMENTS pins; a stamp with the file's hash skips pip when nothing changed.
ensure_venv() {
    local dir="$1" req="$2" stamp="$1/.requirements.sha256" want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    echo "tests/infra: installing $(basename "$req") into ${dir#"$root"/}" >&2
    [[ -x "$dir/bin/python" ]] || "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
    echo "$want" >"$stamp"
}

ensure_venv "$venv" "$here/requirements.txt"
ensure_venv "$venv/checkov" "$here/requirements-checkov.txt"
if [[ "${1:-}" == "--setup-only" ]]; then
    exit 0
fi

cd "$root"
export NATMETER_CHECKOV="${NATMETER_CHECKOV:-$venv/checkov/bin/checkov}"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/infra "$@"
