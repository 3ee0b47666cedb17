#!/usr/bin/env bash
# Fresh Debian machine (root) to a working result in one command: set the host up,
# start the embedded registry, then build, push and verify the offline profile's
# helper images (stand-in bases bootstrapped from Debian's archive).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
export PATH="$PWD/.venv/bin:$PATH"
config=config/offline.yaml
run() { printf '\n+ %s\n' "$*"; "$@"; }
run invoke registry-up
run invoke build-images --config "$config"
run invoke push-images --config "$config"
# F and no-F: proves the images run with either kind of host handler; restores the host's.
run invoke test-images --config "$config" --binfmt-mode both
run invoke report
