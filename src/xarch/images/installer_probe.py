"""Which local image doctor starts for its container probes: the binfmt
installer's host-architecture variant (a static busybox), when it is built."""

from __future__ import annotations

from xarch.model.config import Config


def probe_image(config: Config) -> str | None:
    try:
        from xarch.images import installer
    except ImportError:
        return None
    finder = getattr(installer, "local_probe_image", None)
    if finder is None:
        return None
    ref = finder(config)
    return str(ref) if ref else None
