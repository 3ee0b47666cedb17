"""A sample extension built from a header that cibuildwheel's before-all wrote and a
string its environment option set."""

from xarch_sample_hooks._hooks import answer, greeting

__all__ = ["answer", "greeting"]
