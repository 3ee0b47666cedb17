"""The embedded registry: Debian's ``docker-registry`` (distribution 2.8) run as a
detached process bound to a local address, with its state in one directory.

Layout of ``state_dir``::

    config.yml      the registry's configuration (written by start())
    data/           the storage (kept by stop() unless purge=True)
    registry.pid    the pid of the running registry
    registry.json   {"address", "host", "port", "pid", "htpasswd", "url"}
    registry.log    the registry's stdout and stderr (appended)

Only a process whose command line is ``docker-registry serve STATE/config.yml``
is ever considered ours: a stale pid file naming some other process is ignored,
never signalled. A pid or state file that cannot be read as what start() wrote
(not a number, not JSON, missing fields, not a regular file) is a RegistryError
naming the file and what to do; it is never silently replaced. start() writes both
atomically (a temporary name, then rename), so an interrupted start leaves no half
file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from xarch.errors import RegistryError

Log = Callable[[str], None]

BINARY = "docker-registry"
CONFIG = "config.yml"
PID_FILE = "registry.pid"
INFO_FILE = "registry.json"
LOG_FILE = "registry.log"
DATA_DIR = "data"
REALM = "xarch-registry"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
#: More than this in a pid or state file is not one start() wrote.
MAX_STATE_FILE = 64 * 1024

# Children started by this process, so stop() can reap them (no zombies, no
# "subprocess still running" warnings).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class RegistryServer:
    host: str
    port: int
    state_dir: Path
    pid: int
    htpasswd: Path | None = None

    @property
    def address(self) -> str:
        """host:port as docker and RegistryClient want it ("127.0.0.1:5000")."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def log_file(self) -> Path:
        return self.state_dir / LOG_FILE

    @property
    def data_dir(self) -> Path:
        return self.state_dir / DATA_DIR


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _binary() -> str:
    path = shutil.which(BINARY)
    if path is None:
        raise RegistryError(
            f"{BINARY} not found on PATH; the embedded registry needs Debian's distribution "
            f"package\n  hint: apt-get install docker-registry"
        )
    return path


def _config_doc(state_dir: Path, host: str, port: int, htpasswd: Path | None) -> dict[str, object]:
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(state_dir / DATA_DIR)},
            "delete": {"enabled": True},
        },
        "http": {
            "addr": _address(host, port),
            # A fixed secret silences the "No HTTP secret provided" warning.
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "health": {"storagedriver": {"enabled": False}},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": REALM, "path": str(htpasswd)}}
    return config


def _proc_state(pid: int) -> str | None:
    """The state letter from /proc/PID/stat ("R", "S", "Z", ...), None if no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) S ..." -- comm may contain spaces and parentheses.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[0] if rest else None


def _reap(pid: int) -> None:
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.1)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    state = _proc_state(pid)
    if state == "Z":
        _reap(pid)
        return False
    return state is not None


def _is_our_registry(pid: int, state_dir: Path) -> bool:
    """True if pid is a live `docker-registry serve STATE/config.yml`."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv if a]
    return (
        len(args) >= 3
        and os.path.basename(args[0]) == BINARY
        and args[1] == "serve"
        and os.path.realpath(args[2]) == os.path.realpath(state_dir / CONFIG)
    )


class CorruptStateFile(RegistryError):
    """A pid or state file of the embedded registry is not what start() wrote."""

    def __init__(self, path: Path, problem: str) -> None:
        state_dir = path.parent
        super().__init__(
            f"{path}: {problem}; it is not what `invoke registry-up` writes\n"
            f"  hint: if no registry runs from {state_dir} (`ps -C {BINARY} -o pid,args`), "
            f"remove {state_dir / PID_FILE} and {state_dir / INFO_FILE} and run "
            "`invoke registry-up` again; the stored images are kept"
        )
        self.path = path


def _read_state_text(path: Path) -> str | None:
    """A state file's text; None when it does not exist; CorruptStateFile when it is
    not a small regular UTF-8 file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RegistryError(f"cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptStateFile(path, "not a regular file")
    if st.st_size > MAX_STATE_FILE:
        raise CorruptStateFile(path, f"{st.st_size} bytes")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RegistryError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptStateFile(path, "not UTF-8 text") from None


def _read_pid(state_dir: Path) -> int | None:
    """The pid in the pid file; None when there is none."""
    path = state_dir / PID_FILE
    text = _read_state_text(path)
    if text is None:
        return None
    value = text.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 7 and 0 < int(value) < 1 << 22):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise CorruptStateFile(path, f"expected a process id, found {shown!r}")
    return int(value)


def _read_info(state_dir: Path, pid: int) -> RegistryServer:
    """The state file of the registry running as ``pid``."""
    path = state_dir / INFO_FILE
    text = _read_state_text(path)
    if text is None:
        raise CorruptStateFile(path, f"missing, while pid {pid} runs the registry from there")
    try:
        info = json.loads(text)
    except ValueError as e:
        raise CorruptStateFile(path, f"not JSON ({e})") from None
    if not isinstance(info, dict):
        raise CorruptStateFile(path, "expected a JSON object")
    host, port, htpasswd, recorded = (info.get(k) for k in ("host", "port", "htpasswd", "pid"))
    if not isinstance(host, str) or not host:
        raise CorruptStateFile(path, "no host")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise CorruptStateFile(path, f"port {port!r} is not a TCP port")
    if htpasswd is not None and not isinstance(htpasswd, str):
        raise CorruptStateFile(path, f"htpasswd {htpasswd!r} is not a path")
    if recorded is not None and recorded != pid:
        raise CorruptStateFile(path, f"it records pid {recorded!r}, the pid file {pid}")
    return RegistryServer(
        host=host,
        port=port,
        state_dir=state_dir,
        pid=pid,
        htpasswd=Path(htpasswd) if htpasswd else None,
    )


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _remove_run_files(state_dir: Path) -> None:
    for name in (PID_FILE, INFO_FILE):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()


def status(state_dir: Path) -> RegistryServer | None:
    """The registry running from state_dir, or None. Does not contact it.

    A pid file naming a process that is gone (or is not our registry) is stale:
    None. A pid or state file that is corrupt is CorruptStateFile."""
    state_dir = Path(state_dir).resolve()
    pid = _read_pid(state_dir)
    if pid is None or not _is_our_registry(pid, state_dir):
        return None
    return _read_info(state_dir, pid)


def _answers(url: str, timeout: float = 1.0) -> bool:
    with requests.Session() as s:
        s.trust_env = False  # never through a proxy: this is a local address
        try:
            r = s.get(f"{url}/v2/", timeout=timeout)
        except requests.RequestException:
            return False
    # 401: the registry answers and wants credentials (htpasswd).
    return r.status_code in (200, 401)


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _owns_listener(pid: int, port: int) -> bool | None:
    """Whether pid holds a socket listening on port (from /proc/net/tcp{,6}); None if
    that cannot be read. A ping alone is not proof: another server may hold the port
    while our registry is failing to bind it."""
    inodes = _socket_inodes(pid)
    found_table = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for row in rows:
            cols = row.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(cols) < 10 or cols[3] != "0A":  # 0A = LISTEN
                continue
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
                return True
    return False if found_table else None


def _log_tail(path: Path, offset: int = 0, lines: int = 15) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in tail)


def _check_port_free(host: str, port: int) -> None:
    """Fail early and clearly when something already listens on host:port."""
    try:
        # create_server sets SO_REUSEADDR (like Go), so TIME_WAIT does not count.
        sock = socket.create_server((host, port))
    except OSError as e:
        addr = _address(host, port)
        if e.errno == errno.EADDRINUSE:
            raise RegistryError(
                f"cannot start the registry: {addr} is already in use by another process"
                "\n  hint: choose another port, or find the process holding it with "
                f"`ss -ltnp 'sport = :{port}'`"
            ) from None
        raise RegistryError(
            f"cannot start the registry: cannot bind {addr}: {e.strerror or e}"
            f"\n  hint: use a local address such as 127.0.0.1"
        ) from None
    sock.close()


def _kill(pid: int, timeout: float) -> bool:
    """SIGTERM, wait, SIGKILL. True once the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            _reap(pid)
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc = _CHILDREN.get(pid)
            if proc is not None and proc.poll() is not None:
                _CHILDREN.pop(pid, None)
                return True
            if not _alive(pid):
                return True
            time.sleep(0.05)
    return not _alive(pid)


def start(
    state_dir: Path,
    port: int = 5000,
    host: str = "127.0.0.1",
    htpasswd: Path | None = None,
    log: Log = print,
) -> RegistryServer:
    """Start the embedded registry (or return the one already running from state_dir)."""
    state_dir = Path(state_dir).resolve()
    htpasswd = Path(htpasswd).resolve() if htpasswd is not None else None
    address = _address(host, port)

    running = status(state_dir)
    if running is not None:
        if running.address != address or running.htpasswd != htpasswd:
            raise RegistryError(
                f"a registry from {state_dir} already runs at {running.address} "
                f"(pid {running.pid}, htpasswd {running.htpasswd or 'none'}); "
                f"wanted {address} (htpasswd {htpasswd or 'none'})"
                f"\n  hint: stop it first (`invoke registry-down`) or use {running.address}"
            )
        if not _answers(running.url):
            raise RegistryError(
                f"the registry process {running.pid} from {state_dir} is alive but does not "
                f"answer at {running.url}/v2/:\n{_log_tail(running.log_file)}"
                f"\n  hint: restart it: `invoke registry-down` then `invoke registry-up`"
            )
        log(f"registry already running at {running.address} (pid {running.pid})")
        return running

    binary = _binary()
    if htpasswd is not None and not htpasswd.is_file():
        raise RegistryError(
            f"htpasswd file {htpasswd} not found"
            f"\n  hint: create it with xarch.registry_server.make_htpasswd or `htpasswd -Bc`"
        )
    _remove_run_files(state_dir)  # stale: the process they name is gone
    _check_port_free(host, port)

    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / DATA_DIR).mkdir(exist_ok=True)
    config = state_dir / CONFIG
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(_config_doc(state_dir, host, port, htpasswd), f, sort_keys=False)

    log_path = state_dir / LOG_FILE
    argv = [binary, "serve", str(config)]
    log("+ " + shlex.join([BINARY, *argv[1:]]))
    with log_path.open("ab") as log_file:
        offset = log_file.tell()
        proc = subprocess.Popen(
            argv,
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    _write_atomically(state_dir / PID_FILE, f"{proc.pid}\n")

    server = RegistryServer(
        host=host, port=port, state_dir=state_dir, pid=proc.pid, htpasswd=htpasswd
    )
    deadline = time.monotonic() + START_TIMEOUT
    ok = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _answers(server.url, timeout=0.5) and _owns_listener(proc.pid, port) is not False:
            ok = proc.poll() is None
            break
        time.sleep(0.1)

    if not ok:
        exited = proc.poll()
        if exited is None:
            _kill(proc.pid, timeout=2.0)
        _CHILDREN.pop(proc.pid, None)
        _remove_run_files(state_dir)
        how = (
            f"exited with status {exited}"
            if exited is not None
            else f"did not answer at {server.url}/v2/ within {START_TIMEOUT:.0f} s"
        )
        tail = _log_tail(log_path, offset) or "    (the log is empty)"
        raise RegistryError(
            f"the registry ({shlex.join(argv)}) {how}; the end of {log_path}:\n{tail}"
            f"\n  hint: check the address ({address}) is free and the config is valid"
        )

    info = {
        "address": server.address,
        "host": host,
        "port": port,
        "pid": proc.pid,
        "htpasswd": str(htpasswd) if htpasswd else None,
        "url": server.url,
    }
    _write_atomically(state_dir / INFO_FILE, json.dumps(info, indent=2) + "\n")
    log(f"registry running at {server.address} (pid {proc.pid}, storage {server.data_dir})")
    return server


def stop(state_dir: Path, log: Log = print, *, purge: bool = False) -> bool:
    """Stop the registry running from state_dir. False if none was running.

    The storage is kept unless purge=True, which removes everything start() created.
    """
    state_dir = Path(state_dir).resolve()
    server = status(state_dir)
    stopped = False
    if server is None:
        log(f"registry not running (state {state_dir})")
    else:
        log(f"stopping registry at {server.address} (pid {server.pid})")
        if not _kill(server.pid, STOP_TIMEOUT):
            raise RegistryError(
                f"registry process {server.pid} survived SIGTERM and SIGKILL"
                f"\n  hint: inspect it with `ps -o pid,stat,cmd -p {server.pid}`"
            )
        stopped = True
    _remove_run_files(state_dir)
    if purge:
        shutil.rmtree(state_dir / DATA_DIR, ignore_errors=True)
        for name in (CONFIG, LOG_FILE):
            with contextlib.suppress(FileNotFoundError):
                (state_dir / name).unlink()
        with contextlib.suppress(OSError):
            state_dir.rmdir()  # only if nothing else lives there
        log(f"removed registry storage and state under {state_dir}")
    return stopped


def make_htpasswd(path: Path, user: str, password: str) -> Path:
    """Write (or update) a bcrypt htpasswd entry for user; other users are kept.

    distribution only accepts bcrypt hashes. The password goes to `htpasswd` on
    stdin, never on a command line.
    """
    if not user or ":" in user or any(c.isspace() for c in user):
        raise RegistryError(f"invalid htpasswd user name {user!r}: no ':' or whitespace")
    if not password or "\n" in password or "\r" in password:
        raise RegistryError("invalid htpasswd password: empty or contains a line break")
    tool = shutil.which("htpasswd")
    if tool is None:
        raise RegistryError(
            "htpasswd not found on PATH; it makes the bcrypt hashes the registry needs"
            "\n  hint: apt-get install apache2-utils"
        )
    proc = subprocess.run(
        [tool, "-niB", user],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    line = proc.stdout.strip()
    if proc.returncode != 0 or not line.startswith(f"{user}:$2"):
        raise RegistryError(f"htpasswd -niB {user} failed: {proc.stderr.strip() or line}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept: list[str] = []
    if path.exists():
        kept = [
            entry
            for entry in path.read_text().splitlines()
            if entry.strip() and entry.split(":", 1)[0] != user
        ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join([*kept, line]) + "\n")
    return path
