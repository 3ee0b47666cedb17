"""Faults of the host itself, recognised in any tool's words (issue 18, item 4).

apt, pip, the registry client and the Docker engine each have their own advice for
their own failures ("run apt-get update", "log in first", ...). When the real cause is
the host (a full disk, a read-only file system, a permission error, a name that does
not resolve, a proxy that refuses, a TLS certificate that is not trusted) that advice
sends the user the wrong way. Each classifier asks :func:`recognise` first and, when it
answers, says that instead, with the path or host involved.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True, kw_only=True)
class HostFault:
    kind: str  # disk-full, read-only, permission, dns, proxy, tls
    advice: str  # one line for the user: what it is, where, what to do

    def __str__(self) -> str:
        return self.advice


_I = re.IGNORECASE
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("disk-full", re.compile(r"no space left on device|\bENOSPC\b|errno 28\b|\(28: ", _I)),
    ("read-only", re.compile(r"read-only file system|\bEROFS\b|errno 30\b|\(30: ", _I)),
    (
        "tls",
        re.compile(
            r"certificate verify failed|CERTIFICATE_VERIFY_FAILED|x509: |self[- ]signed "
            r"certificate|unable to get local issuer certificate|tls handshake|SSLError",
            _I,
        ),
    ),
    (
        "proxy",
        re.compile(
            r"ProxyError|proxy error|407 Proxy|Tunnel connection failed|unable to connect to "
            r"proxy|proxyconnect",
            _I,
        ),
    ),
    (
        "dns",
        re.compile(
            r"temporary failure in name resolution|temporary failure resolving|could not "
            r"resolve( host)?|name or service "
            r"not known|no such host|Name does not resolve|getaddrinfo failed|NameResolutionError",
            _I,
        ),
    ),
    ("permission", re.compile(r"permission denied|\bEACCES\b|errno 13\b|\(13: ", _I)),
)
# A path the tool printed with the error: "[Errno 28] No space left on device: '/x/y'",
# "open /var/lib/docker/...: no space left on device", "write /x: read-only file system".
_PATH = re.compile(
    r"(?:\[Errno \d+\][^:]*: |(?:open|write|mkdir|create|rename) )['\"]?(/[^'\"\s:]+)"
)
_DEST = re.compile(r"\] [^\n]*?['\"] -> ['\"](/[^'\"\s:]+)")
_HOST = re.compile(r"(?:https?://|host[= ]['\"]?)([A-Za-z0-9.-]+\.[A-Za-z]{2,}|\d+(?:\.\d+){3})")


def recognise(text: str, *, path: str | None = None, host: str | None = None) -> HostFault | None:
    """The host fault ``text`` shows (the first rule that matches), with advice naming
    the path or host involved: the one the text names, else the caller's; None when the
    text shows none (the tool's own advice then stands)."""
    for kind, rule in _RULES:
        if rule.search(text):
            # a copy's error names both files ("src' -> 'dst'"): the destination is where
            # the disk is full or read-only
            where_path = _first(_DEST, text) or _first(_PATH, text) or path
            where_host = _first(_HOST, text) or host
            return HostFault(kind=kind, advice=_advice(kind, where_path, where_host))
    return None


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    return m.group(1) if m else None


def _existing(path: str | None) -> str:
    """The nearest directory of ``path`` that exists (a failed write's temporary file is
    gone by the time the message is read: `df` wants what is there)."""
    if not path:
        return "."
    p = Path(path)
    while not p.exists() and p.parent != p:
        p = p.parent
    return str(p)


def _advice(kind: str, path: str | None, host: str | None) -> str:
    at = f" under {path}" if path else ""
    to = f" {host}" if host else " the server"
    if kind == "disk-full":
        return (
            f"the disk is full{at}: free space there (`df -h {_existing(path)}`) or point "
            "xarch elsewhere (XARCH_CACHE_DIR, XARCH_BUILD_DIR, the engine's data-root), "
            "then run again"
        )
    if kind == "read-only":
        return (
            f"the file system{at} is read-only: remount it read-write or point xarch at a "
            "writable directory (XARCH_CACHE_DIR, XARCH_BUILD_DIR), then run again"
        )
    if kind == "permission":
        return (
            f"permission denied{at}: run as a user who may write there (xarch's host tasks "
            "need root), or point xarch at a directory of yours"
        )
    if kind == "dns":
        name = f"the name {host}" if host else "a host name"
        return (
            f"{name} does not resolve: check this host's DNS (/etc/resolv.conf) and "
            "network, then run again"
        )
    if kind == "proxy":
        return (
            f"the proxy refused or failed the connection to{to}: check HTTPS_PROXY / "
            "HTTP_PROXY / NO_PROXY and the proxy itself, then run again"
        )
    return (
        f"the TLS certificate of{to} is not trusted here: a TLS-intercepting proxy's CA "
        "must be in the trust store the tool uses (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, "
        "PIP_CERT; for builds in images, --ca-bundle / XARCH_CA_BUNDLE)"
    )


#: PyPI's simple index: where pip looks without PIP_INDEX_URL.
PYPI_SIMPLE = "https://pypi.org/simple"


def pip_index_url(environ: Mapping[str, str] | None = None) -> str:
    """The index pip asks for packages: PIP_INDEX_URL, else PyPI's."""
    return (environ if environ is not None else os.environ).get("PIP_INDEX_URL", PYPI_SIMPLE)


def pip_index_host(environ: Mapping[str, str] | None = None) -> str:
    """The host of that index (pip's own words on a failed connection name the path,
    not the host)."""
    return urlsplit(pip_index_url(environ)).hostname or "pypi.org"
