#!/usr/bin/env bash
# Make a Debian/Ubuntu host (as root) ready for xarch: install what is missing,
# start the Docker engine when none answers, mount binfmt_misc, and create the
# Python virtual environment in .venv (with --dev, also the test suite's tools).
# Idempotent: a second run changes nothing.
#
# It does NOT install qemu-user-static or binfmt-support: those register their own
# binfmt handlers system-wide. xarch fetches its pinned emulators itself.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
case "${1-}" in
  --dev) dev=1 ;;
  "") ;;
  *) echo "usage: $0 [--dev]   (--dev: also the test suite's tools, .[dev,bench])" >&2; exit 2 ;;
esac

say() { printf '== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (it installs packages and starts dockerd)" >&2
  exit 2
fi
if ! command -v apt-get >/dev/null; then
  echo "error: apt-get not found; xarch's setup supports Debian and Ubuntu hosts" >&2
  exit 2
fi

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in docker-registry mmdebstrap arch-test file apache2-utils ca-certificates git; do
  have_pkg "$pkg" || need+=("$pkg")
done
docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if ! docker_answers && ! command -v dockerd >/dev/null; then
  need+=(docker.io)
fi
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)

# apt-get download (the pinned emulator) needs package lists even when nothing is missing.
if [ ${#need[@]} -gt 0 ] || ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
  run apt-get update -q
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive run apt-get install -y -q --no-install-recommends "${need[@]}"
else
  say "system packages: all present"
fi

if docker_answers; then
  say "Docker engine: answering ($(docker version --format '{{.Server.Version}}'))"
else
  if [ -d /run/systemd/system ]; then
    run systemctl enable --now docker
  else
    say "starting dockerd in the background (no systemd here); log: /var/log/xarch-dockerd.log"
    nohup dockerd >/var/log/xarch-dockerd.log 2>&1 &
  fi
  for _ in $(seq 60); do docker_answers && break; sleep 1; done
  if ! docker_answers; then
    echo "error: dockerd did not come up; see /var/log/xarch-dockerd.log" >&2
    exit 1
  fi
  say "Docker engine: started ($(docker version --format '{{.Server.Version}}'))"
fi

if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  run mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || \
    say "warning: could not mount binfmt_misc; emulation will not work on this host"
fi

if [ ! -x .venv/bin/python ]; then
  run python3 -m venv .venv
fi
# xarch and what its tasks need; --dev adds the test suite's tools (linters, type
# checker, the bench's chart library), which the quick start does not need.
modules="xarch, docker, invoke, yaml, testinfra, xdist"
spec=.
marker=.venv/.xarch-installed
if [ "$dev" = 1 ]; then
  modules="$modules, ruff, mypy, matplotlib"
  spec='.[dev,bench]'
  marker=.venv/.xarch-installed-dev
fi
if ! .venv/bin/python -c "import $modules" 2>/dev/null || [ pyproject.toml -nt "$marker" ]; then
  run .venv/bin/pip install -q --disable-pip-version-check -e "$spec"
  touch "$marker" .venv/.xarch-installed  # the dev set includes the base set
else
  say "Python environment: .venv up to date"
fi
say "host ready"
