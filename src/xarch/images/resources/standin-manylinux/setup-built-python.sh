#!/bin/sh
# Runs inside the new root (under emulation) after build-cpython.sh: pip from its own
# wheel installs pip, build and their dependencies into the CPython built from source,
# offline, from the pinned wheels setup-standin.sh uses. xarch STAND-IN, not manylinux.
set -eu
stage=/tmp/xarch-standin
prefix=/opt/python/cp39-cp39
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
pipwhl=$(ls "$stage"/wheels/pip-*.whl)
"$prefix/bin/python" "$pipwhl/pip" install --no-index --find-links "$stage/wheels" \
  --require-hashes --no-deps --no-warn-script-location -r "$stage/requirements-python.txt"
"$prefix/bin/python" -m pip check
printf 'interpreter: %s (CPython %s built from source by xarch)\n' "$prefix" \
  "$("$prefix/bin/python" -c 'import platform; print(platform.python_version())')" >>/etc/xarch-standin
