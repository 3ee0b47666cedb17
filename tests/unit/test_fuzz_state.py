"""No state file xarch reads back crashes it: the embedded registry's pid and state
files, the digest files of push-arch, the emulator cache. A corrupt one is an error
naming the file and what to do, and is never silently replaced."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xarch.errors import BadInput, FetchError, RegistryError, XarchError
from xarch.host import qemu
from xarch.model.arch import get_arch
from xarch.model.config import Config, QemuPin, QemuSource, load_config
from xarch.oci import registry_server
from xarch.oci.registry_server import INFO_FILE, PID_FILE, CorruptStateFile
from xarch.publish import fanout

REPO = Path(__file__).resolve().parents[2]
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10), kids, max_size=5)
    ),
    max_leaves=20,
)


# --------------------------------------------------------------------------- registry state


@pytest.fixture(scope="module")
def fake_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A live process whose command line is `docker-registry serve STATE/config.yml`
    (a sleeping Python under that argv[0]), so status() takes it for ours."""
    state = tmp_path_factory.mktemp("registry-state")
    (state / "config.yml").write_text("version: 0.1\n")
    # Python runs ./serve (a sleep) with argv[0] shown as docker-registry.
    (state / "serve").write_text("import time\ntime.sleep(600)\n")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(state / "config.yml")],
        executable=sys.executable,
        cwd=state,
    )
    try:
        yield state, proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    (tmp_path / PID_FILE).write_text("999999\n")  # no such process (pid_max is lower)
    (tmp_path / INFO_FILE).write_text("{ torn")
    assert registry_server.status(tmp_path) is None


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "expected a process id, found ''"),
        (b"12ab\n", "expected a process id, found '12ab'"),
        (b"-5\n", "expected a process id"),
        (b"0\n", "expected a process id"),
        (b"\xff\xfe\n", "not UTF-8 text"),
        (b"9" * 5000, "expected a process id, found '999"),
        (b"\xd9\xa3\n", "expected a process id"),  # ARABIC-INDIC DIGIT THREE
    ],
)
def test_corrupt_pid_file_is_an_error_naming_it(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    (tmp_path / PID_FILE).write_bytes(content)
    with pytest.raises(CorruptStateFile) as info:
        registry_server.status(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path.resolve() / PID_FILE}: ")
    assert fragment in message
    assert "remove" in message and "invoke registry-up" in message
    assert info.value.exit_code == 1
    assert (tmp_path / PID_FILE).read_bytes() == content  # never replaced


def test_pid_file_that_is_a_fifo_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / PID_FILE)
    with pytest.raises(CorruptStateFile, match="not a regular file"):
        registry_server.status(tmp_path)


def test_start_refuses_a_corrupt_pid_file_and_keeps_it(tmp_path: Path) -> None:
    (tmp_path / PID_FILE).write_text("garbage\n")
    with pytest.raises(CorruptStateFile):
        registry_server.start(tmp_path, port=1, log=lambda _: None)
    assert (tmp_path / PID_FILE).read_text() == "garbage\n"


def test_live_registry_with_its_state_file(fake_registry: tuple[Path, int]) -> None:
    state, pid = fake_registry
    (state / PID_FILE).write_text(f"{pid}\n")
    (state / INFO_FILE).write_text(
        json.dumps({"host": "127.0.0.1", "port": 5000, "pid": pid, "htpasswd": None})
    )
    server = registry_server.status(state)
    assert server is not None
    assert (server.address, server.pid) == ("127.0.0.1:5000", pid)


@FUZZ
@given(
    doc=st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(["host", "port", "pid", "htpasswd", "url", "address"]),
            json_values,
            max_size=6,
        ),
    )
)
def test_state_file_of_a_live_registry_never_crashes(
    fake_registry: tuple[Path, int], doc: Any
) -> None:
    state, pid = fake_registry
    (state / PID_FILE).write_text(f"{pid}\n")
    (state / INFO_FILE).write_text(json.dumps(doc))
    try:
        server = registry_server.status(state)
    except CorruptStateFile as e:
        assert str(e).startswith(f"{state.resolve() / INFO_FILE}: ")
        return
    assert server is not None and server.pid == pid
    assert 0 < server.port < 65536


@FUZZ
@given(data=st.binary(max_size=200))
def test_state_file_bytes_of_a_live_registry_never_crash(
    fake_registry: tuple[Path, int], data: bytes
) -> None:
    state, pid = fake_registry
    (state / PID_FILE).write_text(f"{pid}\n")
    (state / INFO_FILE).write_bytes(data)
    with contextlib.suppress(CorruptStateFile):
        registry_server.status(state)


def test_missing_state_file_of_a_live_registry(fake_registry: tuple[Path, int]) -> None:
    state, pid = fake_registry
    (state / PID_FILE).write_text(f"{pid}\n")
    (state / INFO_FILE).unlink(missing_ok=True)
    with pytest.raises(CorruptStateFile, match=f"missing, while pid {pid} runs"):
        registry_server.status(state)


@FUZZ
@given(data=st.binary(max_size=64))
def test_pid_file_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    (tmp_path / PID_FILE).write_bytes(data)
    with contextlib.suppress(CorruptStateFile):
        registry_server.status(tmp_path)


# --------------------------------------------------------------------------- digest files


@pytest.fixture(scope="module")
def offline() -> Config:
    return load_config(REPO / "config" / "offline.yaml")


def valid_digest(config: Config) -> dict[str, Any]:
    t = config.targets[0]
    return {
        "schema": fanout.DIGEST_SCHEMA,
        "target": t.name,
        "family": t.family,
        "arch": t.arch.name,
        "registry": config.registry.address,
        "repository": config.registry.repository(t.family),
        "images": [{"tag": t.tags[0], "digest": "sha256:" + "a" * 64}],
    }


def test_valid_digest_file_is_read(tmp_path: Path, offline: Config) -> None:
    (tmp_path / "a.json").write_text(json.dumps(valid_digest(offline)))
    assert list(fanout.read_digests(offline, tmp_path)) == [offline.targets[0].name]


@FUZZ
@given(
    key=st.sampled_from(
        ["schema", "target", "family", "arch", "registry", "repository", "images", "extra"]
    ),
    value=json_values,
)
def test_digest_file_with_any_field_never_crashes(
    tmp_path: Path, offline: Config, key: str, value: Any
) -> None:
    doc = valid_digest(offline)
    doc[key] = value
    d = tmp_path / "digests"
    d.mkdir(exist_ok=True)
    (d / "a.json").write_text(json.dumps(doc))
    try:
        fanout.read_digests(offline, d)
    except XarchError as e:
        assert str(d / "a.json") in str(e)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_digest_file_bytes_never_crash(tmp_path: Path, offline: Config, data: bytes) -> None:
    d = tmp_path / "digests"
    d.mkdir(exist_ok=True)
    (d / "a.json").write_bytes(data)
    try:
        fanout.read_digests(offline, d)
    except BadInput as e:
        assert str(d / "a.json") in str(e)


def test_deeply_nested_digest_file(tmp_path: Path, offline: Config) -> None:
    (tmp_path / "a.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadInput, match=r"a\.json"):
        fanout.read_digests(offline, tmp_path)


def test_digest_file_that_is_a_fifo_does_not_block(tmp_path: Path, offline: Config) -> None:
    os.mkfifo(tmp_path / "a.json")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fanout.read_digests(offline, tmp_path)
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():
        with open(tmp_path / "a.json", "w"):
            pass
        pytest.fail("read_digests blocked on a FIFO")
    assert isinstance(errors[0], BadInput) and "a.json" in str(errors[0])


# --------------------------------------------------------------------------- emulator cache


def dir_pin(tmp_path: Path, content: bytes) -> tuple[QemuPin, Path]:
    import hashlib

    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "qemu-aarch64-static").write_bytes(content)
    pin = QemuPin(
        version="fuzz",
        source=QemuSource(kind="dir", path=src),
        sha256={"qemu-aarch64-static": hashlib.sha256(content).hexdigest()},
    )
    return pin, src


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


AARCH64 = get_arch("aarch64")


@FUZZ
@given(data=st.binary(max_size=100))
def test_damaged_cache_entry_is_fetched_again_and_said(
    tmp_path: Path, cache: Path, data: bytes
) -> None:
    pin, _ = dir_pin(tmp_path, b"\x7fELF the real emulator")
    entry = qemu.emulator_dir(pin) / "qemu-aarch64-static"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(data)
    lines: list[str] = []
    [path] = qemu.ensure_emulators(pin, [AARCH64], lines.append).values()
    assert path.read_bytes() == b"\x7fELF the real emulator"
    if data != b"\x7fELF the real emulator":
        assert any(f"{entry}: cached copy does not match its pin" in ln for ln in lines)


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_cache_entry_that_is_not_a_file_is_an_error(tmp_path: Path, cache: Path, kind: str) -> None:
    pin, _ = dir_pin(tmp_path, b"\x7fELF emulator")
    entry = qemu.emulator_dir(pin) / "qemu-aarch64-static"
    entry.parent.mkdir(parents=True)
    if kind == "directory":
        entry.mkdir()
    else:
        os.mkfifo(entry)
    with pytest.raises(FetchError, match="is not a regular file; xarch did not write it"):
        qemu.ensure_emulators(pin, [AARCH64], lambda _: None)
    assert entry.exists()  # left for the user to look at


def test_cache_dir_that_is_a_file_is_an_error(tmp_path: Path, cache: Path) -> None:
    pin, _ = dir_pin(tmp_path, b"\x7fELF emulator")
    qemu.emulator_dir(pin).parent.mkdir(parents=True)
    qemu.emulator_dir(pin).write_text("not a directory")
    with pytest.raises(FetchError, match="exists and is not a directory"):
        qemu.ensure_emulators(pin, [AARCH64], lambda _: None)


def test_registry_error_is_the_base_of_the_state_file_error() -> None:
    assert issubclass(CorruptStateFile, RegistryError)
