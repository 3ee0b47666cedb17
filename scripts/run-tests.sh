#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests (real Docker engine,
# real registry, real binfmt_misc). Needs root and a host set up by setup-host.sh
# (it runs it first; that is quick when nothing is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh --dev >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
printf '+ ruff check\n'; ruff check src tests tasks.py scripts/binfmt-snapshot.py scripts/wheel-timeline.py
printf '+ ruff format --check\n'; ruff format --check src tests tasks.py scripts/binfmt-snapshot.py scripts/wheel-timeline.py
printf '+ mypy --strict\n'; mypy
printf '+ pytest\n'; exec pytest --durations=25 "$@"
