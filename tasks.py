"""xarch's Invoke entry point: `invoke --list`. The tasks live in src/xarch/tasks.py."""

from xarch.tasks import ns

__all__ = ["ns"]
