"""The network as a runner's host breaks it (issue 18), for real: pip fetching the
stand-in's pinned wheels from an index whose name does not resolve (the reserved
`.invalid` top-level domain, RFC 2606), and from an HTTPS index whose certificate this
host does not trust (a server on 127.0.0.1 with a certificate made for the test). Each
failure is named with the host, nothing is published in the cache.

    pytest tests/integration/test_network_faults.py
"""

from __future__ import annotations

import http.server
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_disk_faults import _spec
from xarch.errors import FetchError
from xarch.images.standin import python_wheels


@pytest.fixture
def pip_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip with no configuration of this host's (its config files, find-links, CA
    bundle), an empty xarch cache, one retry."""
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_RETRIES", "1")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "10")
    cache = tmp_path / "cache"
    monkeypatch.setenv("XARCH_CACHE_DIR", str(cache))
    return cache


def _wheels(cache: Path) -> list[Path]:
    return list(cache.rglob("*.whl")) if cache.exists() else []


def test_an_index_whose_name_does_not_resolve_is_named(
    pip_alone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://xarch-no-such-host.invalid/simple")
    with pytest.raises(FetchError) as e:
        python_wheels(_spec(), lambda _: None)
    said = str(e.value)
    assert "the name xarch-no-such-host.invalid does not resolve" in said, said
    assert _wheels(pip_alone) == []


@pytest.fixture
def untrusted_https(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 whose certificate (made here) nobody trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def test_an_index_whose_certificate_is_not_trusted_is_named(
    pip_alone: Path, untrusted_https: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", untrusted_https)
    with pytest.raises(FetchError) as e:
        python_wheels(_spec(), lambda _: None)
    said = str(e.value)
    assert "the TLS certificate of 127.0.0.1 is not trusted here" in said, said
    assert "--ca-bundle" in said
    assert _wheels(pip_alone) == []
