"""A sample C extension: a few functions whose results depend on the machine's
integer and floating-point arithmetic, so a test run under emulation checks them."""

from xarch_sample_cext._speedups import byteorder, fib, sum_squares

__all__ = ["byteorder", "fib", "sum_squares"]
