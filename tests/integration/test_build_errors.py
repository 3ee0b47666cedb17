"""A failed build step says why: its last output lines are in the error (a real engine,
a real classic build of a one-file image with the pinned static busybox as its shell)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import docker
import pytest

from tests.integration.conftest import OFFLINE, quiet
from xarch.errors import BuildError
from xarch.images import installer
from xarch.model.arch import get_arch
from xarch.model.config import load_config
from xarch.oci.engine import BUILD_TAIL_LINES, Engine

pytestmark = pytest.mark.docker

REF = "xarch-test/build-errors:t1"


def test_a_failed_step_names_its_last_output_lines(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    box = installer.busybox(load_config(OFFLINE), get_arch("x86_64"), quiet)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(box, ctx / "busybox")
    lines = "; ".join(f"echo filler {i}" for i in range(BUILD_TAIL_LINES + 5))
    (ctx / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/sh\n"
        'RUN ["/bin/sh", "-c", "echo an earlier step"]\n'
        f'RUN ["/bin/sh", "-c", "{lines}; sleep 1; echo the real reason >&2; exit 3"]\n'
    )
    try:
        with pytest.raises(BuildError) as e:
            Engine(client).build(ctx, REF, {}, no_cache=True, log=quiet)
        text = str(e.value)
        assert "returned a non-zero code: 3" in text
        tail = text.split("the step's last lines:", 1)[1].split("\n")[1:]
        assert tail[-1].strip() == "the real reason", text
        assert len(tail) == BUILD_TAIL_LINES, text
        assert "an earlier step" not in text  # only the failed step's own lines
        assert [t.strip() for t in tail[:-1]] == [
            f"filler {i}" for i in range(6, BUILD_TAIL_LINES + 5)
        ], text  # the last lines, in order
        assert "\x1b" not in text  # stderr comes coloured; the error is plain text
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(REF, force=True)
