"""The sample C++ extension's suite, run by cibuildwheel's test-command in the image."""

from xarch_sample_cppext import sorted_unique, word_counts


def test_sorted_unique() -> None:
    assert sorted_unique("pear apple pear fig") == ["apple", "fig", "pear"]


def test_sorted_unique_of_nothing() -> None:
    assert sorted_unique("   ") == []


def test_word_counts() -> None:
    assert word_counts("a b a c a") == {"a": 3, "b": 1, "c": 1}
