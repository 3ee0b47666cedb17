"""xarch's Invoke entry point in a checkout: `invoke --list`. The tasks live in
src/xarch/cli/tasks.py; installed, the same collection is the `xarch` command."""

from xarch.cli.tasks import ns

__all__ = ["ns"]
