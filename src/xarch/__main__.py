"""``python -m xarch``: the console script."""

from xarch.cli.main import main

main()
