"""Images: helper builds (pinned base + pinned emulator), stand-in bases bootstrapped
from Debian, the binfmt installer image, and the testinfra verification suite. The files
they are built from are package resources (``resources/``)."""
