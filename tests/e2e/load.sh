#!/usr/bin/env bash
# The load test: 1,000 simulated events (~500 MB decoded) through the real bootstrap against
# LocalStack, back to back and with 4 concurrent bootstraps. Results: tests/e2e/out/load.json.
#   tests/e2e/load.sh [more pytest args]
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.sh" -m load -s "$@"
