"""Host faults recognised in each tool's own words (issue 18, item 4): the texts are
what apt, pip, requests and the Docker engine print for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from xarch.model.faults import recognise
from xarch.oci.engine import advice

CASES = [
    # apt, downloading into a full cache (the 2 MB tmpfs)
    ("E: Failed to fetch ...  Error writing to file - write (28: No space left on device)",
     "disk-full"),
    # pip into a full directory
    ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on "
     "device: '/root/.cache/xarch/pypi/.download-x/pip-26.0.1-py3-none-any.whl'", "disk-full"),
    ("OSError: [Errno 30] Read-only file system: '/cache/x'", "read-only"),
    ("E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)",
     "permission"),
    ("W: Failed to fetch ... Temporary failure resolving 'deb.example.org'", "dns"),  # apt
    ("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): "
     "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution",
     "dns"),
    ("ProxyError('Unable to connect to proxy', OSError('Tunnel connection failed: 403'))",
     "proxy"),
    ("SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get "
     "local issuer certificate", "tls"),
    ("Get \"https://127.0.0.1:5000/v2/\": x509: certificate signed by unknown authority",
     "tls"),
    ("manifest unknown", None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "kind"), CASES)
def test_each_fault_is_recognised_in_the_tools_words(text: str, kind: str | None) -> None:
    fault = recognise(text)
    assert (fault.kind if fault else None) == kind


def test_the_path_the_tool_printed_is_named() -> None:
    fault = recognise("OSError: [Errno 28] No space left on device: '/srv/cache/pypi/x.whl'")
    assert fault is not None and "/srv/cache/pypi/x.whl" in fault.advice
    df = fault.advice.split("`df -h ")[1].split("`")[0]  # what of it exists here
    assert "/srv/cache/pypi/x.whl".startswith(df) and Path(df).exists(), fault.advice


def test_a_copys_destination_is_named_not_its_source() -> None:
    """pip copying a downloaded wheel into a full cache names both files."""
    fault = recognise(
        "OSError: [Errno 28] No space left on device: '/tmp/pip-unpack-x/pip.whl' -> "
        "'/cache/pypi/.download-y/pip.whl'"
    )
    assert fault is not None and "under /cache/pypi/.download-y/pip.whl" in str(fault)


def test_else_the_callers_path_is_named() -> None:
    fault = recognise("write (28: No space left on device)", path="/root/.cache/xarch/qemu")
    assert fault is not None and "under /root/.cache/xarch/qemu" in fault.advice
    assert "apt-get update" not in fault.advice


def test_the_host_is_named() -> None:
    fault = recognise("HTTPSConnectionPool(host='files.example.org', port=443): Name or "
                      "service not known")  # fmt: skip
    assert fault is not None and fault.kind == "dns" and "files.example.org" in fault.advice


def test_the_engine_says_a_full_disk_instead_of_registry_advice() -> None:
    text = advice(
        "push",
        "127.0.0.1:5000/xarch/x:t",
        "write /var/lib/docker/tmp/GetImageBlob1: no space left on device",
        "helper",
    )
    assert "the disk is full under /var/lib/docker/tmp/GetImageBlob1" in text
    assert "registry-up" not in text and "docker login" not in text


def test_the_engine_keeps_its_own_advice_for_its_own_faults() -> None:
    text = advice("push", "127.0.0.1:5000/xarch/x:t", "denied: requested access", "helper")
    assert "docker login 127.0.0.1:5000" in text


def test_a_task_whose_engine_went_away_says_so() -> None:
    """The CLI's one error handler: an engine task that fails while the engine, which
    answered at its start, no longer does, is the engine's failure."""
    from xarch.cli.tasks import engine_gone

    said = engine_gone("push_images", answered_at_start=True, answers_now=False)
    assert said is not None
    assert "stopped answering during push-images" in said
    assert "start the engine again" in said
    # not when the engine still answers, never answered, or the task needs no engine
    assert engine_gone("push_images", answered_at_start=True, answers_now=True) is None
    assert engine_gone("push_images", answered_at_start=False, answers_now=False) is None
    assert engine_gone("binfmt_status", answered_at_start=True, answers_now=False) is None


def test_df_is_pointed_at_what_exists_of_the_full_path(tmp_path: Path) -> None:
    """The engine names the temporary blob it could not write, which is gone by then:
    `df` is given the nearest directory that exists."""
    gone = tmp_path / "tmp" / "GetImageBlob123"
    said = advice("pull", "127.0.0.1:5000/x:t", f"write {gone}: no space left on device", "base")
    assert f"the disk is full under {gone}" in said
    assert f"`df -h {tmp_path}`" in said


def test_pip_names_no_host_so_the_index_is_named() -> None:
    """pip's words on a name that does not resolve name the path (/simple/pip/), not the
    host: the index pip was given is named instead; with no host at all the sentence
    still reads."""
    from xarch.model.faults import pip_index_host

    words = (
        "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError("
        "...: Failed to establish a new connection: [Errno -2] Name or service not known')':"
        " /simple/pip/"
    )
    host = pip_index_host({"PIP_INDEX_URL": "https://mirror.example.org/simple"})
    fault = recognise(words, host=host)
    assert fault is not None and fault.kind == "dns"
    assert fault.advice.startswith("the name mirror.example.org does not resolve")
    assert pip_index_host({}) == "pypi.org"
    bare = recognise(words)
    assert bare is not None and bare.advice.startswith("a host name does not resolve")
