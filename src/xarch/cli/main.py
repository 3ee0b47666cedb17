"""The ``xarch`` console script: the same Invoke collection as ``invoke`` in a checkout,
so ``pipx run xarch pull-images`` works where there is no tasks.py."""

from __future__ import annotations

from invoke.program import Program

from xarch import __version__
from xarch.cli.tasks import ns

program = Program(namespace=ns, version=__version__, name="xarch", binary="xarch")


def main() -> None:
    program.run()
