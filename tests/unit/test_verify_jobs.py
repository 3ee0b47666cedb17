"""test-images --jobs: a negative count is refused before anything runs."""

from __future__ import annotations

import pytest

from xarch.errors import BadInput
from xarch.images.verify import run_suite
from xarch.model.config import Config


def test_a_negative_jobs_count_is_refused_before_the_engine_is_asked() -> None:
    cfg = object.__new__(Config)  # never read: the check comes first
    with pytest.raises(BadInput, match="--jobs must be 0"):
        run_suite(cfg, (), jobs=-1)


def test_an_unknown_mode_is_refused_first() -> None:
    cfg = object.__new__(Config)
    with pytest.raises(BadInput, match="--binfmt-mode must be one of"):
        run_suite(cfg, (), mode="sometimes", jobs=2)
