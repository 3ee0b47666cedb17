"""One error hierarchy for every failure a user should read.

Each class carries the process exit code the task layer uses: 2 for bad input
(nothing was changed), 1 for an operation that failed.
"""

from __future__ import annotations


class XarchError(Exception):
    """Base of every user-facing failure; the message says what to do next."""

    exit_code = 1


class BadInput(XarchError):
    """The user's input is wrong; nothing was changed."""

    exit_code = 2


class ConfigError(BadInput):
    """A config file is missing, unreadable or invalid."""

    def __init__(self, path: str, key: str, problem: str, hint: str = "") -> None:
        self.path = path
        self.key = key
        self.problem = problem
        self.hint = hint
        where = f"{path}: {key}" if key else path
        text = f"{where}: {problem}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


class EngineUnavailable(XarchError):
    """The Docker daemon does not answer."""


class ImageNotFound(XarchError):
    """An image that is needed is neither local nor pullable."""


class ChecksumMismatch(XarchError):
    """A pinned file's sha256 is not the pinned one: the pin or the source is wrong,
    which is bad input (exit 2); nothing was used."""

    exit_code = 2


class FetchError(XarchError):
    """An emulator or other input could not be obtained."""


class BuildError(XarchError):
    """An image build failed."""


class RegistryError(XarchError):
    """A registry is unreachable, refuses a request or returned something unexpected."""


class BinfmtError(XarchError):
    """binfmt_misc cannot be read or changed."""


class TestFailure(XarchError):
    """An image verification failed."""

    __test__ = False  # not a pytest test class
