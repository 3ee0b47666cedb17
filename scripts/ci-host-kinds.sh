#!/usr/bin/env bash
# Issue 11: the host-emulation and provisioning tests again on the two other kinds of host
# xarch runs on, after the main suite ran on the host as it was:
#   1. a runner provisioned by `invoke provision-runner` (handlers installed and persisted);
#   2. a host with Debian's qemu-user-static and binfmt-support (their handlers, their
#      interpreter paths /usr/libexec/qemu-binfmt/..., their flags).
# Each pass restores what it changed, even when the tests fail: the handlers present before
# it (saved as registration lines) are put back and the extra ones removed, xarch's
# persisted files are deleted, and the Debian packages are purged if this script installed
# them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
config=config/offline.yaml
tests=(tests/integration/test_host_emulation.py tests/integration/test_pull_provision.py)
say() { printf '\n== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

snapshot=$(mktemp -d)
python scripts/binfmt-snapshot.py save "$snapshot/binfmt.json"
persist_before=$(ls /etc/binfmt.d 2>/dev/null || true)
debian_installed=""
restore() {
  local rc=$?
  say "restoring the host's binfmt_misc handlers and files"
  if [ -n "$debian_installed" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q qemu-user-static binfmt-support >/dev/null || true
  fi
  for f in /etc/binfmt.d/*; do
    [ -e "$f" ] || continue
    case " $persist_before " in *" $(basename "$f") "*) ;; *) rm -f "$f" ;; esac
  done
  python scripts/binfmt-snapshot.py restore "$snapshot/binfmt.json" || rc=1
  rm -rf "$snapshot"
  exit "$rc"
}
trap restore EXIT

say "host kind 2 of 3: a runner provisioned by xarch (handlers installed and persisted)"
run invoke provision-runner --config "$config"
run pytest -q -p no:cacheprovider "${tests[@]}"
python scripts/binfmt-snapshot.py restore "$snapshot/binfmt.json"
for f in /etc/binfmt.d/*; do
  [ -e "$f" ] || continue
  case " $persist_before " in *" $(basename "$f") "*) ;; *) rm -f "$f" ;; esac
done

say "host kind 3 of 3: Debian's qemu-user-static and binfmt-support"
if ! dpkg-query -W -f='${Status}' qemu-user-static 2>/dev/null | grep -q "install ok installed"; then
  DEBIAN_FRONTEND=noninteractive run apt-get install -y -q --no-install-recommends \
    qemu-user-static binfmt-support
  debian_installed=1
fi
run invoke binfmt-status --config "$config"
run pytest -q -p no:cacheprovider "${tests[@]}"
