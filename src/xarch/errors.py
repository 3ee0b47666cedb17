"""One error hierarchy for every failure a user should read.

Each class carries the process exit code the task layer uses:

- 2 (``BadInput`` and its subclasses): input the user can fix without retrying
  anything, a config, a flag, a pin; nothing was changed.
- 1 (everything else): an operation failed or a step it needs is missing: the
  daemon or a registry does not answer or refuses, a download failed, a build or
  a verification failed, an image is not built yet (``NotBuilt``: the config is
  right, build-images has not run), a push is not recorded (``NotPushed``), a state
  file xarch wrote is unreadable (``CorruptState``). Retrying after the step the
  message names succeeds.

One condition, one class, everywhere; the CLI catches them once.
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


class EngineGone(XarchError):
    """The engine stopped answering in the middle of a task: the engine's failure, not
    the image's or the build's (exit 1)."""


class ReportWriteError(XarchError):
    """The report could not be written (the host's fault: disk, permissions); the old
    report is left as it was."""


class ImageNotFound(XarchError):
    """An image that is needed is neither local nor pullable."""


class ChecksumMismatch(XarchError):
    """A pinned file's sha256 is not the pinned one: the pin or the source is wrong,
    which is bad input (exit 2); nothing was used."""

    exit_code = 2


class FetchError(XarchError):
    """An emulator or other pinned file could not be downloaded (network, mirror,
    apt): exit 1, retry when the source answers. A download that arrives with the
    wrong sha256 is ``ChecksumMismatch`` instead."""


class NotBuilt(XarchError):
    """An image a task needs is not in the local engine (or lacks xarch's labels):
    run `invoke build-images` first. Exit 1: the input is right, a step is missing."""


class NotPushed(XarchError):
    """The report holds no push record (or no digest) for this config's images:
    run `invoke push-images` (or pass --report PATH) first. Exit 1, like NotBuilt."""


class CorruptState(XarchError):
    """A file xarch wrote and reads back (the report, digest files, caches) cannot be
    read; the message names it and says to move it away. Nothing was changed or
    overwritten."""


class DaemonError(XarchError):
    """The Docker daemon refused or failed an operation that is not a build, push
    or pull (tag, remove, start a container). ``detail`` is the daemon's words."""

    def __init__(self, text: str, detail: str = "") -> None:
        super().__init__(text)
        self.detail = detail or text


class BuildError(XarchError):
    """An image build failed."""


class RegistryError(XarchError):
    """A registry is unreachable, refuses a request or returned something unexpected."""


class BinfmtError(XarchError):
    """binfmt_misc cannot be read or changed."""


class TestFailure(XarchError):
    """An image verification failed: the image exists but does not do or carry what
    the config says (wrong platform, wrong labels, a failing suite)."""

    __test__ = False  # not a pytest test class


class BenchError(XarchError):
    """The benchmark could not run (a prerequisite is missing, or a workload failed)."""
