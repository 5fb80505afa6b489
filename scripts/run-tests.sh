#!/usr/bin/env bash
# Runs the whole suite. pytest's exit 5 (no tests collected) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "run-tests: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
