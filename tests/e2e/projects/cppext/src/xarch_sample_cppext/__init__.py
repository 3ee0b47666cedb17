"""A sample C++ extension: std::string, std::vector, std::map and <algorithm>."""

from xarch_sample_cppext._words import sorted_unique, word_counts

__all__ = ["sorted_unique", "word_counts"]
