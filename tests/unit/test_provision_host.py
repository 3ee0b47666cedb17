"""provision-runner's host check: which hosts it accepts and how it refuses the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from xarch.errors import BadInput
from xarch.runner.provision import check_host, read_os_release

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
UBUNTU = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\n'
MINT = 'PRETTY_NAME="Linux Mint 22"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'
RASPBIAN = "ID=raspbian\nID_LIKE=debian\n"
FEDORA = 'PRETTY_NAME="Fedora Linux 41"\nID=fedora\n'
ROCKY = 'PRETTY_NAME="Rocky Linux 9"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'


def os_release(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "os-release"
    p.write_text(text)
    return p


def test_os_release_values_are_unquoted(tmp_path: Path) -> None:
    info = read_os_release(os_release(tmp_path, MINT + "# comment\n\nBROKEN LINE\n"))
    assert info == {"PRETTY_NAME": "Linux Mint 22", "ID": "linuxmint", "ID_LIKE": "ubuntu debian"}


@pytest.mark.parametrize("text", [DEBIAN, UBUNTU, MINT, RASPBIAN])
def test_debian_family_is_accepted(tmp_path: Path, text: str) -> None:
    host = check_host(os_release=os_release(tmp_path, text), apt_get="sh", euid=0)
    assert host.apt_get.endswith("/sh")


@pytest.mark.parametrize(("text", "name"), [(FEDORA, "Fedora Linux 41"), (ROCKY, "Rocky Linux 9")])
def test_other_distributions_are_refused(tmp_path: Path, text: str, name: str) -> None:
    with pytest.raises(BadInput, match="supports Debian and Ubuntu") as err:
        check_host(os_release=os_release(tmp_path, text), apt_get="sh", euid=0)
    assert name in str(err.value)
    assert err.value.exit_code == 2


def test_missing_os_release_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read"):
        check_host(os_release=tmp_path / "none", apt_get="sh", euid=0)


def test_missing_apt_get_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="xarch-no-apt-get not found"):
        check_host(os_release=os_release(tmp_path, DEBIAN), apt_get="xarch-no-apt-get", euid=0)


def test_not_root_is_refused_first(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="needs root") as err:
        check_host(os_release=os_release(tmp_path, FEDORA), apt_get="xarch-no-apt", euid=1000)
    assert err.value.exit_code == 2
