"""The files images are built from, shipped inside the package (``xarch/images/resources/``):
the helper Dockerfile template, the binfmt installer's script template and the stand-in
layout files. Read through ``importlib.resources`` so a plain ``pip install`` works."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable


def resource_path(name: str) -> Traversable:
    """A file or folder under ``xarch/images/resources/`` (``helper/Dockerfile.in``)."""
    node = resources.files("xarch.images").joinpath("resources")
    for part in name.split("/"):
        node = node.joinpath(part)
    return node


def resource_text(name: str) -> str:
    return resource_path(name).read_text(encoding="utf-8")
