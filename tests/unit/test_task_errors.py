"""The one error handler of every task (cli.tasks.user_errors): an XarchError is its
message and exit code, a stray OSError a clean message and exit 1, anything else one
line saying it is a bug (the traceback only with XARCH_DEBUG=1)."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from invoke.exceptions import Exit

from xarch.cli.tasks import user_errors
from xarch.errors import BadInput, RegistryError


def raising(exc: BaseException) -> Callable[[], None]:
    @user_errors
    def task_body() -> None:
        raise exc

    return task_body


@pytest.mark.parametrize(("exc", "code"), [(BadInput("bad"), 2), (RegistryError("down"), 1)])
def test_xarch_errors_keep_their_exit_code(exc: Exception, code: int) -> None:
    with pytest.raises(Exit) as info:
        raising(exc)()
    assert info.value.code == code
    assert info.value.message == f"error: {exc}"


def test_os_error_is_a_clean_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XARCH_DEBUG", raising=False)
    exc = OSError(errno.ENOSPC, "No space left on device", "/var/lib/xarch/cache/x")
    with pytest.raises(Exit) as info:
        raising(exc)()
    assert info.value.code == 1
    assert info.value.message == "error: No space left on device: /var/lib/xarch/cache/x"


def test_a_bug_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XARCH_DEBUG", raising=False)
    with pytest.raises(Exit) as info:
        raising(KeyError("digest"))()
    message = info.value.message or ""
    assert info.value.code == 1
    assert message.startswith("error: KeyError: 'digest'\n")
    assert "this is a bug in xarch, please report it" in message
    assert "XARCH_DEBUG=1" in message


@pytest.mark.parametrize("exc", [KeyError("digest"), OSError(errno.EIO, "I/O error")])
def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    monkeypatch.setenv("XARCH_DEBUG", "1")
    with pytest.raises(type(exc)):
        raising(exc)()


@pytest.mark.parametrize("exc", [Exit("told", code=3)])
def test_invoke_exits_pass_through(exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        raising(exc)()
