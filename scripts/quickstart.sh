#!/usr/bin/env bash
# Fresh Debian machine (root) to a working result in one command: set the host up,
# start the embedded registry, then build, push and verify the offline profile's
# helper images (stand-in bases bootstrapped from Debian's archive), and build, repair
# and test a sample C extension's wheel in them with cibuildwheel.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
export PATH="$PWD/.venv/bin:$PATH"
config=config/offline.yaml
run() { printf '\n+ %s\n' "$*"; "$@"; }
run invoke registry-up
run invoke build-images --config "$config"
run invoke push-images --config "$config"
# Under a temporary flag-F handler per architecture (the host's are restored after); the
# suite runs the same checks under no-F handlers too (--binfmt-mode both).
run invoke test-images --config "$config" --binfmt-mode F
# What the images are for: cibuildwheel, unchanged, builds the sample C extension in the
# pushed helper images, repairs it with auditwheel under the image's policy, installs it
# and runs its tests there (the profile's two stand-ins, aarch64 and armv7l: Debian
# bullseye, with its CPython 3.9; ppc64le and s390x, whose stand-ins build CPython 3.9
# from source, are config/offline-emulated.yaml's, which the test suite builds).
# The kernel must hand their binaries to QEMU while cibuildwheel runs: register the
# pinned emulators (unchanged when they already are; `invoke binfmt-uninstall` undoes it).
# pip in the image reaches PyPI through this host's trust store (a TLS-intercepting
# proxy's CA lives there): XARCH_CA_BUNDLE names another bundle, XARCH_CA_BUNDLE= none.
run invoke binfmt-install --config "$config" --arch aarch64 --arch armv7l
ca=()
bundle=${XARCH_CA_BUNDLE-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
if [ -n "$bundle" ] && [ -f "$bundle" ]; then ca=(--ca-bundle "$bundle"); fi
run invoke wheels --config "$config" --target standin-manylinux2014_aarch64 \
  --target standin-manylinux_2_31_armv7l \
  --project tests/e2e/projects/cext --output build/quickstart-wheels --jobs 2 "${ca[@]}"
run invoke report
