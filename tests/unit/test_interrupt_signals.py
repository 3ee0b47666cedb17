"""SIGINT and SIGTERM end a task as a KeyboardInterrupt (cleanups run), then exit
130 / 143 with one line; a second signal does not cut the cleanup short; the handlers
in place before the task come back. Real signals sent to this process."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from invoke.exceptions import Exit

from xarch.cli.interrupts import interruptible
from xarch.cli.tasks import user_errors
from xarch.errors import RegistryError

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


def wait_for_signal() -> None:
    """Sleep until the handler raises (a signal to ourselves is delivered at once)."""
    for _ in range(100):
        time.sleep(0.01)
    raise AssertionError("the signal did not interrupt the task")


def task_sending(signum: int, cleaned: list[str]) -> Callable[[], None]:
    @user_errors
    def body() -> None:
        try:
            os.kill(os.getpid(), signum)
            wait_for_signal()
        finally:
            cleaned.append("finally ran")

    return body


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_signal_runs_cleanups_and_exits_with_its_code(signum: int, code: int) -> None:
    cleaned: list[str] = []
    with pytest.raises(Exit) as info:
        task_sending(signum, cleaned)()
    assert cleaned == ["finally ran"]
    assert info.value.code == code
    message = info.value.message or ""
    assert message.startswith(f"error: interrupted by {signal.Signals(signum).name};")
    assert "\n" not in message


def test_sigterm_is_not_swallowed_by_an_except_xarch_error() -> None:
    """A loop that records an XarchError and goes on (push_items) must stop."""
    went_on: list[int] = []

    @user_errors
    def body() -> None:
        for i in range(3):
            try:
                if i == 0:
                    os.kill(os.getpid(), signal.SIGTERM)
                    wait_for_signal()
                raise RegistryError("one image failed")
            except RegistryError:
                went_on.append(i)

    with pytest.raises(Exit) as info:
        body()
    assert info.value.code == 143
    assert went_on == []


def test_a_second_signal_during_cleanup_is_said_and_ignored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    restored: list[str] = []

    @user_errors
    def body() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            wait_for_signal()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # impatient user, mid-cleanup
            time.sleep(0.05)
            restored.append("handlers restored")

    with pytest.raises(Exit) as info:
        body()
    assert restored == ["handlers restored"]
    assert info.value.code == 130  # the first signal decides
    assert "SIGTERM again: still cleaning up" in capsys.readouterr().err


def test_previous_handlers_come_back() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with interruptible():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_task_without_signal_is_untouched() -> None:
    @user_errors
    def body() -> int:
        return 7

    assert body() == 7


def test_a_raised_keyboard_interrupt_is_exit_130() -> None:
    @user_errors
    def body() -> None:
        raise KeyboardInterrupt

    with pytest.raises(Exit) as info:
        body()
    assert info.value.code == 130
