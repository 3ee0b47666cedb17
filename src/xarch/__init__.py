"""xarch: foreign-architecture build environments on x86_64 hosts."""

__version__ = "0.1.0"
