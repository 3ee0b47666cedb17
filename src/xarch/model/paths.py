"""Where xarch keeps things on the host.

The cache (emulators, bootstrapped root filesystems) survives clean clones, so a
second run on the same machine does not fetch or bootstrap again. Build output
(reports) lives under the project's ``build/``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XARCH_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "xarch"


def state_dir() -> Path:
    """Long-lived service state: the embedded registry's storage and pid file."""
    base = os.environ.get("XARCH_STATE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "xarch"


def build_dir() -> Path:
    return Path(os.environ.get("XARCH_BUILD_DIR", "build"))
