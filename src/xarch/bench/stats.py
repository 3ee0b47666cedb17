"""The arithmetic of the benchmark: summaries of repeated timings, ratios, and when
a difference is clear enough to act on. Pure functions; the unit tests pin them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Median, min and max of n timings (seconds)."""

    n: int
    median: float
    min: float
    max: float

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repetitions were (0.05 = 5%)."""
        return (self.max - self.min) / self.median if self.median else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median": round(self.median, 4),
            "min": round(self.min, 4),
            "max": round(self.max, 4),
            "spread": round(self.spread, 4),
        }


def summarize(values: Sequence[float]) -> Summary | None:
    """None for no values: a series whose every run failed has no timing."""
    if not values:
        return None
    return Summary(
        n=len(values), median=statistics.median(values), min=min(values), max=max(values)
    )


@dataclass(frozen=True)
class Ratio:
    """emulated / native: the median of each side, plus the range the extremes allow
    (fastest emulated over slowest native, slowest emulated over fastest native)."""

    median: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {
            "median": round(self.median, 2),
            "low": round(self.low, 2),
            "high": round(self.high, 2),
        }


def ratio(emulated: Summary | None, native: Summary | None) -> Ratio | None:
    if emulated is None or native is None or native.median <= 0 or native.min <= 0:
        return None
    return Ratio(
        median=emulated.median / native.median,
        low=emulated.min / native.max,
        high=emulated.max / native.min,
    )


def speedup(default: Summary | None, candidate: Summary | None) -> float | None:
    """How much faster the candidate is than the default: default median / candidate
    median. 1.25 means the candidate needs 80% of the default's time; below 1, slower."""
    if default is None or candidate is None or candidate.median <= 0:
        return None
    return default.median / candidate.median


#: A speed-up must at least be this large (besides disjoint ranges) to count.
MIN_CLEAR_SPEEDUP = 1.03
#: Fewer runs than this on either side give no verdict.
MIN_RUNS = 2


def verdict(default: Summary | None, candidate: Summary | None) -> str:
    """ "faster" / "slower" only when the ranges do not overlap and the medians differ by
    at least MIN_CLEAR_SPEEDUP; otherwise "no clear difference". With three to five
    repetitions on a shared two-core machine this is deliberately conservative."""
    s = speedup(default, candidate)
    if s is None or default is None or candidate is None:
        return "n/a"
    if default.n < MIN_RUNS or candidate.n < MIN_RUNS:
        return "too few runs"
    if candidate.max < default.min and s >= MIN_CLEAR_SPEEDUP:
        return "faster"
    if candidate.min > default.max and s <= 1 / MIN_CLEAR_SPEEDUP:
        return "slower"
    return "no clear difference"


def geometric_mean(values: Sequence[float]) -> float | None:
    """The mean of ratios across workloads (one number per setting)."""
    if not values or any(v <= 0 for v in values):
        return None
    return float(statistics.geometric_mean(values))
