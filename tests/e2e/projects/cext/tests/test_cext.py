"""The sample C extension's own suite, run by cibuildwheel's test-command inside the
image (under emulation for a foreign architecture)."""

import sys

import pytest
from xarch_sample_cext import byteorder, fib, sum_squares


@pytest.mark.parametrize(("n", "expected"), [(0, 0), (1, 1), (10, 55), (90, 2880067194370816120)])
def test_fib(n: int, expected: int) -> None:
    assert fib(n) == expected


def test_fib_wraps_like_c() -> None:
    assert fib(94) == (fib(93) + fib(92)) % 2**64


def test_sum_squares() -> None:
    assert sum_squares([1, 2, 3.5]) == 17.25


def test_sum_squares_refuses_a_non_number() -> None:
    with pytest.raises(TypeError):
        sum_squares([1, "two"])


def test_byteorder_is_the_interpreters() -> None:
    assert byteorder() == sys.byteorder
