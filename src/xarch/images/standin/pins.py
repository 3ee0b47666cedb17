"""What stand-ins build from source, pinned: the CPython tarball, and Debian's x86_64 cross
toolchains and build Python that build it (xarch.images.standin.interpreters). Part of
the root filesystem's key."""

from __future__ import annotations

from dataclasses import dataclass

from xarch.model.config import DebPin


@dataclass(frozen=True, kw_only=True)
class PythonSource:
    """A CPython source tarball in Debian's pool, by exact name and sha256."""

    version: str
    pool: str  # path under the mirror
    sha256: str

    @property
    def filename(self) -> str:
        return self.pool.rsplit("/", 1)[1]


CP39_SOURCE = PythonSource(
    version="3.9.2",
    pool="pool/main/p/python3.9/python3.9_3.9.2.orig.tar.xz",
    # = python.org's Python-3.9.2.tar.xz; Debian's bullseye python3.9_3.9.2-1.dsc lists it
    sha256="3c2034c54f811448f516668dce09d24008a0716c3a794dd8639b5388cbde247d",
)

#: The build Python the cross build runs (setup.py, the sysconfig data, byte-compiling):
#: Debian bullseye's own x86_64 python3.9, the same 3.9.2 release as CP39_SOURCE, its
#: .debs unpacked, not installed (xarch.images.standin.interpreters.build_python). The
#: cross build puts the source's own Lib first on its path, so what it needs of these is
#: the interpreter and its built-in modules. The bullseye Packages' sha256.
BUILD_PYTHON_DEBS = (
    DebPin(
        package="python3.9-minimal",
        version="3.9.2-1",
        sha256="5d6003c5c20223a2547ac4976e09a9ec778dbe351507a6292bef3b60df5f4aa7",
        suite="bullseye",
    ),
    DebPin(
        package="libpython3.9-minimal",
        version="3.9.2-1",
        sha256="594283526d67e03e3c4e96534f6bfe5da1bf41da5d49360553c9b79fbf08c4ab",
        suite="bullseye",
    ),
    DebPin(
        package="libpython3.9-stdlib",
        version="3.9.2-1",
        sha256="32ac64d959ac2dbc5bb289532fc9834dab8f671b5455695a3a9315aad973c65b",
        suite="bullseye",
    ),
)

_LIBS_BOOKWORM = (
    DebPin(
        package="libbinutils",
        version="2.40-2",
        sha256="fcf55b99e5f8a78f3c8ce9b6957f1024f394cf20c196b100d308a57e43547710",
    ),
    DebPin(
        package="libisl23",
        version="0.25-1.1",
        sha256="ebff0b2f8b220c74224197523019366e97ee4770d464bebc48e4865114e4da0e",
    ),
    DebPin(
        package="libmpc3",
        version="1.3.1-1",
        sha256="d7f79544790e44f9b0c8cb9034a18c58d37f8702a15f32539050718679e52f80",
    ),
    DebPin(
        package="libmpfr6",
        version="4.2.0-1",
        sha256="37b7a2b4e78890b6a074777f27b96c84f58e81558ba08410c2b6c0ca4a4ad77b",
    ),
    DebPin(
        package="libgmp10",
        version="2:6.2.1+dfsg1-1.1",
        sha256="187aedef2ed763f425c1e523753b9719677633c7eede660401739e9c893482bd",
    ),
    DebPin(
        package="libzstd1",
        version="1.5.4+dfsg2-5",
        sha256="6315b5ac38b724a710fb96bf1042019398cb656718b1522279a5185ed39318fa",
    ),
    DebPin(
        package="libjansson4",
        version="2.14-2",
        sha256="3fc9742f9f1a37bcb9931df6074b4d1483419ef832ad5349f47323e75fc27864",
    ),
)


def _cross(triplet: str, cpp: str, gcc: str, binutils: str) -> tuple[DebPin, ...]:
    return (
        DebPin(package=f"cpp-12-{triplet}", version="12.2.0-14cross1", sha256=cpp),
        DebPin(package=f"gcc-12-{triplet}", version="12.2.0-14cross1", sha256=gcc),
        DebPin(package=f"binutils-{triplet}", version="2.40-2", sha256=binutils),
        *_LIBS_BOOKWORM,
    )


# trixie's cross tools need glibc 2.38 or newer (libc6 (>= 2.38) in their Depends), more
# than a bookworm host has: the tree carries trixie's own libc6 and the C++ runtime, and
# build-cpython.sh runs every tool through the tree's dynamic loader.
_LIBS_TRIXIE = (
    DebPin(
        package="libc6",
        version="2.41-12+deb13u5",
        sha256="b59b0625cd1a791375d40dab23a4d5d3d0641e3d0a773501becdc3725b7f99cf",
    ),
    DebPin(
        package="libgcc-s1",
        version="14.2.0-19",
        sha256="3c71917b490d1a17aed43196a2787a256ecf060526cdb20216a74bedc061b150",
    ),
    DebPin(
        package="libstdc++6",
        version="14.2.0-19",
        sha256="ab1fa05837aa7a92aae748fd07a18a35f7d18bb4a71c4724fe2bbf0e32089de0",
    ),
    DebPin(
        package="libgmp10",
        version="2:6.3.0+dfsg-3",
        sha256="d0d0265eb01770f17afd0f7c8c0622f80479dcfbbe13653a0debeec61464e622",
    ),
    DebPin(
        package="libisl23",
        version="0.27-1",
        sha256="ac8518042e81c00de1effb72bba7e88ac4ecd488f7ea8b9e3ebc63159cb53b35",
    ),
    DebPin(
        package="libmpc3",
        version="1.3.1-1+b3",
        sha256="2af0a5c128e03694a41c0b011bd8a958b7297436cdb3a15ddad7866dae8c300b",
    ),
    DebPin(
        package="libmpfr6",
        version="4.2.2-1",
        sha256="75dddce11dabc7fc543712c33dc27b7f2ee66a111763eb5eac654d010b42cd92",
    ),
    DebPin(
        package="libzstd1",
        version="1.5.7+dfsg-1",
        sha256="2f6a2aeacfc925eba8b00ac9139bc4bfccf8cacb09eb93de067074b26948eef9",
    ),
    DebPin(
        package="zlib1g",
        version="1:1.3.dfsg+really1.3.1-1+deb13u1",
        sha256="8c27c342230503b73dfde629642c3b352e87b554e06d60cf58772f236a305ceb",
    ),
    DebPin(
        package="libjansson4",
        version="2.14-2+b3",
        sha256="60707a62fe6c1228c3389b12a13ca4efd76defc5532473e547a29e99cf7d2a6e",
    ),
    DebPin(
        package="libsframe1",
        version="2.44-3",
        sha256="38f625dfdc582717029ac3a3e97c51d994ec2e7a0e9b230c6b44e40d1276311f",
    ),
)


#: (suite, Debian architecture) -> Debian's amd64 cross toolchain of exactly the suite's
#: gcc and binutils (bookworm: 12.2.0 and 2.40; trixie: 14.2.0 and 2.44): the .debs by
#: version and sha256 (the suite's Packages).
CROSS_TOOLCHAINS: dict[tuple[str, str], tuple[DebPin, ...]] = {
    ("bookworm", "ppc64el"): _cross(
        "powerpc64le-linux-gnu",
        cpp="824af477ca85844e4fe27e190138bc92cb334da724441b0497b55e13475a7f88",
        gcc="7c070446a011b4af41dc0b63f34ed315312092cdd46381f3c5fb6cb29a10f969",
        binutils="86ee9063c65141841d8a15f961bd5e2e6a969003edff1123e1730310f65c6597",
    ),
    ("bookworm", "s390x"): _cross(
        "s390x-linux-gnu",
        cpp="b312f2b349cf2f56ea791f9ba2bd19871a632b272d06a038f19fd46d1b740362",
        gcc="1cecccae127822bad6104b1c9567605d63f01f582b2b435f0e912762a10cd5dd",
        binutils="9c7737cab7d917581cf0bc875e7f360cdd40a6fa172376bea3a6911950fda599",
    ),
    ("trixie", "riscv64"): (
        DebPin(
            package="cpp-14-riscv64-linux-gnu",
            version="14.2.0-19cross1",
            sha256="7b188d1754125dbb1553c50a7419bbb88da689a26858f517ba38c3cfbef7e9cb",
        ),
        DebPin(
            package="gcc-14-riscv64-linux-gnu",
            version="14.2.0-19cross1",
            sha256="fca814820c63cd7cc7ffe6a4c63e0b4dd677028a23e1584e1eecc2e08dbfa394",
        ),
        DebPin(
            package="binutils-riscv64-linux-gnu",
            version="2.44-3",
            sha256="a7e5304f538357983164454ae2ccc7b9bfb8023f54ec6be4e682c6d8067f76ab",
        ),
        *_LIBS_TRIXIE,
    ),
}


def cp39_inputs(suite: str, debian_arch: str) -> dict[str, object]:
    """What a built cp39 is made of, for the root filesystem's key."""
    pins = CROSS_TOOLCHAINS.get((suite, debian_arch), ())
    return {
        "source": [CP39_SOURCE.pool, CP39_SOURCE.sha256],
        "toolchain": [[p.package, p.version, p.sha256] for p in pins],
        "build-python": [[p.package, p.version, p.sha256] for p in BUILD_PYTHON_DEBS],
    }
