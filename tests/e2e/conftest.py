"""The sample projects under projects/ are built by cibuildwheel, not collected here:
their own suites run inside the images through cibuildwheel's test-command."""

collect_ignore_glob = ["projects/*"]
