"""pytest plugin: options, one session-scoped container per image, parametrization.

Loaded with ``-p xarch.imagetests.plugin`` by xarch.testimages; not a conftest so
that the suite runs the same from any working directory.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest
import testinfra

from xarch.errors import DaemonError
from xarch.images.suite import RUN_ENV, RUN_LABEL
from xarch.model.config import Config, Target, load_config
from xarch.model.naming import helper_ref
from xarch.oci.engine import Container, Engine


@dataclass(frozen=True)
class ImageUnderTest:
    target: Target
    ref: str
    attrs: dict[str, Any]
    binfmt_mode: str  # host | F | no-F

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("xarch")
    g.addoption("--xarch-config", required=True, help="config file")
    g.addoption("--xarch-target", action="append", default=[], help="target name (repeatable)")
    g.addoption("--xarch-allow-unpinned", action="store_true", default=False)
    g.addoption(
        "--xarch-binfmt-mode",
        default="host",
        choices=["host", "F", "no-F"],
        help="the host binfmt state the run was started under (set up by xarch.testimages)",
    )


_CONFIG_KEY = pytest.StashKey[Config]()


def _config(config: pytest.Config) -> Config:
    cached = config.stash.get(_CONFIG_KEY, None)
    if cached is None:
        cached = load_config(
            config.getoption("--xarch-config"),
            allow_unpinned=config.getoption("--xarch-allow-unpinned"),
        )
        config.stash[_CONFIG_KEY] = cached
    return cached


#: The first words of a test's report when the engine, not the image, failed it.
ENGINE_GONE = "the Docker engine at {address} stopped answering during this test"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """A test that failed while the engine stopped answering is the engine's failure, not
    the image's: it is reported as an error (JUnit <error>, not <failure>) that says so.
    The engine is asked only after a failure, so a passing run pays nothing."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.failed and not Engine.answers(timeout=5):
        if report.when == "call":
            # junitxml writes a failed setup or teardown as <error>; a failed call as
            # <failure>, which would say the image is broken.
            report.when = "setup"
        report.longrepr = (
            ENGINE_GONE.format(address=Engine.address())
            + f"; what the test saw:\n{report.longreprtext[-1500:]}"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        cfg = _config(metafunc.config)
        targets = cfg.select(metafunc.config.getoption("--xarch-target") or None)
        metafunc.parametrize("target", targets, ids=[t.name for t in targets], scope="session")


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return Engine.connect().client


@pytest.fixture(scope="session")
def xarch_config(pytestconfig: pytest.Config) -> Config:
    return _config(pytestconfig)


@pytest.fixture(scope="session")
def binfmt_mode(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--xarch-binfmt-mode"))


@pytest.fixture(scope="session")
def image(
    target: Target, xarch_config: Config, docker_client: docker.DockerClient, binfmt_mode: str
) -> ImageUnderTest:
    ref = helper_ref(xarch_config, target, target.tags[0])
    attrs = Engine(docker_client).inspect(ref)
    if attrs is None:
        pytest.fail(f"{ref} is not in the local engine; run `invoke build-images` first")
    return ImageUnderTest(target=target, ref=ref, attrs=attrs, binfmt_mode=binfmt_mode)


@pytest.fixture(scope="session")
def container(image: ImageUnderTest, docker_client: docker.DockerClient) -> Iterator[Container]:
    """One long-lived container per image, started through the image's own entrypoint
    with the image's platform; removed at the end of the session whatever happened."""
    try:
        c = Engine(docker_client).start(
            image.ref,
            ["sleep", "infinity"],
            platform=image.target.arch.platform,
            labels=run_labels(),
        )
    except DaemonError as e:
        pytest.fail(f"{e}\n" + explain_start_failure(e.detail, image.target))
    with c:
        status = c.status()
        if status != "running":
            logs = c.logs()
            pytest.fail(
                f"{image.ref} did not start ({status}): {logs}\n"
                + explain_start_failure(logs, image.target)
            )
        yield c


@pytest.fixture(scope="session")
def guest(container: Container) -> Any:
    """The container as a testinfra host (named guest: testinfra owns `host`)."""
    return testinfra.get_host(f"docker://{container.id}")


def explain_start_failure(output: str, target: Target) -> str:
    if "exec format error" in output:
        return (
            f"The kernel has no binfmt_misc handler for {target.arch.name}: "
            f"run `invoke binfmt-install --arch {target.arch.name}` (as root)."
        )
    if "no such file or directory" in output:
        return (
            f"A handler without flag F points at an interpreter that is not in the image; "
            f"helper images carry {target.arch.emulator_path}."
        )
    return ""


def run_labels() -> dict[str, str]:
    """The labels of every container the suite starts: test-images removes the ones of
    its run (RUN_LABEL) when the run ends, interrupted or not, whichever worker or
    `docker run` started them."""
    return {"io.xarch.test-images": "1", RUN_LABEL: os.environ.get(RUN_ENV, "")}


def docker_run(
    ref: str, platform: str, args: list[str], entrypoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm` through the CLI, as a user (or cibuildwheel) would start it."""
    cmd = ["docker", "run", "--rm", "--platform", platform]
    for k, v in run_labels().items():
        cmd += ["--label", f"{k}={v}"]
    if entrypoint is not None:
        cmd += ["--entrypoint", entrypoint]
    cmd += [ref, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
