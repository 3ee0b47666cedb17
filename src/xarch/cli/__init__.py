"""The command line: the Invoke collection (thin tasks) and the ``xarch`` console script."""
