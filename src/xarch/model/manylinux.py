"""manylinux policy names (PEP 600) and the glibc each stands for."""

from __future__ import annotations

import re

#: The legacy names and the glibc (major, minor) each is an alias of.
LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def glibc_of(name: str) -> tuple[int, int] | None:
    """The glibc a manylinux policy or platform-tag head names (``manylinux_2_31``,
    ``manylinux2014``) as (major, minor); None for any other name."""
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)", name)
    return (int(m[1]), int(m[2])) if m else LEGACY.get(name)
