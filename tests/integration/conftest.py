"""Fixtures for the integration tests."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from xarch import registry_server as rs
from xarch.registry_server import RegistryServer

# ---------------------------------------------------------------------------------------
# Embedded registry fixtures (xarch.registry_server): a real docker-registry process on
# a free 127.0.0.1 port with its state in a temporary directory, stopped and purged at
# the end of the session even when tests fail.
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _need_registry_binary() -> None:
    if shutil.which(rs.BINARY) is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class AuthRegistry:
    """An embedded registry that demands htpasswd (basic) auth."""

    server: RegistryServer
    user: str
    password: str

    @property
    def address(self) -> str:
        return self.server.address


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An embedded registry without auth, for the whole session."""
    _need_registry_binary()
    state = tmp_path_factory.mktemp("registry-state")
    server = rs.start(state, port=free_port(), log=_quiet)
    try:
        yield server
    finally:
        rs.stop(state, log=_quiet, purge=True)


@pytest.fixture(scope="session")
def auth_registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """An embedded registry with htpasswd auth and a generated user and password."""
    _need_registry_binary()
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
    state = tmp_path_factory.mktemp("auth-registry-state")
    user = f"xarch-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    htpasswd = rs.make_htpasswd(state / "htpasswd", user, password)
    server = rs.start(state, port=free_port(), htpasswd=htpasswd, log=_quiet)
    try:
        yield AuthRegistry(server=server, user=user, password=password)
    finally:
        rs.stop(state, log=_quiet, purge=True)


# ------------------------------ end of registry fixtures -------------------------------
