"""Debian's archive as it is (deb.debian.org, the one archive this machine reaches): a
pin the suite does not hold is the user's input to fix (exit 2, naming the pin and the
suite), found by apt itself before anything is built, and nothing is kept in the cache.
The real `apt-get update` and `apt-get download` through xarch's private configuration;
the host's apt sources are never touched. And the same archive as a mirror caught
mid-sync (its Packages indexes not matching its InRelease), served on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import REPO_ROOT
from xarch.errors import BadInput
from xarch.images import native
from xarch.images.standin import StandinSpec
from xarch.model.config import Accelerate, BootstrapBase, DebPin, load_config

INVOKE = str(Path(sys.executable).with_name("invoke"))

MIRROR = "http://deb.debian.org/debian"
SHA = "0" * 64


def accelerate(*packages: DebPin, suite: str = "bookworm") -> Accelerate:
    return Accelerate(
        enabled=True,
        toolchain="archive-fault",
        gcc_version="12.2.0",
        binutils_version="2.40",
        leaves=("cc1",),
        packages=packages,
        suite=suite,
        mirror=MIRROR,
        directory="",
    )


@pytest.fixture
def need_apt() -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not installed")


@pytest.mark.usefixtures("need_apt")
@pytest.mark.parametrize(
    ("pin", "says"),
    [
        (DebPin(package="zlib1g", version="1:0.0.0-1", sha256=SHA),
         "Version '1:0.0.0-1' for 'zlib1g' was not found"),
        (DebPin(package="xarch-no-such-package", version="1.0-1", sha256=SHA),
         "Unable to locate package xarch-no-such-package"),
        # bullseye's patchelf asked of bookworm alone: the entry needs its own suite.
        (DebPin(package="patchelf", version="0.12-1", sha256=SHA),
         "Version '0.12-1' for 'patchelf' was not found"),
    ],
)  # fmt: skip
def test_a_pin_the_suite_does_not_hold_is_bad_input_and_keeps_nothing(
    tmp_path: Path, pin: DebPin, says: str
) -> None:
    cache = tmp_path / "native"
    with pytest.raises(BadInput) as info:
        native.fetch_debs(accelerate(pin), cache, log=lambda _: None)
    text = str(info.value)
    assert info.value.exit_code == 2
    assert f"native toolchain archive-fault: {MIRROR} bookworm does not hold" in text
    assert says in text, text
    assert "hint: pin the version the suite holds" in text
    assert not list(cache.glob("*.deb"))


@pytest.mark.usefixtures("need_apt")
def test_a_package_from_another_suite_is_fetched_from_that_suite(tmp_path: Path) -> None:
    """bookworm's patchelf for a trixie toolchain (config/offline-native.yaml's riscv64
    target): both suites are in the private sources list, the pinned version is fetched
    and checked by its sha256."""
    pin = DebPin(
        package="patchelf",
        version="0.14.3-1+b1",
        sha256="0364b90e81faabbb9569076063952c7bcbf07f83d954a2f2602a163d65be60e6",
        suite="bookworm",
    )
    cache = tmp_path / "native"
    debs = native.fetch_debs(accelerate(pin, suite="trixie"), cache, log=lambda _: None)
    assert debs == {"patchelf": cache / "patchelf_0.14.3-1+b1_amd64.deb"}
    sources = (cache / "apt" / "etc" / "sources.list").read_text().splitlines()
    assert sources == [f"deb {MIRROR} trixie main", f"deb {MIRROR} bookworm main"]


# ------------------------------------------------------------------ a mirror mid-sync


class MidSyncMirror:
    """deb.debian.org behind 127.0.0.1, as a mirror caught mid-sync: the signed
    InRelease is passed as it is, every Packages index (by name or by hash) comes with
    one byte changed, so apt finds it does not match what InRelease says."""

    def __init__(self) -> None:
        self.served: list[str] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                try:
                    with urllib.request.urlopen(UPSTREAM + self.path, timeout=60) as r:
                        body = r.read()
                        status = r.status
                except urllib.error.HTTPError as e:
                    body, status = e.read(), e.code
                if status == 200 and re.search(r"/(Packages[^/]*|by-hash/[^/]+/[0-9a-f]+)$",
                                               self.path):  # fmt: skip
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                    mirror.served.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/debian"

    def __enter__(self) -> MidSyncMirror:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


UPSTREAM = "http://deb.debian.org"
AARCH64 = "standin-manylinux2014_aarch64"


@pytest.mark.docker
@pytest.mark.binfmt
@pytest.mark.emulation
def test_a_mirror_mid_sync_is_retried_then_named_and_leaves_no_rootfs(tmp_path: Path) -> None:
    """build-images of the aarch64 stand-in from a mirror whose Packages indexes do not
    match its InRelease (what apt sees while a mirror syncs): mmdebstrap is run three
    times, 20 s apart, saying why, then exit 1 with apt's own words; no root filesystem
    and no work directory are left in the cache."""
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is not installed")
    with MidSyncMirror() as mirror:
        doc = yaml.safe_load((REPO_ROOT / "config" / "offline.yaml").read_text())
        doc["targets"] = [t for t in doc["targets"] if t["name"] == AARCH64]
        doc["targets"][0]["base"]["bootstrap"]["mirror"] = mirror.url
        doc.pop("installer", None)
        cfg = tmp_path / "mid-sync.yaml"
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
        [target] = load_config(cfg).select([AARCH64])
        assert isinstance(target.base, BootstrapBase)
        rootfs = StandinSpec(base=target.base, arch=target.arch).rootfs_path
        done = subprocess.run(
            [INVOKE, "build-images", "--config", str(cfg), "--target", AARCH64],
            cwd=REPO_ROOT,
            env={**os.environ, "XARCH_BUILD_DIR": str(tmp_path / "build")},
            capture_output=True,
            text=True,
            timeout=900,
        )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert mirror.served, "apt fetched no Packages index through the mirror"
    assert "mirror sync?); retrying in 20 s (attempt 2/3)" in out, out[-3000:]
    assert "(attempt 3/3)" in out, out[-3000:]
    assert "Hash Sum mismatch" in out or "unexpected size" in out, out[-3000:]
    assert "mmdebstrap failed" in out and "Traceback" not in out
    assert not rootfs.exists()
    assert not list(rootfs.parent.glob(".work-*")), "a work directory was left"
