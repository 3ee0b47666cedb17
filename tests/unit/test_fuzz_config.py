"""No input crashes the config loader: whatever a --config file holds (bytes, YAML
trees built from the real keys, mutations of the shipped configs) and whatever kind of
file it is, load_config returns a Config or raises ConfigError, quickly."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xarch.errors import ConfigError
from xarch.model.config import (
    MAX_CONFIG_BYTES,
    Config,
    _Loader,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "config").glob("*.yaml"))
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _keys(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(str(k))
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)
    return out


def _leaves(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for v in node.values():
            _leaves(v, out)
    elif isinstance(node, list):
        for v in node:
            _leaves(v, out)
    elif isinstance(node, str):
        out.add(node)
    return out


SHIPPED_DATA = [yaml.safe_load(p.read_text()) for p in SHIPPED]
KEYS = sorted(set().union(*(_keys(d, set()) for d in SHIPPED_DATA)))
LEAVES = sorted(set().union(*(_leaves(d, set()) for d in SHIPPED_DATA)))


def outcome(path: Path) -> Config | ConfigError:
    """load_config's result; any exception but ConfigError fails the test."""
    try:
        return load_config(path)
    except ConfigError as e:
        assert str(path) in str(e)
        assert e.exit_code == 2
        return e


def test_vocabulary_comes_from_the_shipped_configs() -> None:
    assert {"registry", "qemu", "targets", "base", "digest", "sha256"} <= set(KEYS)
    assert all(isinstance(load_config(p), Config) for p in SHIPPED)


# --------------------------------------------------------------------------- bytes


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    outcome(path)


@FUZZ
@given(
    text=st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@` ,?\n\tab01.~<=")), max_size=400)
)
def test_random_yaml_punctuation(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    outcome(path)


# --------------------------------------------------------------------------- trees

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.sampled_from(LEAVES),
    st.text(max_size=30),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12), st.integers(), st.booleans())
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=40,
)
top = st.dictionaries(st.sampled_from(KEYS), trees, max_size=6)


@FUZZ
@given(tree=top)
def test_trees_of_the_real_keys_through_a_file(tmp_path: Path, tree: dict[str, Any]) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    outcome(path)


@FUZZ
@given(tree=st.one_of(top, trees))
def test_trees_of_the_real_keys_parsed(tmp_path: Path, tree: Any) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(tmp_path / "c.yaml", tree)


# --------------------------------------------------------------------------- mutations


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value if action == "replace" else None
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(parent[last])
    else:
        parent[last] = [parent[last]]  # wrap: a scalar where a list is expected, and back
    return data


@settings(FUZZ, max_examples=60)  # a dump and a load of the 17-target config each
@given(
    which=st.integers(min_value=0, max_value=len(SHIPPED) - 1),
    picks=st.lists(
        st.tuples(
            st.integers(min_value=0),
            st.sampled_from(["delete", "replace", "duplicate", "wrap"]),
            trees,
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutations_of_the_shipped_configs(
    tmp_path: Path, which: int, picks: list[tuple[int, str, Any]]
) -> None:
    data = yaml.safe_load(SHIPPED[which].read_text())
    for index, action, value in picks:
        paths = _paths(data)
        data = _mutate(data, paths[index % len(paths)], action, value)
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    outcome(path)


@FUZZ
@given(
    which=st.integers(min_value=0, max_value=len(SHIPPED) - 1),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0), st.integers(min_value=0, max_value=40), st.binary(max_size=8)
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_byte_edits_of_the_shipped_configs(
    tmp_path: Path, which: int, edits: list[tuple[int, int, bytes]]
) -> None:
    data = bytearray(SHIPPED[which].read_bytes())
    for at, cut, insert in edits:
        i = at % (len(data) + 1)
        data[i : i + cut] = insert
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(bytes(data))
    outcome(path)


# --------------------------------------------------------------------------- named cases

VALID = (REPO / "config" / "offline.yaml").read_text()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param("", ["the file is empty"], id="empty"),
        pytest.param("   \n\n", ["the file is empty"], id="blank"),
        pytest.param("# nothing\n", ["holds no YAML content"], id="comments-only"),
        pytest.param(
            VALID + "registry:\n  address: localhost:5001\n",
            ["duplicate key 'registry'", "also at line"],
            id="duplicate-top-key",
        ),
        pytest.param(
            "registry:\n  address: a:1\n  address: b:2\n",
            ["duplicate key 'address' at line 3 (also at line 2)"],
            id="duplicate-nested-key",
        ),
        pytest.param(
            "registry: !!python/object/apply:os.system [true]\n",
            ["could not determine a constructor", "python/object"],
            id="python-tag",
        ),
        pytest.param("a: !!int " + "9" * 5000 + "\n", ["constructor", "int"], id="huge-int"),
        pytest.param("a: !!timestamp 2026-13-45\n", ["constructor"], id="bad-timestamp"),
        pytest.param("a: &a [*a]\n", ["recursive"], id="recursive-alias"),
        pytest.param("a: *nowhere\n", ["undefined alias"], id="undefined-alias"),
        pytest.param("[" * 5000 + "]" * 5000, ["nested more than"], id="deep-nesting"),
        pytest.param(
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
                for i in range(9)
            ),
            ["counting what aliases expand to"],
            id="billion-laughs",
        ),
        pytest.param(
            "".join(f"a{i}: &a{i} x\n" for i in range(101))
            + "".join(f"b{i}: *a{i}\n" for i in range(101)),
            ["more than 100 YAML aliases"],
            id="too-many-aliases",
        ),
        pytest.param("a: b\x00c\n", ["special characters are not allowed"], id="nul"),
        pytest.param("a: 1\n---\nb: 2\n", ["another document"], id="two-documents"),
    ],
)
def test_refused_with_one_message(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.monotonic() - start < 2
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(random.Random(11).randbytes(4096))
    with pytest.raises(
        ConfigError, match=r"is not UTF-8 text \(byte 0x[0-9a-f]{2} at offset \d+\)"
    ):
        load_config(path)


def test_duplicate_keys_through_a_merge_are_allowed() -> None:
    """``<<: *base`` then an explicit key is the point of a merge, not a duplicate."""
    text = "a: &base {x: 1, y: 2}\nb:\n  <<: *base\n  x: 3\n"
    assert yaml.load(text, Loader=_Loader) == {"a": {"x": "1", "y": "2"}, "b": {"x": "3", "y": "2"}}


def test_message_quotes_long_values_shortened(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("- " + "x" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(str(info.value)) < 300


# --------------------------------------------------------------------------- file kinds


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        load_config(tmp_path)


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def run() -> None:
        try:
            load_config(fifo)
        except BaseException as e:
            result.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # unblock it so the test process can exit
        with open(fifo, "w"):
            pass
        pytest.fail("load_config blocked on a FIFO")
    assert isinstance(result[0], ConfigError)
    assert "is a FIFO (named pipe), not a file" in str(result[0])


def test_symlink_to_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "fifo")
    with pytest.raises(ConfigError, match="is a FIFO"):
        load_config(tmp_path / "link.yaml")


def test_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(ConfigError, match="is a socket"):
            load_config(path)


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero", "/dev/urandom"])
def test_character_device(device: str) -> None:
    with pytest.raises(ConfigError, match=f"^{device}: is a character device, not a file"):
        load_config(device)


def test_huge_sparse_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(64 << 30)  # 64 GiB, sparse
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"is {64 << 30} bytes; a config is at most 1024 KiB"):
        load_config(path)
    assert time.monotonic() - start < 1


def test_just_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="at most 1024 KiB"):
        load_config(path)


def test_worst_case_at_the_cap_is_fast(tmp_path: Path) -> None:
    """The slowest content under the cap for PyYAML's parser: one flow list of short items
    (refused at MAX_CONFIG_NODES) and one long plain scalar (parsed whole)."""
    for name, text in {
        "flow": ("[" + "a, " * (MAX_CONFIG_BYTES // 3))[: MAX_CONFIG_BYTES - 1] + "]",
        "scalar": "a: " + "x" * (MAX_CONFIG_BYTES - 10) + "\n",
    }.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        start = time.monotonic()
        with pytest.raises(ConfigError):
            load_config(path)
        assert time.monotonic() - start < 2, name


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(VALID)
    path.chmod(0)
    with pytest.raises(ConfigError, match="cannot read: Permission denied"):
        load_config(path)


# --------------------------------------------------------------------------- through the CLI


@pytest.mark.parametrize("kind", ["fifo", "random-bytes", "directory", "duplicate-key"])
def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path: Path, kind: str) -> None:
    """`invoke binfmt-install --config BAD` stops before anything is changed or any
    docker call: exit 2, one message naming the file, no traceback."""
    path = tmp_path / "bad.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "random-bytes":
        path.write_bytes(random.Random(5).randbytes(4096))
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_text(VALID + VALID)
    env = {
        **os.environ,
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "XARCH_STATE_DIR": str(tmp_path / "state"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "binfmt-install",
            "--arch",
            "aarch64",
            "--config",
            str(path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {path}: ")
    assert "docker" not in proc.stderr.lower()
