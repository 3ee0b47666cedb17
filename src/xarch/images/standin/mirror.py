"""The Debian archive the host's apt uses: the stand-ins' default mirror."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from xarch.errors import BadInput


def _sources_entries(root: Path) -> list[tuple[str, list[str], list[str]]]:
    """(file, types, URIs) of every enabled apt source under root/etc/apt."""
    found: list[tuple[str, list[str], list[str]]] = []
    apt = root / "etc" / "apt"
    lists = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for f in lists:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise BadInput(f"cannot read {f}: {e.strerror}") from None
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb":
                # deb [arch=amd64 signed-by=...] URI SUITE COMPONENTS...
                rest = words[1:]
                if rest[0].startswith("["):
                    while rest and not rest[0].endswith("]"):
                        rest = rest[1:]
                    rest = rest[1:]
                if rest:
                    found.append((str(f), ["deb"], [rest[0]]))
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise BadInput(f"cannot read {f}: {e.strerror}") from None
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            last = ""
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and last:
                    fields[last] += " " + line.strip()
                elif ":" in line:
                    last, value = line.split(":", 1)
                    last = last.strip().lower()
                    fields[last] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            found.append((str(f), fields.get("types", "").split(), fields.get("uris", "").split()))
    return found


def _is_debian_archive(uri: str) -> bool:
    """http://deb.debian.org/debian, http://mirror.example/debian/, a snapshot's
    .../archive/debian/<date>: a path component named exactly `debian` (so neither
    debian-security nor third-party repositories)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("http", "https", "file"):
        return False
    parts = rest.split("/")[1:]
    return "debian" in parts


@functools.cache
def host_debian_mirror(root: Path = Path("/")) -> str:
    """The Debian archive URI the host's apt uses (its sources.list or deb822 .sources)."""
    for _file, types, uris in _sources_entries(root):
        if "deb" in types:
            for uri in uris:
                if _is_debian_archive(uri):
                    return uri.rstrip("/")
    where = root / "etc" / "apt"
    raise BadInput(
        f"no Debian archive found in the host's apt sources ({where}/sources.list, "
        f"{where}/sources.list.d/*.list, *.sources), which the stand-in bootstrap uses.\n"
        "  Set base.bootstrap.mirror in the config, e.g. mirror: http://deb.debian.org/debian"
    )
